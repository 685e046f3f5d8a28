"""The relay and recording driven by a real server: a third participant switches the room to the relay,
everyone decodes everyone through it, and a recording runs only with everyone's consent."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Callable

import av
from aiohttp.test_utils import TestClient

from server import audit
from server.appkeys import DATABASE
from server.settings import Settings

from ..conftest import _start, login
from ..support.peers import palette_index
from ..support.room_peer import RoomPeer
from ..support.signaling_client import connect, expect, room_token
from ..support.visits import consent, invite


async def _clinician(client: TestClient, username: str) -> RoomPeer:
    ws = await connect(client, await room_token(client, username))
    return RoomPeer(ws, await expect(ws, "joined"))


async def patient_beside_consents(client: TestClient) -> None:
    """The patient sits beside dr.li and agrees to the recording; dr.li records their word."""
    verbal = await client.post("/api/consultations/1/consents", json={"purpose": "recording"},
                               headers=await login(client, "dr.li"))
    assert verbal.status == 201, await verbal.text()


async def _guest_link(client: TestClient) -> str:
    guest = await invite(client)
    await consent(client, guest)  # the video visit
    return guest


async def _patient(client: TestClient, li: RoomPeer, visit: str) -> RoomPeer:
    token = (await (await client.post("/api/guest/room-token", json={"guest": visit})).json())["token"]
    ws = await connect(client, token)
    lobby = await expect(ws, "lobby")
    await li.send({"type": "admit", "participant_id": lobby["self"]["id"]})
    return RoomPeer(ws, await expect(ws, "joined"))


async def _recordings_once(client: TestClient, headers: dict[str, str],
                           done: Callable[[list[dict]], bool]) -> list[dict]:
    """Consultation 1's recordings as listed once ``done`` holds of them, or after ten seconds."""
    recordings: list[dict] = []
    for _ in range(100):
        answer = await client.get("/api/consultations/1/recordings", headers=headers)
        recordings = (await answer.json())["recordings"]
        if recordings and done(recordings):
            break
        await asyncio.sleep(0.1)
    return recordings


async def test_third_participant_switches_to_relay_and_recording_follows_consent(client: TestClient) -> None:
    li = await _clinician(client, "dr.li")
    wang = await _clinician(client, "dr.wang")
    assert wang.joined["mode"] == "p2p"
    visit = await _guest_link(client)
    patient = await _patient(client, li, visit)
    peers = (li, wang, patient)
    try:
        # The third seat switches the room to the relay, with no one asking.
        assert patient.joined["mode"] == "relay"
        for peer in (li, wang):
            assert (await peer.next("mode"))["mode"] == "relay"
        slots = patient.joined["relay_slots"]
        await asyncio.gather(*(peer.join_relay(slots) for peer in peers))
        for peer in peers:
            for other in peers:
                if other is not peer:
                    seen = await peer.sees(other, 20)
                    assert None not in seen, (peer.id, other.id, seen)

        # Recording needs everyone's consent.
        await li.send({"type": "recording", "on": True})
        assert (await li.next("error"))["code"] == "consent-missing"
        for username in ("dr.li", "dr.wang"):
            answer = await client.post("/api/consultations/1/recording-consent", json={"given": True},
                                       headers=await login(client, username))
            assert answer.status == 201, await answer.text()
        assert (await client.post("/api/guest/recording-consent", json={"guest": visit, "given": True})).status == 201
        for _ in range(3):
            assert (await li.next("consent"))["recording"] is True
        await li.send({"type": "recording", "on": True})
        for peer in peers:
            state = await peer.next("recording")
            assert state["on"] and state["by"] == li.id
        await asyncio.sleep(3)

        # The patient withdraws: the recording stops within a second, and everyone sees it.
        loop = asyncio.get_running_loop()
        withdrawn_at = loop.time()
        await client.post("/api/guest/recording-consent", json={"guest": visit, "given": False})
        for peer in peers:
            state = await peer.next("recording", within=1)
            assert state == {"type": "recording", "on": False, "by": None, "reason": "consent-withdrawn"}
        assert loop.time() - withdrawn_at < 1.0

        # The finished recording: listed for participants and auditors, played with ranges, audited.
        headers = await login(client, "dr.wang")
        recording = (await _recordings_once(client, headers, lambda rs: rs[0]["status"] == "ready"))[0]
        assert recording["status"] == "ready" and len(recording["consent_ids"]) == 3
        assert sorted(t["kind"] for t in recording["tracks"]) == ["audio"] * 3 + ["video"] * 3
        assert 2.5 <= recording["duration"] <= 5, recording["duration"]

        part = await client.get(recording["media_url"], headers={**headers, "Range": "bytes=0-99"})
        assert part.status == 206 and len(await part.read()) == 100
        assert part.headers["Content-Range"] == f"bytes 0-99/{recording['size']}"
        whole = await client.get(recording["media_url"], headers=await login(client, "auditor"))
        assert whole.status == 200
        container = av.open(io.BytesIO(await whole.read()))
        video = container.streams.video[0]
        frames = [f for p in container.demux(video) for f in video.codec_context.decode(p)]
        assert len(frames) > 30 and palette_index(frames[-1]) is not None
        outsider = await client.get(recording["media_url"], headers=await login(client, "dr.chen"))
        assert outsider.status == 403
        bad_range = await client.get(recording["media_url"], headers={**headers, "Range": "bytes=999999999-"})
        assert bad_range.status == 416

        trail = await audit.trail(client.app[DATABASE], consultation_id=1)
        actions = [e.action for e in trail]
        for action in ("consent.given", "consent.withdrawn", "recording.started", "recording.finished",
                       "recording.viewed"):
            assert action in actions, actions
        assert audit.verify(await audit.trail(client.app[DATABASE])) is None
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))


async def test_h264_room_records_matroska(settings: Settings) -> None:
    """A server whose relay carries H.264: two doctors record with consent (which switches the room to
    the relay), and the recording is Matroska with H.264 video, served and named as such."""
    client = await _start(dataclasses.replace(settings, relay_video_codec="h264"))
    await patient_beside_consents(client)
    li, wang = await _clinician(client, "dr.li"), await _clinician(client, "dr.wang")
    try:
        for username in ("dr.li", "dr.wang"):
            answer = await client.post("/api/consultations/1/recording-consent", json={"given": True},
                                       headers=await login(client, username))
            assert answer.status == 201, await answer.text()
        await li.send({"type": "recording", "on": True})
        for peer in (li, wang):
            assert (await peer.next("mode"))["mode"] == "relay"
        await asyncio.gather(*(peer.join_relay(li.joined["relay_slots"]) for peer in (li, wang)))
        assert None not in await wang.sees(li, 10)
        assert (await li.next("recording"))["on"]
        await asyncio.sleep(2)
        await li.send({"type": "recording", "on": False})
        assert not (await li.next("recording"))["on"]

        headers = await login(client, "dr.wang")
        recording = (await _recordings_once(client, headers, lambda rs: rs[0]["status"] == "ready"))[0]
        assert recording["status"] == "ready" and recording["media_type"] == "video/x-matroska"
        download = await client.get(recording["media_url"] + "?download=1", headers=headers)
        assert download.status == 200 and download.headers["Content-Type"] == "video/x-matroska"
        assert download.headers["Content-Disposition"].endswith('.mkv"')
        container = av.open(io.BytesIO(await download.read()))
        assert {s.codec_context.name for s in container.streams.video} == {"h264"}
        video = container.streams.video[0]
        frames = [f for p in container.demux(video) for f in video.codec_context.decode(p)]
        assert len(frames) > 20 and palette_index(frames[-1]) is not None
    finally:
        await asyncio.gather(li.close(), wang.close())
        await client.close()


async def test_long_recording_rolls_into_segments(settings: Settings) -> None:
    """Past recording_segment_seconds a recording continues in a new file: each file is finished, plays,
    and together they cover the time recorded."""
    client = await _start(dataclasses.replace(settings, recording_segment_seconds=1.5))
    await patient_beside_consents(client)
    li, wang = await _clinician(client, "dr.li"), await _clinician(client, "dr.wang")
    try:
        for username in ("dr.li", "dr.wang"):
            await client.post("/api/consultations/1/recording-consent", json={"given": True},
                              headers=await login(client, username))
        await li.send({"type": "recording", "on": True})
        await li.next("mode")
        await asyncio.gather(*(peer.join_relay(li.joined["relay_slots"]) for peer in (li, wang)))
        assert (await li.next("recording"))["on"]
        await asyncio.sleep(4.5)
        await li.send({"type": "recording", "on": False})
        assert not (await li.next("recording"))["on"]

        headers = await login(client, "dr.li")
        recordings = await _recordings_once(
            client, headers, lambda rs: len(rs) >= 3 and all(r["status"] == "ready" for r in rs))
        assert len(recordings) >= 3 and all(r["status"] == "ready" for r in recordings), recordings
        assert all(r["duration"] <= 2.0 for r in recordings), [r["duration"] for r in recordings]
        assert sum(r["duration"] for r in recordings) >= 3.0
        for recording in recordings:
            media = await client.get(recording["media_url"], headers=headers)
            container = av.open(io.BytesIO(await media.read()))
            assert len(container.streams.video) == 2 and container.duration is not None
    finally:
        await asyncio.gather(li.close(), wang.close())
        await client.close()
