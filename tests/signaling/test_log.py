"""The room logs, in-process and Redis: order, no loss and no doubles, even when following starts mid-stream."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from signaling.events import GraceExpired
from signaling.log import CAUGHT_UP, UNREADABLE, LocalRoomLog, RoomLog
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


async def test_an_entry_this_release_cannot_read_is_skipped_in_its_place_and_the_reader_goes_on(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An entry in a room's Redis log that this release cannot read (a newer node's event kind in a rolling
    upgrade, or damaged bytes) comes to the follower as UNREADABLE in its place, both when replayed and live,
    and is logged without its content; the node's one reader goes on serving every room it follows (it
    stopped at the first such entry, and with it every room on the node)."""
    prefix = f"test-{secrets.token_hex(4)}"
    a, b = RedisRoomLog(redis_url, prefix=prefix), RedisRoomLog(redis_url, prefix=prefix)

    async def write_raw(room: str, data: bytes) -> None:  # as a newer release's node would append it
        await a._append(keys=[a.stream_key(room), a.channel(room)], args=[data, 60, "any"])

    async def items(room: str, count: int) -> list[object]:
        seen: list[object] = []
        async for item in b.follow(room):
            if item is not CAUGHT_UP:
                seen.append(item.epoch if isinstance(item, GraceExpired) else item)
            if len(seen) == count:
                return seen
        return seen

    try:
        await a.append("r1", event(1))
        await write_raw("r1", b'{"kind": "from-a-newer-release", "secret": "Zhang Wei"}')
        await a.append("r1", event(2))
        r1 = asyncio.create_task(items("r1", 6))
        r2 = asyncio.create_task(items("r2", 1))
        await asyncio.sleep(0.3)
        await write_raw("r1", b"\xff\xfe not even text")
        await a.append("r1", event(3))
        await write_raw("r1", b'{"kind": "expire", "participant_id": 7}')
        await a.append("r2", event(9))
        await a.append("r1", event(4))
        assert await asyncio.wait_for(r1, 10) == [1, UNREADABLE, 2, UNREADABLE, 3, UNREADABLE]
        assert await asyncio.wait_for(r2, 10) == [9]
        assert await asyncio.wait_for(items("r1", 7), 10) == [1, UNREADABLE, 2, UNREADABLE, 3, UNREADABLE, 4]
    finally:
        await a.close()
        await b.close()
    skipped = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(skipped) >= 3 and not any("Zhang Wei" in line for line in skipped)


async def test_two_rooms_followed_at_once_by_a_new_node_both_hear_what_comes_next(
        logs: tuple[RoomLog, RoomLog]) -> None:
    """A node that starts following two rooms at the same moment (its first two) hears each room's new
    events live: two first subscriptions at once each opened a Redis connection, the second replacing the
    first, and the first room's events then went to a connection nobody read."""
    a, b = logs
    await a.append("first", event(0))
    first = asyncio.create_task(collect(b, "first", 2))
    second = asyncio.create_task(collect(b, "second", 1))
    await asyncio.sleep(0.3)
    await a.append("first", event(1))
    await a.append("second", event(2))
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [([0, 1], 1), ([2], 0)]


async def test_a_reader_that_fails_unexpectedly_subscribes_again_and_loses_nothing(redis_url: str) -> None:
    """The node's one reader of its rooms' channels meets an error that is not Redis's (a bug, a library's
    surprise): it logs it, subscribes again and reads what it missed from the streams, so the room's follower
    gets every event, in order; before, the reader ended and every room on the node went deaf."""
    prefix = f"test-{secrets.token_hex(4)}"
    a, b = RedisRoomLog(redis_url, prefix=prefix), RedisRoomLog(redis_url, prefix=prefix)
    try:
        follower = asyncio.create_task(collect(b, "r1", 3))
        await asyncio.sleep(0.3)
        pubsub = b._pubsub
        real = pubsub.get_message

        async def failing(*args: object, **kwargs: object) -> object:
            pubsub.get_message = real  # type: ignore[method-assign]
            raise RuntimeError("a surprise")

        pubsub.get_message = failing  # type: ignore[method-assign]
        for n in range(3):
            await a.append("r1", event(n))
        assert await asyncio.wait_for(follower, 10) == ([0, 1, 2], 0)
    finally:
        await a.close()
        await b.close()
