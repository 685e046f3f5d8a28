"""The room logs, in-process and Redis: order, no loss and no doubles, even when following starts mid-stream."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from signaling.events import GraceExpired
from signaling.log import CAUGHT_UP, LocalRoomLog, RoomLog
from signaling.redis_log import RedisRoomLog


@pytest.fixture(params=["local", "redis"])
async def logs(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RoomLog, RoomLog]]:
    """Two nodes' logs over one bus (the same object for the in-process bus: it has one node)."""
    if request.param == "local":
        log = LocalRoomLog()
        yield log, log
        return
    url, prefix = request.getfixturevalue("redis_url"), f"test-{secrets.token_hex(4)}"
    a, b = RedisRoomLog(url, prefix=prefix), RedisRoomLog(url, prefix=prefix)
    yield a, b
    await a.close()
    await b.close()


def event(n: int) -> GraceExpired:
    return GraceExpired(participant_id=f"p{n}", epoch=n)


async def collect(log: RoomLog, room: str, count: int) -> tuple[list[int], int]:
    """The epochs of the first ``count`` events, and how many came before CAUGHT_UP."""
    seen: list[int] = []
    replayed = -1
    async for item in log.follow(room):
        if item is CAUGHT_UP:
            replayed = len(seen)
            continue
        seen.append(item.epoch)  # type: ignore[union-attr]
        if len(seen) == count:
            break
    return seen, replayed


async def test_a_follower_sees_history_then_live_events_in_order(logs: tuple[RoomLog, RoomLog]) -> None:
    """A node that starts following a room's log gets the five events already in it, then CAUGHT_UP, then the five
    appended afterwards, all in order."""
    a, b = logs
    for n in range(5):
        await a.append("r1", event(n))
    follower = asyncio.create_task(collect(b, "r1", 10))
    await asyncio.sleep(0.2)
    for n in range(5, 10):
        await a.append("r1", event(n))
    seen, replayed = await asyncio.wait_for(follower, 10)
    assert seen == list(range(10)) and replayed == 5


async def test_following_while_appends_race_loses_and_doubles_nothing(logs: tuple[RoomLog, RoomLog]) -> None:
    """A follower that starts while 300 events are being appended gets each of them once, in order."""
    a, b = logs

    async def append_many() -> None:
        for n in range(300):
            await a.append("r2", event(n))
            if n % 10 == 0:
                await asyncio.sleep(0)

    writer = asyncio.create_task(append_many())
    await asyncio.sleep(0.01)  # start following somewhere in the middle
    seen, _ = await asyncio.wait_for(collect(b, "r2", 300), 20)
    await writer
    assert seen == list(range(300))


async def test_rooms_do_not_hear_each_other(logs: tuple[RoomLog, RoomLog]) -> None:
    """A follower of one room gets that room's event only, none of the twenty appended to another room meanwhile."""
    a, b = logs
    follower = asyncio.create_task(collect(b, "quiet", 1))
    await asyncio.sleep(0.2)
    for n in range(20):
        await a.append("busy", event(n))
    await a.append("quiet", event(99))
    seen, _ = await asyncio.wait_for(follower, 10)
    assert seen == [99]
