"""Real aiortc peers through the relay with two layers: a viewer whose link loses packets moves to the
publisher's low layer and then to audio only while the others keep the high layer, and comes back when
its link recovers; a viewer may ask for audio only and for video again. Loss is injected at the viewer,
before its receivers see the packets (as aiortc's own tests drop packets), so its receiver reports say so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from media import layers
from media.layers import Layer
from media.relay import Relay, Slot

from ..support.peers import LOW_SIZE, RelayClient, palette_index, until

HOLD = 2.5  # seconds a link must hold before a step up (4 s in service), so the test takes seconds
HIGH_SIZE = (320, 240)  # a RelayClient's camera


class Lossy:
    """Drops ``share`` of each stream's RTP packets reaching a client's receivers, evenly, until set to 0.
    Retransmissions get through (on a real link most do), so loss shows in the client's receiver reports
    while its pictures are repaired; aiortc's receiver, unlike a browser's, asks again for a lost
    retransmission only at the next new gap, and would stall on one."""

    def __init__(self, client: RelayClient, kind: str | None = None) -> None:
        """``kind``: only that kind's streams lose packets (None: every stream)."""
        self.share = 0.0
        self.dropped = 0
        self._seen: dict[int, int] = {}
        for transceiver in client.pc.getTransceivers():
            if kind is not None and transceiver.kind != kind:
                continue
            receiver = transceiver.receiver
            receiver._handle_rtp_packet = self._wrap(receiver, receiver._handle_rtp_packet)  # type: ignore[method-assign]

    def _wrap(self, receiver: Any, handle: Any) -> Any:
        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            if packet.ssrc not in getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {}):
                seen = self._seen[packet.ssrc] = self._seen.get(packet.ssrc, 0) + 1
                if int(seen * self.share) != int((seen - 1) * self.share):
                    self.dropped += 1
                    return
            await handle(packet, arrival_time_ms)
        return lossy


@pytest.fixture
async def room(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Relay, dict[str, RelayClient]]]:
    """A doctor who sends two layers, and two viewers (slots for one publisher each)."""
    monkeypatch.setattr(layers, "HOLD_SECONDS", HOLD)
    clients: dict[str, RelayClient] = {}
    relay = Relay(on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    clients["doctor"] = RelayClient("doctor", slots=2, low_layer=True)
    clients["steady"] = RelayClient("steady", slots=2, camera=False)
    clients["weak"] = RelayClient("weak", slots=2, camera=False)
    for client in clients.values():
        await client.join(relay)
    yield relay, clients
    await relay.close()
    await asyncio.gather(*(c.close() for c in clients.values()))


def _layer(relay: Relay, viewer: str) -> str | None:
    return next(iter(relay.video_layout(viewer).values()), None)


async def _shows(client: RelayClient, size: tuple[int, int], publisher: str = "doctor") -> None:
    """``client`` decodes ten frames in a row of ``size`` showing the pattern, within ten seconds (frames
    decoded before a switch of layer are still queued in aiortc's track: they are read past)."""
    track = client.video_of(publisher)
    async with asyncio.timeout(10):
        in_a_row = 0
        while in_a_row < 10:
            frame = await track.recv()
            ok = (frame.width, frame.height) == size and palette_index(frame) is not None
            in_a_row = in_a_row + 1 if ok else 0


async def _weak_watching_the_doctor(relay: Relay, clients: dict[str, RelayClient]) -> Slot:
    """Once the weak viewer decodes the doctor's high layer: its slot for the doctor on the relay."""
    await clients["weak"].wait_for_slot("doctor")
    await _shows(clients["weak"], HIGH_SIZE)
    return next(s for s in relay.peers["weak"].slots if s.owner == "doctor")


def _audio_packets(relay: Relay, viewer: str) -> int:
    return sum(slot.audio.rewriter.forwarded for slot in relay.peers[viewer].slots)


async def test_a_lossy_viewer_steps_down_to_low_then_audio_only_while_the_other_keeps_high(room) -> None:
    """15 % loss at one viewer gives it the publisher's low layer, which it keeps at 5 % loss and decodes
    at the low layer's size; 40 % pauses its video while its audio keeps coming, and the publisher is told
    that viewer gets only its audio (not while it is on the low layer). The other viewer keeps the high
    layer throughout. Once the loss stops, the weak viewer climbs back, a step at a time, to the high
    layer."""
    relay, clients = room
    weak, steady = clients["weak"], clients["steady"]
    await weak.wait_for_slot("doctor")
    await _shows(steady, HIGH_SIZE)
    await _shows(weak, HIGH_SIZE)
    assert _layer(relay, "weak") == Layer.HIGH
    link = Lossy(weak)

    told = weak.on_layout

    def ease_at_the_step(layout: dict[str, str]) -> None:
        """5 % loss from the moment the relay steps down: neither bad enough to step down again nor good enough
        to climb, so the viewer stays on low. Eased here, not after polling for the step, so a busy loop cannot
        leave 15 % on past the step's grace and have the next report pause the video."""
        told(layout)
        if link.share == 0.15 and _layer(relay, "weak") == Layer.LOW:
            link.share = 0.05

    weak.on_layout = ease_at_the_step  # type: ignore[method-assign]
    link.share = 0.15
    await until(lambda: _layer(relay, "weak") == Layer.LOW, seconds=15)
    assert link.share == 0.05
    await _shows(weak, LOW_SIZE)
    assert _layer(relay, "weak") == Layer.LOW
    assert _layer(relay, "steady") == Layer.HIGH
    assert relay.audio_only("doctor") == [], "a viewer on the low layer still sees the publisher"
    await _shows(steady, HIGH_SIZE)

    link.share = 0.4
    await until(lambda: _layer(relay, "weak") == Layer.PAUSED, seconds=15)
    audio = _audio_packets(relay, "weak")
    await asyncio.sleep(1)
    assert _audio_packets(relay, "weak") > audio + 25, "audio goes on while video is paused"
    assert _layer(relay, "steady") == Layer.HIGH
    assert relay.audio_only("doctor") == ["weak"]

    link.share = 0.0
    await until(lambda: _layer(relay, "weak") == Layer.LOW, seconds=15)
    await until(lambda: _layer(relay, "weak") == Layer.HIGH, seconds=15)
    await _shows(weak, HIGH_SIZE)
    assert link.dropped > 0


async def test_a_viewer_paused_by_its_link_is_sent_padding_and_climbs_on_what_it_reports_of_it(room) -> None:
    """With its video paused, a browser reports otherwise on its audio alone, Chromium every 5 s or so,
    which kept it paused up to 10 s after its link was back. The relay sends a viewer its link paused
    padding on one video stream, 20 packets a second, and the viewer's reports on them are enough to
    climb on: here the relay hears nothing of the weak viewer's audio, and it climbs to the low layer
    once its link has held. A viewer who chose audio only is sent no padding, and while no link is paused
    the relay sends none at all (its padding task is not running)."""
    relay, clients = room
    await _weak_watching_the_doctor(relay, clients)
    assert not relay.padding
    weak = relay.peers["weak"]
    link = Lossy(clients["weak"])
    link.share = 0.4
    await until(lambda: _layer(relay, "weak") == Layer.PAUSED, seconds=15)
    for slot in weak.slots:  # as if the viewer reported on its audio rarely: the relay hears none of it
        slot.audio.on_loss = lambda lost: None
    padded = sum(slot.video.sender.padded for slot in weak.slots)
    await asyncio.sleep(2)
    assert sum(slot.video.sender.padded for slot in weak.slots) >= padded + 30
    link.share = 0.0
    cleared = asyncio.get_running_loop().time()
    await until(lambda: _layer(relay, "weak") == Layer.LOW, seconds=HOLD * 4 + 3)
    assert asyncio.get_running_loop().time() - cleared >= HOLD * 0.9, "not before the link has held"
    await _shows(clients["weak"], LOW_SIZE)
    await until(lambda: not relay.padding, seconds=1)

    steady = relay.peers["steady"]
    relay.want_video("steady", False)
    await asyncio.sleep(0.5)
    assert sum(slot.video.sender.padded for slot in steady.slots) == 0
    assert not relay.padding


async def test_a_viewer_may_ask_for_audio_only_and_for_video_again(room) -> None:
    """"Audio only" stops the video forwarded to that viewer (its audio goes on, nobody else's changes);
    asking for video again brings the high layer back on a clean link."""
    relay, clients = room
    slot = await _weak_watching_the_doctor(relay, clients)

    relay.want_video("weak", False)
    assert _layer(relay, "weak") == Layer.PAUSED and slot.video.selected is None
    forwarded, audio = slot.video.rewriter.forwarded, _audio_packets(relay, "weak")
    await asyncio.sleep(1)
    assert slot.video.rewriter.forwarded == forwarded
    assert _audio_packets(relay, "weak") > audio + 25
    assert _layer(relay, "steady") == Layer.HIGH

    relay.want_video("weak", True)
    assert _layer(relay, "weak") == Layer.HIGH
    await _shows(clients["weak"], HIGH_SIZE)


async def test_a_viewer_who_chose_audio_only_is_told_a_newcomers_video_is_paused() -> None:
    """A viewer who asked for audio only before a publisher came is told, by the layouts the relay
    announces, that the newcomer's slot carries no video ("paused", so the page marks it), not left to
    take it for the high layer: the newcomer's audio reaches the relay first and fills the slot, and its
    video, arriving after, changes no forwarding (nothing is selected for this viewer) but must still be
    said."""
    clients: dict[str, RelayClient] = {}
    told: dict[str, dict[str, str]] = {}

    def on_layout(pid: str, layout: dict[str, str]) -> None:
        clients[pid].on_layout(layout)
        told[pid] = dict(relay.video_layout(pid))  # what the relay's session sends with each layout

    relay = Relay(on_layout=on_layout)
    clients["weak"] = RelayClient("weak", slots=2, camera=False)
    clients["doctor"] = RelayClient("doctor", slots=2, low_layer=True)
    try:
        await clients["weak"].join(relay)
        relay.want_video("weak", False)
        await clients["doctor"].join(relay)
        await clients["weak"].wait_for_slot("doctor")
        (mid,) = (mid for mid, owner in clients["weak"].layout.items() if owner == "doctor")
        assert told["weak"] == {mid: Layer.PAUSED}
        assert relay.audio_only("doctor") == ["weak"]
    finally:
        await relay.close()
        await asyncio.gather(*(c.close() for c in clients.values()))


async def test_a_shared_screen_reaches_a_viewer_who_chose_audio_only(room) -> None:
    """A viewer who chose audio only still gets what a publisher shares of their screen (the others are
    there to look at it), and the publisher no longer counts it among those who get only its audio; when
    the share ends the viewer is back to audio only. A viewer whose link the relay paused is not sent it."""
    relay, clients = room
    slot = await _weak_watching_the_doctor(relay, clients)
    relay.want_video("weak", False)
    assert slot.video.selected is None and relay.audio_only("doctor") == ["weak"]

    relay.share_screens(frozenset({"doctor"}))
    assert slot.video.selected is not None and relay.video_layout("weak") == {slot.video_mid: Layer.HIGH}
    assert relay.audio_only("doctor") == [] and relay.peers["weak"].choice.layer == Layer.PAUSED, "still chosen"
    forwarded = slot.video.rewriter.forwarded
    await until(lambda: slot.video.rewriter.forwarded > forwarded + 20, seconds=10)

    relay.share_screens(frozenset())
    assert slot.video.selected is None and relay.audio_only("doctor") == ["weak"]

    relay.peers["weak"].choice.auto = Layer.PAUSED  # as the link's reports would make it
    relay.share_screens(frozenset({"doctor"}))
    assert slot.video.selected is None, "a link too weak for video is not sent the screen either"


async def test_a_shared_screen_follows_the_link_of_a_viewer_who_chose_audio_only(room) -> None:
    """A viewer who chose audio only is sent a publisher's shared screen as its link allows: when its reports
    of loss step its link down, the screen moves to the low layer with it, though the layer it chose (audio
    only) did not change."""
    relay, clients = room
    slot = await _weak_watching_the_doctor(relay, clients)
    relay.want_video("weak", False)
    relay.share_screens(frozenset({"doctor"}))
    assert relay.video_layout("weak") == {slot.video_mid: Layer.HIGH}
    link = Lossy(clients["weak"])
    link.share = 0.15
    await until(lambda: relay.video_layout("weak") == {slot.video_mid: Layer.LOW}, seconds=15)
    assert relay.peers["weak"].choice.layer == Layer.PAUSED, "still audio only by choice"
    assert slot.video.selected is not None and slot.video.selected.layer == Layer.LOW


async def test_packets_lost_just_before_a_pause_do_not_step_the_resumed_video_down(room) -> None:
    """A viewer's link drops all its video for half a second, then its video is paused before it has said
    so: a receiver counts a packet lost only when a later one comes, so its first report after the video
    resumes counts them (more than 10 % lost, a step down before). The relay leaves out what it sent
    before the pause: the resumed video stays on the high layer, and is decoded."""
    relay, clients = room
    slot = await _weak_watching_the_doctor(relay, clients)
    reports: list[layers.StreamReport] = []
    heard = slot.video.sender.on_report

    def spy(report: layers.StreamReport) -> None:
        reports.append(report)
        heard(report)
    slot.video.sender.on_report = spy
    link = Lossy(clients["weak"], "video")

    link.share = 1.0
    await asyncio.sleep(0.5)
    relay.want_video("weak", False)
    await asyncio.sleep(0.2)  # what the relay had queued before the pause is lost too
    link.share = 0.0
    dropped, paused = link.dropped, len(reports)
    await until(lambda: len(reports) > paused, seconds=5)  # a report during the pause: nothing lost yet
    assert reports[-1].fraction_lost == 0 and dropped > 5, (reports[-1], dropped)
    resumed_at = slot.video.rewriter._next_seq

    relay.want_video("weak", True)
    assert _layer(relay, "weak") == Layer.HIGH
    after = len(reports)
    await until(lambda: sum((r.highest - resumed_at) % 65536 < 32768 for r in reports[after:]) >= 2, seconds=10)
    first = next(r for r in reports[after:] if (r.highest - resumed_at) % 65536 < 32768)
    assert first.fraction_lost > layers.LOSS_DOWN, first  # what the receiver said: the packets before the pause
    assert _layer(relay, "weak") == Layer.HIGH
    await _shows(clients["weak"], HIGH_SIZE)


async def test_the_low_layer_is_not_recorded_and_a_single_layer_publisher_is_forwarded_at_low() -> None:
    """Only the camera's own picture is a publication (what the recorder takes); and a viewer on the low
    layer still sees a publisher that sends no low layer, at the only layer it has."""
    clients: dict[str, RelayClient] = {}
    relay = Relay(on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    try:
        clients["doctor"] = RelayClient("doctor", slots=2, low_layer=True)
        clients["patient"] = RelayClient("patient", slots=2)  # one layer only
        clients["viewer"] = RelayClient("viewer", slots=2, camera=False)
        for client in clients.values():
            await client.join(relay)
        await until(lambda: len(relay.sources()) == 5)
        assert sorted(p.participant_id for p in relay.publications() if p.kind == "video") == ["doctor", "patient"]
        assert sorted(relay.peers["doctor"].sources) == ["audio", "high", "low"]

        relay.peers["viewer"].choice.auto = Layer.LOW
        relay.want_video("viewer", True)  # re-chooses every slot
        assert sorted(relay.video_layout("viewer").values()) == ["high", "low"]
        viewer = clients["viewer"]
        await viewer.wait_for_slot("patient")
        await _shows(viewer, HIGH_SIZE, "patient")
        await _shows(viewer, LOW_SIZE)
    finally:
        await relay.close()
        await asyncio.gather(*(c.close() for c in clients.values()))
