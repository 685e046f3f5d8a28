"""The relay and recording driven by a real server: a third participant switches the room to the relay,
everyone decodes everyone through it, and a recording runs only with everyone's consent."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Callable

import av
from aiohttp.test_utils import TestClient
from aiortc import RTCSessionDescription

from server.appkeys import DATABASE
from server.audit import trail as audit
from server.settings import Settings

from ..conftest import _start, login
from ..server.test_metrics import scrape, total
from ..support.peers import RelayClient, palette_index
from ..support.room_peer import RoomPeer
from ..support.signaling_client import connect, expect, room_token
from ..support.visits import as_guest, consent, invite


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
    token = (await (await client.post("/api/guest/room-token", json=as_guest(visit))).json())["token"]
    ws = await connect(client, token)
    lobby = await expect(ws, "lobby")
    await li.send({"type": "admit", "participant_id": lobby["self"]["id"]})
    return RoomPeer(ws, await expect(ws, "joined"))


async def everyone_consents_to_recording(client: TestClient, visit: str, host: RoomPeer) -> None:
    """dr.li, dr.wang and the patient (through their invitation ``visit``) consent to the recording, and the
    room tells ``host`` of each."""
    for username in ("dr.li", "dr.wang"):
        answer = await client.post("/api/consultations/1/recording-consent", json={"given": True},
                                   headers=await login(client, username))
        assert answer.status == 201, await answer.text()
    assert (await client.post("/api/guest/recording-consent", json=as_guest(visit, given=True))).status == 201
    for _ in range(3):
        assert (await host.next("consent"))["recording"] is True


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
    """The third participant switches the room to the relay and all decode each other; recording is refused until all
    three consent, and stops for everyone within a second of the patient's withdrawal; the recording is served in
    ranges to a participant and whole to an auditor, refused to an outsider (403), and consents, recording and
    viewing are in an audit trail that verifies."""
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
        await everyone_consents_to_recording(client, visit, li)
        await li.send({"type": "recording", "on": True})
        for peer in peers:
            state = await peer.next("recording")
            assert state["on"] and state["by"] == li.id
        await asyncio.sleep(3)

        # The patient withdraws: the recording stops within a second, and everyone sees it.
        loop = asyncio.get_running_loop()
        withdrawn_at = loop.time()
        await client.post("/api/guest/recording-consent", json=as_guest(visit, given=False))
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


async def _three_in_relay(client: TestClient) -> tuple[RoomPeer, RoomPeer, RoomPeer]:
    """dr.li and dr.wang, then the patient admitted: the third seat switches the room to the relay."""
    li = await _clinician(client, "dr.li")
    wang = await _clinician(client, "dr.wang")
    patient = await _patient(client, li, await _guest_link(client))
    return li, wang, patient


async def test_the_joiner_that_switches_to_the_relay_is_told_once_and_answers_name_their_offer(
        client: TestClient) -> None:
    """The patient whose seat switches the room learns it from "joined" alone (no "mode" follows), the
    others from one "mode" with the same relay epoch. A client that offered twice anyway gets an answer per
    offer, each naming its offer_id, applies the one for its latest offer, and gets media both ways."""
    li, wang, patient = await _three_in_relay(client)
    try:
        epoch, slots = patient.joined["relay_epoch"], patient.joined["relay_slots"]
        assert patient.joined["mode"] == "relay" and epoch >= 1
        for peer in (li, wang):
            mode = await peer.next("mode")
            assert (mode["mode"], mode["relay_epoch"]) == ("relay", epoch)
        await asyncio.gather(li.join_relay(slots), wang.join_relay(slots))

        stale, latest = RelayClient(patient.id, slots=slots), RelayClient(patient.id, slots=slots)
        patient.media = latest
        for media in (stale, latest):
            await media.pc.setLocalDescription(await media.pc.createOffer())
        stale_id = await patient.offer_to_relay(stale.pc.localDescription.sdp)
        latest_id = await patient.offer_to_relay(latest.pc.localDescription.sdp)
        answers = [await patient.next("answer") for _ in range(2)]
        assert [a["offer_id"] for a in answers] == [stale_id, latest_id] and stale_id != latest_id
        await latest.pc.setRemoteDescription(RTCSessionDescription(answers[1]["sdp"], "answer"))
        assert None not in await patient.sees(li, 10)
        assert None not in await li.sees(patient, 10)
        await stale.close()

        await patient.send({"type": "ping", "id": 1})
        await patient.next("pong")
        assert patient.inbox["mode"].empty(), "joined said relay already: no second notice"
        # The layout names the audio slot beside the video slot of each participant in it.
        layout = latest.layout
        audio_mids = {t.mid for t in latest.pc.getTransceivers() if t.kind == "audio"}
        last = None
        while not patient.inbox["layout"].empty():
            last = patient.inbox["layout"].get_nowait()
        assert last is not None and sorted(last["audio_slots"].values()) == sorted(layout.values())
        assert set(last["audio_slots"]) <= audio_mids
    finally:
        await asyncio.gather(li.close(), wang.close(), patient.close())


async def _layout_until(peer: RoomPeer, done: Callable[[dict], bool]) -> dict:
    while not done(layout := await peer.next("layout")):
        pass
    return layout


async def test_audio_only_asked_through_signaling_pauses_the_askers_video_and_the_node_counts_it(
        client: TestClient) -> None:
    """A participant's "receive" with video false goes through the room to the relay: its next layout marks
    every filled slot "paused" while the others' still say "high", each of the others hears that this
    participant gets only their audio ("audience"), and the node's metrics count one paused viewer (and
    /readyz its relay and streams); "video": true brings the high layer back to it, and the others hear
    that everyone gets their video again."""
    li, wang, patient = await _three_in_relay(client)
    try:
        slots = patient.joined["relay_slots"]
        for peer in (li, wang):
            await peer.next("mode")
        await asyncio.gather(li.join_relay(slots), wang.join_relay(slots), patient.join_relay(slots))
        assert None not in await patient.sees(li, 5)
        def everyone(state: str) -> Callable[[dict], bool]:
            return lambda layout: len(layout.get("video", {})) == 2 and set(layout["video"].values()) == {state}

        await patient.send({"type": "receive", "to": "relay", "video": False})
        await _layout_until(patient, everyone("paused"))
        for publisher in (li, wang):
            assert (await publisher.next("audience"))["audio_only"] == [patient.id]
        assert patient.inbox["audience"].empty(), "the patient sends video to all: nobody takes only its audio"
        # The relay runs in a worker, which reports what it forwards each second: the count follows.
        for _ in range(50):
            samples = await scrape(client)
            if total(samples, "telemed_relay_viewers", layer="paused") == 1:
                break
            await asyncio.sleep(0.1)
        assert total(samples, "telemed_relays") == 1
        assert total(samples, "telemed_relay_viewers", layer="paused") == 1
        assert total(samples, "telemed_relay_viewers", layer="high") == 2
        assert total(samples, "telemed_relay_streams", kind="audio") == 6  # each hears the two others
        assert total(samples, "telemed_relay_streams", kind="video") == 4  # all but the patient's two
        ready = await (await client.get("/readyz")).json()  # what the node tells a load balancer
        assert ready["relays"] == {"rooms": 1, "streams": 10, "limit": None} and ready["checks"]["relays"] == "ok"

        await patient.send({"type": "receive", "to": "relay", "video": True})
        await _layout_until(patient, everyone("high"))
        for publisher in (li, wang):
            assert (await publisher.next("audience"))["audio_only"] == []
        assert None not in await patient.sees(wang, 5)
    finally:
        await asyncio.gather(li.close(), wang.close(), patient.close())


async def test_one_who_resumes_hears_again_what_the_relay_told_them(client: TestClient) -> None:
    """What the relay tells a participant goes to their socket of the moment and is lost if it drops: once
    they take their seat back on a new socket (their relay connection kept, as a browser keeps it), the
    relay says again who gets only their audio, and their layout."""
    li, wang, patient = await _three_in_relay(client)
    again: RoomPeer | None = None
    try:
        slots = patient.joined["relay_slots"]
        for peer in (li, wang):
            await peer.next("mode")
        await asyncio.gather(li.join_relay(slots), wang.join_relay(slots), patient.join_relay(slots))
        await patient.send({"type": "receive", "to": "relay", "video": False})
        assert (await li.next("audience"))["audio_only"] == [patient.id]

        await li.ws.close(code=4000)  # the network drops: no leave
        assert (await wang.next("participant-reconnecting"))["participant_id"] == li.id
        ws = await connect(client, await room_token(client, "dr.li"), resume=li.joined["resume"])
        again = RoomPeer(ws, await expect(ws, "joined"))
        assert again.joined["resumed"] is True and again.id == li.id
        assert (await again.next("audience"))["audio_only"] == [patient.id]
        layout = await again.next("layout")
        assert set(layout["slots"].values()) == {wang.id, patient.id}
    finally:
        await asyncio.gather(li.close(), wang.close(), patient.close(), *([again.close()] if again else []))


async def test_the_relay_answers_what_it_cannot_use_with_an_error(client: TestClient) -> None:
    """An offer that is not SDP gets error "negotiation-failed", not an answer with no media in it; a
    candidate before any offer, even the null that ends gathering, gets "not-in-relay"."""
    li, wang, patient = await _three_in_relay(client)
    try:
        await patient.send({"type": "candidate", "to": "relay", "candidate": None})
        assert (await patient.next("error"))["code"] == "not-in-relay"
        await patient.send({"type": "offer", "to": "relay", "sdp": "hello", "offer_id": "x"})
        assert (await patient.next("error"))["code"] == "negotiation-failed"
        assert patient.inbox["answer"].empty()
    finally:
        await asyncio.gather(li.close(), wang.close(), patient.close())


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
        # About 2 s recorded: 20 frames at 10 fps, the H.264 encoder's rate on a loaded machine (a full run had
        # exactly 20); what matters is that they decode, and show the camera.
        assert len(frames) >= 10 and palette_index(frames[-1]) is not None
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
