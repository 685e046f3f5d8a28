"""Ending a task from another (signaling/tasks.py): the waiter's own cancellation is never swallowed."""

from __future__ import annotations

import asyncio

import pytest

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
