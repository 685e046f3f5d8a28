"""Redis restarted empty under a live room: the nodes seed each room's log again from their copies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from server.devprocs import RedisServer

from ..support.cluster import Cluster
from ..support.relayed_call import admit, assert_no_failed_resume
from ..support.resilient_peer import Clinician, Patient, ResilientPeer
from ..support.signaling_client import bearer
from ..support.visits import consent, invite

pytestmark = pytest.mark.faults

OUTAGE = 1.0  # seconds Redis is down


async def chat(sender: ResilientPeer, text: str, *readers: ResilientPeer, within: float = 10) -> int:
    """``sender`` says ``text``; every reader (the sender too) gets it with one id; that id."""
    since = sender.now()
    await sender.send({"type": "chat", "text": text})
    ids = {(await peer.event("chat", after=since, within=within, where=lambda m: m["text"] == text)).data["id"]
           for peer in (sender, *readers)}
    assert len(ids) == 1, f"{text!r} has different ids: {ids}"
    return ids.pop()


async def ready(http: aiohttp.ClientSession, url: str, within: float = 15) -> None:
    for _ in range(int(within / 0.1)):
        try:
            if (await http.get(f"{url}/readyz")).status == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready {within:g} s after Redis came back")


async def test_redis_restarted_empty_the_room_goes_on(cluster: Cluster, redis_server: RedisServer,
                                                      http: aiohttp.ClientSession,
                                                      recovery: Callable[[str, float], None]) -> None:
    """Guards the room against Redis losing its log: with dr.li on node a and dr.wang on node b, Redis is
    stopped and started again empty. Afterwards they still see each other (a chat line from each and a
    media-state change reach the other), chat ids go on increasing, a newcomer's ``joined`` lists both,
    and the stored chat has every line sent, in order."""
    li = ResilientPeer(http, cluster.urls, Clinician("dr.li"))
    wang = ResilientPeer(http, cluster.urls, Clinician("dr.wang"))
    patient: ResilientPeer | None = None
    try:
        await li.enter(cluster.url("a"))
        await wang.enter(cluster.url("b"))
        await li.event("participant-joined")
        before = [await chat(li, "before the outage, from a", wang), await chat(wang, "before the outage, from b", li)]

        redis_server.stop()
        await asyncio.sleep(OUTAGE)
        redis_server.start()
        back = li.now()
        for name in ("a", "b", "c"):
            await ready(http, cluster.url(name))
        after = [await chat(li, "after the outage, from a", wang)]
        took = li.now() - back
        recovery("Redis back to a chat line across nodes", took)
        assert took < 5, f"chat crossed nodes again {took:.1f} s after Redis came back"
        after.append(await chat(wang, "after the outage, from b", li))
        assert before[0] < before[1] < after[0] < after[1], f"chat ids: {before} then {after}"

        since = li.now()
        await li.send({"type": "media-state", "muted": True, "camera_off": False, "screen_sharing": False})
        state = await wang.event("media-state", after=since)
        assert state.data["participant_id"] == li.id and state.data["media"]["muted"] is True, state.data

        guest = await invite(http, cluster.url("c"))
        await consent(http, guest, base=cluster.url("c"))
        patient = ResilientPeer(http, cluster.urls, Patient(guest))
        await admit(li, patient, cluster.url("c"))
        joined = patient.seen("joined")[-1].data
        assert sorted(p["id"] for p in joined["participants"]) == sorted([li.id, wang.id]), joined["participants"]
        assert [(e.data["id"], e.data["text"]) for e in li.seen("chat")] == \
            [(e.data["id"], e.data["text"]) for e in wang.seen("chat")], "both saw the same chat"

        stored = await (await http.get(f"{cluster.url('a')}/api/consultations/1/chat",
                                       headers=await bearer(http, cluster.url("a"), "dr.li"))).json()
        assert [line["text"] for line in stored["chat"]] == [
            "before the outage, from a", "before the outage, from b",
            "after the outage, from a", "after the outage, from b"], stored
        for peer in (li, wang):
            assert not peer.seen("participant-left"), f"{peer.name}: {peer.seen('participant-left')}"
        assert_no_failed_resume(li, wang)
    finally:
        for peer in (li, wang, patient):
            if peer is not None:
                await peer.close()
