"""Nodes stopped with SIGTERM (a deploy) under a three-party relayed call: the relay moves, its
participants resume elsewhere, media is back within seconds, and a recording cut off is kept."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

import aiohttp
import av
import pytest

from ..support.cluster import Cluster
from ..support.peers import palette_index
from ..support.relayed_call import (
    RelayedCall,
    assert_no_failed_resume,
    every_pair_decodes,
    new_relay_epoch,
    three_in_relay,
)
from ..support.resilient_peer import ResilientPeer
from ..support.signaling_client import bearer
from ..support.visits import as_guest, consent, invite
from .conftest import DRAIN_SECONDS

pytestmark = pytest.mark.faults

STOP_TO_MEDIA = 5.0  # the promise: media back among the rest within 5 s of a node's stop
GOING_AWAY = 1001


async def moves_off(peer: ResilientPeer, cluster: Cluster, node: str, since: float) -> float:
    """``peer``'s socket on the stopping ``node`` closes with 1001 and it resumes its seat on another node;
    the seconds from ``since`` to its ``joined``."""
    closed = await peer.event("socket-closed", after=since, within=DRAIN_SECONDS + 2)
    assert closed.data["code"] == GOING_AWAY, closed.data
    joined = await peer.event("joined", after=closed.at, within=5, where=lambda m: m["resumed"])
    assert joined.data["self"]["id"] == peer.id
    assert cluster.name_of(peer.url) != node, f"{peer.name} resumed on the node that stopped"
    return joined.at - since


async def relay_moved(call: RelayedCall, mover: ResilientPeer, since: float) -> int:
    """Everyone is told of one new relay: by ``mode`` (the mover perhaps by the ``joined`` of its resume)."""
    epochs = {await new_relay_epoch(peer, call.epoch, since, within=STOP_TO_MEDIA) for peer in call.others(mover)}
    epochs.add(await new_relay_epoch(mover, call.epoch, since, told_by=("mode", "joined"), within=STOP_TO_MEDIA))
    assert len(epochs) == 1, f"one new relay, told the same to everyone: {epochs}"
    return epochs.pop()


async def exits_within_drain(cluster: Cluster, node: str, stopped: float) -> float:
    status = await cluster.exited(node, within=DRAIN_SECONDS + 10)
    took = asyncio.get_running_loop().time() - stopped
    assert status == 0, f"node {node} exited with {status}"
    assert took < DRAIN_SECONDS + 1, f"node {node} took {took:.1f} s to exit"
    return took


def nobody_left(call: RelayedCall, since: float) -> None:
    for peer in call.peers:
        assert not peer.seen("participant-left", after=since), f"{peer.name}: {peer.seen('participant-left')}"
    assert_no_failed_resume(*call.peers)


async def test_stopping_the_relay_node_moves_the_relay_and_media_is_back_within_5_s(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards a graceful stop of the node running the relay: the room moves the relay at once (a new epoch,
    ``mode`` to everyone), the node closes its sockets with 1001 so its participant resumes on another node,
    media among all three is back within 5 s of the SIGTERM, and the node exits within
    TELEMED_DRAIN_SECONDS. Nobody leaves."""
    call = await three_in_relay(http, cluster, relay_on="b")
    mover = call.on("b")
    try:
        stopped = cluster.terminate("b")
        recovery("stop to resumed on another node", await moves_off(mover, cluster, "b", stopped))
        await relay_moved(call, mover, stopped)
        took = await every_pair_decodes(call.peers, since=stopped, within=STOP_TO_MEDIA + 10, after_epoch=call.epoch)
        recovery("stop to media among all three", took)
        assert took < STOP_TO_MEDIA, f"media back {took:.1f} s after the stop"
        recovery("stop to exit", await exits_within_drain(cluster, "b", stopped))
        nobody_left(call, stopped)
    finally:
        await call.close()


async def consent_to_recording(http: aiohttp.ClientSession, base: str, guest: str) -> None:
    for username in ("dr.li", "dr.wang"):
        answer = await http.post(f"{base}/api/consultations/1/recording-consent", json={"given": True},
                                 headers=await bearer(http, base, username))
        assert answer.status == 201, await answer.text()
    answer = await http.post(f"{base}/api/guest/recording-consent", json=as_guest(guest, given=True))
    assert answer.status == 201, await answer.text()


async def recording_is(peers: tuple[ResilientPeer, ...] | list[ResilientPeer], on: bool, since: float,
                       within: float = 5) -> list[dict]:
    return [(await peer.event("recording", after=since, within=within, where=lambda m: m["on"] is on)).data
            for peer in peers]


async def finished_recordings(http: aiohttp.ClientSession, base: str, count: int) -> list[dict]:
    """Consultation 1's recordings, oldest first, once ``count`` of them are no longer being written."""
    headers = await bearer(http, base, "dr.li")
    recordings: list[dict] = []
    for _ in range(150):
        listing = await (await http.get(f"{base}/api/consultations/1/recordings", headers=headers)).json()
        recordings = sorted(listing["recordings"], key=lambda r: r["started_at"])
        if len(recordings) >= count and all(r["status"] != "recording" for r in recordings):
            break
        await asyncio.sleep(0.1)
    return recordings


async def plays(http: aiohttp.ClientSession, base: str, recording: dict) -> int:
    """How many frames of its first video track decode to the pattern camera's colours."""
    media = await http.get(f"{base}{recording['media_url']}", headers=await bearer(http, base, "dr.li"))
    assert media.status == 200, await media.text()
    container = av.open(io.BytesIO(await media.read()))
    video = container.streams.video[0]
    frames = [f for p in container.demux(video) for f in video.codec_context.decode(p)]
    return sum(palette_index(frame) is not None for frame in frames)


async def test_stopping_the_recording_node_stops_the_recording_which_a_host_starts_again(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards a recording on a node that stops: everyone gets ``recording`` off with ``relay-lost``, media is
    back within 5 s on the new relay, a host starts recording again there, and both recordings are listed
    and play: the one the stop cut off (finished or interrupted, not left "recording") and the new one."""
    base = cluster.url("a")
    guest = await invite(http, base)
    await consent(http, guest, base=base)
    await consent_to_recording(http, base, guest)
    call = await three_in_relay(http, cluster, relay_on="c", guest=guest)
    mover = call.on("c")
    try:
        asked = call.li.now()
        await call.li.send({"type": "recording", "on": True})
        for state in await recording_is(call.peers, True, asked):
            assert state["by"] == call.li.id, state
        await asyncio.sleep(2.5)

        stopped = cluster.terminate("c")
        for state in await recording_is(call.peers, False, stopped):
            assert state == {"type": "recording", "on": False, "by": None, "reason": "relay-lost"}, state
        await moves_off(mover, cluster, "c", stopped)
        await relay_moved(call, mover, stopped)
        took = await every_pair_decodes(call.peers, since=stopped, within=STOP_TO_MEDIA + 10, after_epoch=call.epoch)
        recovery("stop to media among all three", took)
        assert took < STOP_TO_MEDIA, f"media back {took:.1f} s after the stop"
        await exits_within_drain(cluster, "c", stopped)

        asked = call.li.now()
        await call.li.send({"type": "recording", "on": True})
        for state in await recording_is(call.peers, True, asked):
            assert state["by"] == call.li.id, state
        recovery("recording started again on the new relay", call.li.seen("recording", after=asked)[0].at - asked)
        await asyncio.sleep(2.5)
        asked = call.li.now()
        await call.li.send({"type": "recording", "on": False})
        await recording_is(call.peers, False, asked)
        nobody_left(call, stopped)

        cut, again = (await finished_recordings(http, base, 2))[-2:]
        print(f"the recording cut off: {cut['status']}, {cut['duration']} s; the next: {again['status']}, "
              f"{again['duration']} s")
        assert cut["status"] in ("ready", "interrupted"), cut
        assert again["status"] == "ready", again
        for recording in (cut, again):
            assert recording["duration"] >= 1.5, recording
            assert sorted(t["kind"] for t in recording["tracks"]) == ["audio"] * 3 + ["video"] * 3, recording
            assert await plays(http, base, recording) > 20, recording
    finally:
        await call.close()


async def test_rolling_restart_of_two_nodes_keeps_media_flowing(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards a rolling deploy under a three-party relayed call (the relay on node a): node a is stopped
    and started again, then node b. At each step media among the three stops for at most a few seconds
    (the longest gap between correct frames, over every pair, is measured), nobody leaves, and once the
    step is over everyone decodes everyone."""
    call = await three_in_relay(http, cluster, relay_on="a")
    try:
        for node in ("a", "b"):
            movers = [peer for peer in call.peers if cluster.name_of(peer.url) == node]
            stopped = cluster.terminate(node)
            for peer in movers:
                await moves_off(peer, cluster, node, stopped)
            await exits_within_drain(cluster, node, stopped)
            await every_pair_decodes(call.peers, since=stopped, within=15)
            restarted = await cluster.start_again(node)
            await asyncio.sleep(1)
            await every_pair_decodes(call.peers, since=restarted, within=10)
            end = call.li.now()
            gap = max(peer.longest_gap(other, stopped, end) for peer in call.peers for other in call.others(peer))
            recovery(f"stop of node {node}: longest media gap", gap)
            assert gap < STOP_TO_MEDIA, f"media stopped for {gap:.1f} s when node {node} was stopped"
            nobody_left(call, stopped)
    finally:
        await call.close()
