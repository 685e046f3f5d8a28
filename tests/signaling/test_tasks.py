"""Ending a task from another (signaling/tasks.py): the waiter's own cancellation is never swallowed, and a task
that swallows its own is cancelled again."""

from __future__ import annotations

import asyncio

import pytest

from signaling import tasks
from signaling.tasks import cancel_and_wait


async def _slow_to_end() -> None:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.sleep(0.5)  # cleaning up, as a follower closing its subscription does
        raise


async def test_the_task_is_ended_and_the_waiter_goes_on() -> None:
    """Cancelling a task this way waits until it has ended, and the caller carries on after it."""
    task = asyncio.create_task(_slow_to_end())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_waiter_cancelled_while_it_waits_is_cancelled() -> None:
    """Guards the hang of a hub stopped while it dropped an idle room: the waiter, cancelled while it waits for
    the task it cancelled, ends cancelled instead of going on (with ``suppress(CancelledError)`` it went on to
    its next loop, for good)."""
    went_on = asyncio.Event()

    async def waiter() -> None:
        child = asyncio.create_task(_slow_to_end())
        await asyncio.sleep(0)
        await cancel_and_wait(child)
        went_on.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.1)  # the waiter waits for its child to end
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert not went_on.is_set()


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the hang of a hub whose presence loop went on after its stop (redis-py's client swallowed the
    cancellation of a command under it, and the loop slept on for good): the first cancellation is swallowed,
    the task goes on, and a second one, a moment later, ends it."""
    monkeypatch.setattr(tasks, "RECANCEL_SECONDS", 0.1)
    swallowed = 0

    async def loop_swallowing_once() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # (and goes on, uncancelled)
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(loop_swallowing_once())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), 5)
    assert task.cancelled() and swallowed == 1


async def test_what_the_task_raised_reaches_the_waiter() -> None:
    """A task that fails as it is cancelled (or had failed before) raises its error to whoever ends it, as
    awaiting it would."""
    async def failing() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("broken on the way out") from None

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="broken on the way out"):
        await cancel_and_wait(task)
