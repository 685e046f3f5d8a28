"""The relay session's outgoing events keep their order however long each submission takes."""

from __future__ import annotations

import asyncio

from media.session import InOrder
from signaling.events import FromRelay, RoomEvent


def _layouts(count: int) -> list[FromRelay]:
    """A participant's successive layouts, each with one more publisher in it, as a burst of joins makes."""
    return [FromRelay(epoch=1, to="p1", type="layout", layout={f"v{i}": f"p{i}" for i in range(2, n + 2)})
            for n in range(count)]


async def test_events_are_submitted_in_the_order_they_were_put_when_earlier_ones_are_slower() -> None:
    """Events land in the order they were put even when each submission is quicker than the one before, so the last
    layout a participant gets is the latest."""
    landed: list[RoomEvent] = []

    async def submit(event: RoomEvent) -> None:
        # Redis round trips differ: here each submission takes less time than the one before it, so
        # submitting them concurrently would land them backwards.
        await asyncio.sleep(0.05 / (1 + layouts.index(event)))
        landed.append(event)

    layouts = _layouts(5)
    outgoing = InOrder(submit)
    for event in layouts:
        outgoing.put(event)
    await outgoing.close()
    assert landed == layouts
    assert landed[-1].layout == {"v2": "p2", "v3": "p3", "v4": "p4", "v5": "p5"}


async def test_a_failed_submission_does_not_stop_the_ones_after_it() -> None:
    """A submission that fails is passed over: the events after it are still submitted, in order."""
    landed: list[RoomEvent] = []
    layouts = _layouts(3)

    async def submit(event: RoomEvent) -> None:
        if event is layouts[1]:
            raise RuntimeError("the bus hiccuped")
        landed.append(event)

    outgoing = InOrder(submit)
    for event in layouts:
        outgoing.put(event)
    await outgoing.close()
    assert landed == [layouts[0], layouts[2]]
