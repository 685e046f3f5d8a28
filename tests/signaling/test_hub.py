"""The hub's word on other nodes, over a real redis-server: which are gone, and who is told when one is
declared lost (what the server relies on to finish a lost node's recordings, server/consultations/recovery.py)."""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest

from signaling import hub as hub_module
from signaling.events import Joining, Where
from signaling.grants import GUEST, HOST, Granted
from signaling.hub import RoomHub
from signaling.log import LocalRoomLog
from signaling.messages import Participant
from signaling.placement import RelayHost
from signaling.redis_log import RedisRoomLog

from ..support.peers import until

TTL = 1.0


def _join(pid: str, node: str) -> Joining:
    return Joining(participant=Participant(id=pid, user_id=1, name=pid, role="specialist"), grants=HOST,
                   identity=f"id:{pid}", at=Where(node=node, conn=pid), resume_hash=f"hash-{pid}")


async def test_a_node_whose_presence_ran_out_is_gone_and_the_listener_is_told(redis_url: str) -> None:
    """Guards ``node_gone`` and ``on_node_lost``: a live node is not gone, nor is the asking node itself; once a
    node stops announcing itself (killed: no withdrawal) it is gone within the presence TTL, and a node that
    follows a room where it sat declares it lost there and tells its listener, once."""
    prefix = f"test-{secrets.token_hex(4)}"
    told: list[str] = []
    a = RoomHub(RedisRoomLog(redis_url, prefix=prefix), node_id="a.1", max_participants=4, presence_ttl=TTL)
    b = RoomHub(RedisRoomLog(redis_url, prefix=prefix), node_id="b.1", max_participants=4, presence_ttl=TTL,
                on_node_lost=told.append)
    await a.start()
    await b.start()
    try:
        await a.submit("room-1", _join("li", "a.1"), conn="li")
        await b.submit("room-1", _join("wang", "b.1"), conn="wang")
        assert not await b.node_gone("a.1") and not await b.node_gone("b.1")
        await a.stop()  # as if killed: its presence is not withdrawn, it runs out
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        while not await b.node_gone("a.1"):
            assert loop.time() - stopped < TTL * 2, "gone within the presence TTL"
            await asyncio.sleep(0.05)
        while not told:
            assert loop.time() - stopped < TTL * 3, "declared lost, and told"
            await asyncio.sleep(0.05)
        await asyncio.sleep(TTL)
        assert told == ["a.1"] and not await b.node_gone("b.1")
    finally:
        await b.stop()
        await a.log.close()
        await b.log.close()


async def test_with_one_node_no_other_node_is_ever_gone() -> None:
    """Guards a single node (the in-process log): it cannot tell another node's presence, so it never takes a
    recording away from its writer; its own are finished at its start."""
    hub = RoomHub(LocalRoomLog(), node_id="a.1", max_participants=4, presence_ttl=TTL)
    await hub.start()
    try:
        assert not await hub.node_gone("b.1") and not await hub.node_gone("a.1")
    finally:
        await hub.stop()


async def test_an_unreadable_entry_keeps_its_place_in_the_rooms_count(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An entry of a room's log this release cannot read (a newer node's event, in a rolling upgrade) is
    skipped, but counted: the events after it have the same position on this node as on the nodes that read
    it (chat lines are ordered by it), and the room goes on from the next event. It is not handed to the
    room as if it were an event (which logged an error as a bug's)."""
    prefix = f"test-{secrets.token_hex(4)}"
    log = RedisRoomLog(redis_url, prefix=prefix)
    hub = RoomHub(log, node_id="a.1", max_participants=4, presence_ttl=TTL)
    await hub.start()
    try:
        await hub.submit("room-1", _join("li", "a.1"), conn="li")
        await log._append(keys=[log.stream_key("room-1"), log.channel("room-1")],
                          args=[b'{"kind": "from-a-newer-release"}', 60, "any"])
        await hub.submit("room-1", _join("wang", "a.1"), conn="wang")
        room = hub.room("room-1")
        assert room is not None
        await until(lambda: "wang" in room.members, seconds=5)  # submitted is applied when it comes back
        assert set(room.members) == {"li", "wang"} and room.seq == 3
        await log._append(keys=[log.stream_key("room-1"), log.channel("room-1")], args=[b"{}", 60, "any"])
        await until(lambda: room.seq == 4, seconds=5)  # the last entry unreadable: a snapshot says 4 all the same
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await hub.stop()
        await log.close()


async def test_here_names_this_nodes_members_and_their_rooms(redis_url: str) -> None:
    """Guards ``here`` (what a node's account sweep checks): each identity sitting in a room on this node, with
    every room it is in and its grants there; a member of the same room on another node is that node's to check,
    not this one's."""
    prefix = f"test-{secrets.token_hex(4)}"
    a = RoomHub(RedisRoomLog(redis_url, prefix=prefix), node_id="a.1", max_participants=4, presence_ttl=TTL)
    b = RoomHub(RedisRoomLog(redis_url, prefix=prefix), node_id="b.1", max_participants=4, presence_ttl=TTL)
    await a.start()
    await b.start()
    try:
        await a.submit("room-1", _join("li", "a.1"), conn="li")
        await a.submit("room-2", _join("li", "a.1").model_copy(update={"at": Where(node="a.1", conn="li-2")}),
                       conn="li-2")
        await b.submit("room-1", _join("wang", "b.1").model_copy(update={"grants": GUEST}), conn="wang")
        room = a.room("room-1")
        assert room is not None
        await until(lambda: "wang" in room.members, seconds=5)
        assert a.here() == {"id:li": {"room-1": Granted(HOST, None), "room-2": Granted(HOST, None)}}
        assert b.here() == {"id:wang": {"room-1": Granted(GUEST, None)}}
    finally:
        await a.stop()
        await b.stop()
        await a.log.close()
        await b.log.close()


class SlowToLeave(LocalRoomLog):
    """The in-process log, whose followers take a moment to end (as a Redis follower closing its subscription
    does), and say when one starts to."""

    def __init__(self) -> None:
        super().__init__()
        self.leaving = asyncio.Event()
        self.announced = 0

    async def announce(self, node: str, ttl: float, host: RelayHost | None = None) -> bool:
        self.announced += 1
        return await super().announce(node, ttl, host)

    async def follow(self, room_id: str):  # type: ignore[no-untyped-def, override]
        try:
            async for entry in super().follow(room_id):
                yield entry
        finally:
            self.leaving.set()
            await asyncio.sleep(0.5)


async def test_a_hub_stopped_while_it_drops_an_idle_room_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the stop of a node whose presence loop is dropping a room nobody here is in any more (a test run
    hung here, in CI): the stop ends that loop too, within seconds, instead of waiting for it for good."""
    monkeypatch.setattr(hub_module, "IDLE_ROOM_SECONDS", 0.0)
    log = SlowToLeave()
    hub = RoomHub(log, node_id="a.1", max_participants=4, presence_ttl=0.2)
    await hub.start()
    await hub.submit("room-1", _join("li", "a.1"), conn="li")
    hub.attach("li", room_id="room-1")
    hub.detach("li", "room-1")  # nobody here any more: the presence loop drops the room
    await asyncio.wait_for(log.leaving.wait(), 5)
    stop = asyncio.create_task(hub.stop())
    done, _ = await asyncio.wait({stop}, timeout=5)  # (not wait_for: cancelling the stop would end the loop)
    if not done:
        stop.cancel()
    assert done == {stop}, "the stop returned (it waited for the presence loop, which went on for good)"
    stopped = log.announced
    await asyncio.sleep(0.2)  # eight turns of the presence loop, had it gone on
    assert log.announced == stopped, "the presence loop ended with the stop"
