"""Ending a task from another: the one way the signaling package and the server cancel a task and wait for it."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` and wait until it has ended. A cancellation of the caller while it waits still goes
    through: ``with suppress(CancelledError): await task`` swallowed it too, so a hub stopped while it was
    dropping an idle room went on presencing for good, and its stop never returned."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the caller is being cancelled itself, not only ``task``
