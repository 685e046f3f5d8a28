"""Ending a task from another: the one way the signaling package and the server cancel a task and wait for it."""

from __future__ import annotations

import asyncio

# A task still running this long after it was cancelled swallowed the cancellation somewhere (a library that
# catches it deep inside: redis-py's client did, under the hub's presence loop, which then went on for good);
# it is cancelled again. Longer than any cleanup our tasks do on their way out.
RECANCEL_SECONDS = 2.0


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` and wait until it has ended (cancelling it again while it goes on), then raise what it
    raised, if anything but its cancellation. A cancellation of the caller while it waits goes through:
    ``with suppress(CancelledError): await task`` swallowed it too, so a hub stopped while it was dropping an
    idle room went on presencing for good, and its stop never returned."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
