"""Relays in worker processes (media/workers.py, media/worker.py): a relayed room's media never runs on the
node's own loop, and a worker that dies takes only its relays, which move."""

from __future__ import annotations

import asyncio
import os
import signal

from aiohttp.test_utils import TestClient

from media.workers import RemoteRelay
from server.appkeys import RELAYS

from ..conftest import login
from ..support.peers import until
from ..support.room_peer import RoomPeer
from .test_relay_room import (
    _clinician,
    _guest_link,
    _patient,
    _recordings_once,
    _three_in_relay,
    everyone_consents_to_recording,
)


def _only_relay(client: TestClient) -> RemoteRelay:
    (relay,) = client.app[RELAYS].values()
    assert isinstance(relay, RemoteRelay)
    return relay


async def _all_on_the_relay(peers: tuple[RoomPeer, RoomPeer, RoomPeer]) -> None:
    """The two who were there hear that the room is relayed; all three connect to the relay and see each other."""
    for peer in peers[:2]:
        await peer.next("mode")
    await asyncio.gather(*(peer.join_relay(peers[2].joined["relay_slots"]) for peer in peers))
    await _everyone_sees_everyone(peers)


async def _everyone_sees_everyone(peers: tuple[RoomPeer, ...]) -> None:
    for peer in peers:
        for other in peers:
            if other is not peer:
                seen = await peer.sees(other, 5)
                assert None not in seen, (peer.id, other.id, seen)


async def test_the_relay_runs_in_a_worker_process_and_media_flows_through_it(client: TestClient) -> None:
    """Three in the room: the relay that forwards their media is a worker process of the node (another
    pid, a live child), and each participant decodes the two others through it; the node's metrics count
    the streams the worker reports."""
    peers = await _three_in_relay(client)
    try:
        await _all_on_the_relay(peers)
        relay = _only_relay(client)
        pid = relay.worker.pid
        assert pid is not None and pid != os.getpid()
        os.kill(pid, 0)  # alive
        await until(lambda: relay.census()[0]["video"] == 6, seconds=5)  # each gets the two others' video
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))


async def test_a_worker_killed_mid_call_moves_its_relay_and_media_comes_back(client: TestClient) -> None:
    """SIGKILL to the worker running the room's relay, mid-call: the node tells the room at once (a new
    relay epoch in "mode" to everyone), a new worker process takes the relay, everyone connects to it and
    decodes the others again; the node itself, its sockets and the room go on."""
    peers = await _three_in_relay(client)
    try:
        slots, epoch = peers[2].joined["relay_slots"], peers[2].joined["relay_epoch"]
        await _all_on_the_relay(peers)
        first = _only_relay(client)
        killed = first.worker.pid
        assert killed is not None

        os.kill(killed, signal.SIGKILL)
        moved = [await peer.next("mode", within=10) for peer in peers]
        assert {m["mode"] for m in moved} == {"relay"}
        assert {m["relay_epoch"] for m in moved} == {epoch + 1}

        for peer in peers:
            await peer.media.close()  # type: ignore[union-attr]
        await asyncio.gather(*(peer.join_relay(slots) for peer in peers))
        await _everyone_sees_everyone(peers)
        second = _only_relay(client)
        assert second.epoch == epoch + 1
        assert second.worker.pid not in (None, killed)
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))


async def test_a_worker_killed_mid_recording_leaves_a_recording_that_is_kept(client: TestClient) -> None:
    """SIGKILL to the worker while it records: everyone is told the recording stopped (``relay-lost``), and
    the node finishes what the worker flushed at once, as it would at its next start: the recording is listed
    as interrupted, with every track, not left "recording" until the node restarts."""
    li = await _clinician(client, "dr.li")
    wang = await _clinician(client, "dr.wang")
    visit = await _guest_link(client)
    patient = await _patient(client, li, visit)
    peers = (li, wang, patient)
    try:
        await _all_on_the_relay(peers)
        await everyone_consents_to_recording(client, visit, li)
        await li.send({"type": "recording", "on": True})
        for peer in peers:
            assert (await peer.next("recording"))["on"]
        await asyncio.sleep(3)

        worker = _only_relay(client).worker
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        for peer in peers:
            assert await peer.next("recording") == {"type": "recording", "on": False, "by": None,
                                                    "reason": "relay-lost"}
        headers = await login(client, "dr.li")
        recordings = await _recordings_once(client, headers, lambda rs: rs[0]["status"] != "recording")
        (recording,) = recordings
        assert recording["status"] == "interrupted", recording
        assert recording["duration"] > 0.5, recording  # what it had flushed (it flushes every second)
        assert sorted(t["kind"] for t in recording["tracks"]) == ["audio"] * 3 + ["video"] * 3, recording
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))


def test_what_a_worker_is_told_of_the_room_says_who_shares_a_screen() -> None:
    """The room as a worker's relay sees it crosses the pipe whole, who shares a screen included (a shared
    screen reaches those who chose audio only), and a screen share's media-state is passed down to it."""
    from media.session import RelayView
    from media.workers import delivery_adapter, view_from_json, view_to_json
    from signaling.messages import MediaState, MediaStateChanged

    view = RelayView({"d": (True, True), "s": (True, False)}, occupied=True, recording=False,
                     sharing=frozenset({"d"}))
    assert view_from_json(view_to_json(view)) == view
    older = view_to_json(view)
    del older["sharing"]  # from a node older than the field
    assert view_from_json(older).sharing == frozenset()
    item = MediaStateChanged(participant_id="d", media=MediaState(screen_sharing=True))
    assert delivery_adapter.validate_python(item.model_dump(by_alias=True)) == item
