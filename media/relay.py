"""One consultation's media relay: a peer connection per participant, each track forwarded to the others.

RTP packets are forwarded as they arrive (media/rtp_forward.py), rewritten per viewer; nothing is
decoded, encoded or held back for a whole frame. Whole frames are assembled only for the recorder, off the
forwarding path (a :class:`Publication` per published track, fed while a recording takes it).

Each participant's browser makes one connection to the relay. Its offer carries its own microphone and
camera (send) and then pairs of receive-only audio/video transceivers, the *slots*; the relay fills a
slot with another participant's tracks and tells the browser which participant is in which slot (the
layout). Slots are fixed at the first negotiation, so people joining and leaving never trigger a new
offer/answer, and a screen share is the browser replacing its camera track in place.

A publisher may send its camera twice: a second sending video transceiver carries a low layer (about
320x180). Per viewer, :class:`media.layers.LayerChoice` picks from the viewer's receiver reports and REMB
whether its slots get the others' high layer, their low layer, or no video (audio only), and the layout
says which (``video_layout``). Only the high layer is recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from . import passthrough, rtp_tap
from .errors import NegotiationFailed, NotInRelay
from .forwarding import Publication
from .layers import Layer, LayerChoice, LinkReport
from .passthrough import ask_opus_resilience, offered_direction, pin_codec, tap_receiver
from .rtp_forward import PacketOutput, PacketSource

log = logging.getLogger(__name__)

Layout = dict[str, str]  # slot's video mid -> participant id
VIDEO_CODECS = {"vp8": "video/VP8", "h264": "video/H264"}
AUDIO_CODEC = "audio/opus"
CLOCK_RATES = {"audio": 48_000, "video": 90_000}
# A viewer whose link paused its video is sent this many padding-only packets a second on one of its video
# streams (about 10 kbit/s), so that its reports go on saying what its link loses: with no video coming, a
# browser reports otherwise on its audio alone, and Chromium does so every 5 s or so, which kept it paused
# up to 10 s after its link was back. 20 a second: on a link that still loses 5 %, a second with no loss
# comes one time in three, and the four in a row a climb needs, rarely.
PADDING_PER_SECOND = 20


@dataclass
class Slot:
    audio_mid: str
    video_mid: str
    audio: PacketOutput
    video: PacketOutput
    owner: str | None = None


@dataclass
class RelayPeer:
    participant_id: str
    pc: RTCPeerConnection
    publish: bool
    subscribe: bool
    choice: LayerChoice
    sent: tuple[float, int] = (0.0, 0)  # when, and how many payload bytes the relay had sent this viewer then
    slots: list[Slot] = field(default_factory=list)
    sources: dict[str, PacketSource] = field(default_factory=dict)  # by layer (AUDIO, HIGH, LOW): for viewers
    publications: dict[str, Publication] = field(default_factory=dict)  # by kind: frames for the recorder

    def layout(self) -> Layout:
        return {slot.video_mid: slot.owner for slot in self.slots if slot.owner is not None}

    def audio_layout(self) -> Layout:
        """The same slots by their audio mid: a client need not assume how audio pairs with video."""
        return {slot.audio_mid: slot.owner for slot in self.slots if slot.owner is not None}


AUDIO = "audio"  # the keys of RelayPeer.sources: a publisher's audio, its camera, and its camera's low layer
SENT_VIDEO = (Layer.HIGH, Layer.LOW)  # a publisher's sending video transceivers, in m-line order


class Relay:
    """Forwards every participant's encoded audio and video to every other participant."""

    def __init__(self, *, ice_servers: list[RTCIceServer] | None = None, video_codec: str = "vp8",
                 on_layout: Callable[[str, Layout], None] | None = None,
                 on_publication: Callable[[Publication], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # max-bundle: every slot rides one transport. aiortc's default ("balanced") leaves the second and
        # later m-lines of a kind on a transport it then discards when answering a bundled offer.
        self.configuration = RTCConfiguration(iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        # Packets pass through untouched, so the whole room speaks one video codec (and Opus).
        self.video_codec = VIDEO_CODECS[video_codec]
        self.peers: dict[str, RelayPeer] = {}
        self.sharing: frozenset[str] = frozenset()  # who shares a screen (share_screens)
        self._clock = clock
        self._names = itertools.count()  # a source's name is unique: a participant who reconnects is a new source
        self._on_layout = on_layout or (lambda pid, layout: None)
        self._on_publication = on_publication or (lambda publication: None)
        self._padding: asyncio.Task[None] | None = None

    # ---- negotiation ----

    async def answer(self, participant_id: str, offer_sdp: str, *, publish: bool = True,
                     subscribe: bool = True) -> str:
        """Take a participant's offer (a new connection, replacing any earlier one) and return the answer."""
        if not is_media_offer(offer_sdp):
            # aiortc answers anything, even "hello", with an SDP that has no media: say no instead, and
            # keep whatever connection the participant had.
            raise NegotiationFailed("That offer is not SDP with audio or video in it.")
        before = self.peers.get(participant_id)
        await self._close(participant_id)
        pc = RTCPeerConnection(self.configuration)
        # A new offer from the same participant keeps what it asked for (audio only, say) and how its link was.
        choice = before.choice if before is not None else LayerChoice(self._clock())
        peer = RelayPeer(participant_id, pc, publish=publish, subscribe=subscribe, choice=choice)
        self.peers[participant_id] = peer
        self._start_padding()  # a viewer paused by its link before it reconnected still is
        pc.on("track", lambda track: self._on_track(peer, track))
        pc.on("connectionstatechange", lambda: self._on_state(peer))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            self._pin_codecs(peer)
            self._make_slots(peer)
            await pc.setLocalDescription(await pc.createAnswer())
        except NegotiationFailed:
            await self.remove(participant_id)
            raise
        except Exception as exc:  # aiortc raises ValueError, OperationError, InternalError... on bad SDP
            await self.remove(participant_id)
            raise NegotiationFailed(f"The relay could not accept that offer: {exc}") from None
        self._fill_slots(peer)
        self._announce(peer)
        return pc.localDescription.sdp

    async def add_candidate(self, participant_id: str, candidate: str | None, sdp_mid: str | None,
                            sdp_mline_index: int | None) -> None:
        """A trickled candidate; None (or empty) ends the participant's gathering."""
        peer = self.peers.get(participant_id)
        if peer is None:
            raise NotInRelay("Send an offer to the relay first.")
        if not candidate:  # end of candidates
            return
        try:
            ice = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (ValueError, IndexError):
            raise NegotiationFailed("That ICE candidate could not be read.") from None
        ice.sdpMid, ice.sdpMLineIndex = sdp_mid, sdp_mline_index
        await peer.pc.addIceCandidate(ice)

    def share_screens(self, sharing: frozenset[str]) -> None:
        """Who shares a screen now. A shared screen is what the others are there to look at: it reaches those
        who chose audio only too (not those whose link the relay paused, which cannot carry it)."""
        if sharing == self.sharing:
            return
        self.sharing = sharing
        for peer in self.peers.values():
            if not peer.choice.video_wanted:
                self._choose(peer, changed=True)

    def want_video(self, participant_id: str, wanted: bool) -> None:
        """The participant asked for audio only (False) or for the others' video again (True)."""
        peer = self.peers.get(participant_id)
        if peer is None:
            raise NotInRelay("Send an offer to the relay first.")
        peer.choice.want_video(wanted, self._clock())
        self._choose(peer, changed=True)

    async def remove(self, participant_id: str) -> None:
        """The participant left: end what it published, close its peer."""
        await self._close(participant_id)

    async def _close(self, participant_id: str) -> None:
        peer = self.peers.pop(participant_id, None)
        if peer is None:
            return
        for source in peer.sources.values():
            source.end()
        for publication in peer.publications.values():
            publication.end()
        for slot in peer.slots:
            slot.audio.close()
            slot.video.close()
        for other in self.peers.values():
            freed = [slot for slot in other.slots if slot.owner == participant_id]
            for slot in freed:
                slot.owner = None
            if freed:
                self._announce(other)
        await peer.pc.close()

    async def close(self) -> None:
        self._stop_padding()
        for participant_id in list(self.peers):
            await self.remove(participant_id)
        self._stop_padding()  # one that a report started while the peers closed

    def _stop_padding(self) -> None:
        if self._padding is not None:
            self._padding.cancel()
            self._padding = None

    @property
    def padding(self) -> bool:
        """Whether the relay is sending padding: only while some viewer's link has paused its video."""
        return self._padding is not None

    def pad(self) -> bool:
        """One padding-only packet to each viewer whose link paused its video (not one who chose audio only:
        the relay need not know how its link does until it asks for video again), on one of its video
        streams: what its link loses of them tells the layer choice when it may climb. False when no viewer
        wants padding."""
        padded = [peer for peer in self.peers.values() if _wants_padding(peer)]
        for peer in padded:
            any(slot.video.pad() for slot in peer.slots)  # the first that can: the link is one
        return bool(padded)

    def _start_padding(self) -> None:
        """Pad from now on if a viewer wants it. The task ends with the last such viewer, so a relay where
        every link keeps up is not woken 20 times a second for nothing."""
        if self._padding is None and any(_wants_padding(peer) for peer in self.peers.values()):
            self._padding = asyncio.create_task(self._pad_on(), name="relay-padding")

    async def _pad_on(self) -> None:
        # On a schedule, not a sleep after each packet: on a busy loop every wake-up is late, and sleeps
        # added to the lateness would send fewer packets than the viewer's reports need. Late by more than
        # a beat, it sends one at once and goes on from there, not all it missed in a burst.
        loop = asyncio.get_running_loop()
        beat = 1 / PADDING_PER_SECOND
        due = loop.time()
        try:
            while True:
                due = max(due + beat, loop.time())
                await asyncio.sleep(due - loop.time())
                try:
                    if not self.pad():
                        return
                except Exception:  # one viewer's trouble must not stop the others' padding
                    log.exception("relay: padding failed")
        finally:
            if self._padding is asyncio.current_task():
                self._padding = None

    # ---- what is flowing ----

    def audio_layout(self, participant_id: str) -> Layout:
        """Who is in which of this participant's slots, by the slot's audio mid."""
        peer = self.peers.get(participant_id)
        return peer.audio_layout() if peer is not None else {}

    def video_layout(self, participant_id: str) -> Layout:
        """What each of this participant's filled slots forwards of its owner's video, by the slot's video
        mid: "high", "low" or "paused" (audio only); a slot whose owner sends no video is not named."""
        peer = self.peers.get(participant_id)
        layout: Layout = {}
        for slot in peer.slots if peer is not None else ():
            owner = self.peers.get(slot.owner) if slot.owner is not None else None
            if owner is not None and (Layer.HIGH in owner.sources or Layer.LOW in owner.sources):
                selected = slot.video.selected
                layout[slot.video_mid] = selected.layer if selected is not None else Layer.PAUSED
        return layout

    def audio_only(self, publisher_id: str) -> list[str]:
        """Who gets none of this participant's video (their link cannot carry it, or they asked for audio
        only): the viewers the layer choice has paused who have a slot of theirs. Empty for one who sends no
        video. (Not a slot whose video is merely not connected yet.)"""
        publisher = self.peers.get(publisher_id)
        if publisher is None or not (Layer.HIGH in publisher.sources or Layer.LOW in publisher.sources):
            return []
        return sorted(viewer.participant_id for viewer in self.peers.values()
                      if viewer is not publisher and viewer.choice.layer == Layer.PAUSED
                      and self._video_for(viewer, publisher) is None
                      and any(slot.owner == publisher_id for slot in viewer.slots))

    def census(self) -> tuple[dict[str, int], dict[str, int]]:
        """What this relay forwards now: streams by kind (outputs with a source selected), and viewers (those
        with slots) by the layer their link gets (high, low, paused). For the node's metrics."""
        streams = {"audio": 0, "video": 0}
        viewers = {layer.value: 0 for layer in Layer}
        for peer in self.peers.values():
            for slot in peer.slots:
                streams["audio"] += slot.audio.selected is not None
                streams["video"] += slot.video.selected is not None
            if peer.slots:
                viewers[peer.choice.layer.value] += 1
        return streams, viewers

    def sources(self) -> list[PacketSource]:
        """Every published track's packet stream, as the viewers get it."""
        return [s for peer in self.peers.values() for s in peer.sources.values()]

    def publications(self) -> list[Publication]:
        return [p for peer in self.peers.values() for p in peer.publications.values() if not p.ended]

    # ---- internals ----

    def _pin_codecs(self, peer: RelayPeer) -> None:
        for transceiver in peer.pc.getTransceivers():
            wanted = self.video_codec if transceiver.kind == "video" else AUDIO_CODEC
            if not pin_codec(transceiver, wanted):
                name = wanted.split("/")[1]
                raise NegotiationFailed(f"This consultation's relay carries {name} {transceiver.kind}, "
                                        f"and this browser did not offer it.")
            if transceiver.kind == "audio":
                ask_opus_resilience(transceiver)  # audio is never paused: make it survive loss, and cheap

    def _make_slots(self, peer: RelayPeer) -> None:
        """Pair the offer's receive-only transceivers into slots, and put a packet output in each."""
        wanting: dict[str, list[RTCRtpTransceiver]] = {"audio": [], "video": []}
        for transceiver in peer.pc.getTransceivers():
            if offered_direction(transceiver) == "recvonly":
                wanting[transceiver.kind].append(transceiver)
        if not peer.subscribe:
            return
        for audio_t, video_t in zip(wanting["audio"], wanting["video"], strict=False):
            audio, video = self._output(peer, audio_t), self._output(peer, video_t)
            peer.slots.append(Slot(audio_t.mid or "", video_t.mid or "", audio, video))

    def _output(self, peer: RelayPeer, transceiver: RTCRtpTransceiver) -> PacketOutput:
        # Made before the connection is up, so the sender learns its payload types when it starts.
        transceiver.direction = "sendonly"
        codec = (self.video_codec if transceiver.kind == "video" else AUDIO_CODEC).split("/")[1]
        sender = rtp_tap.PacketSender(transceiver.sender)
        sender.on_estimate = lambda bps: self._estimated(peer, bps)
        output = PacketOutput(sender, transceiver.kind, codec, CLOCK_RATES[transceiver.kind])
        output.on_loss = lambda lost: self._heard(peer, LinkReport(self._clock(), lost=lost))
        return output

    def _estimated(self, peer: RelayPeer, bps: int) -> None:
        """A REMB: weighed against what the relay sent this viewer since the one before."""
        now = self._clock()
        sent = sum(s.audio.sender.octets + s.video.sender.octets for s in peer.slots)
        (then, sent_then), peer.sent = peer.sent, (now, sent)
        sending = round((sent - sent_then) * 8 / (now - then)) if then and now - then > 0.2 else None
        self._heard(peer, LinkReport(now, estimate_bps=bps, sending_bps=sending))

    def _heard(self, peer: RelayPeer, report: LinkReport) -> None:
        if self.peers.get(peer.participant_id) is peer:
            layer, auto = peer.choice.layer, peer.choice.auto
            changed = peer.choice.report(report) != layer
            # One who chose audio only is sent a shared screen as their link allows: it follows the link.
            screen = bool(self.sharing) and not peer.choice.video_wanted and peer.choice.auto != auto
            self._choose(peer, changed=changed or screen)

    def _choose(self, peer: RelayPeer, *, changed: bool) -> None:
        """Point each of the viewer's video slots at the layer its choice says, and say so if it changed."""
        if not changed:
            return
        for slot in peer.slots:
            owner = self.peers.get(slot.owner) if slot.owner is not None else None
            slot.video.select(self._video_for(peer, owner) if owner is not None else None)
        log.info("relay: %s now gets %s video", peer.participant_id, peer.choice.layer)
        self._announce(peer)
        self._start_padding()

    def _video_for(self, viewer: RelayPeer, publisher: RelayPeer) -> PacketSource | None:
        layer = viewer.choice.layer
        if layer == Layer.PAUSED and not viewer.choice.video_wanted and publisher.participant_id in self.sharing:
            layer = viewer.choice.auto  # audio only by choice, but this is a shared screen: as the link allows
        if layer == Layer.PAUSED:
            return None
        if layer == Layer.LOW and Layer.LOW in publisher.sources:
            return publisher.sources[Layer.LOW]
        return publisher.sources.get(Layer.HIGH)

    def _on_track(self, peer: RelayPeer, track: object) -> None:
        transceiver = next(t for t in peer.pc.getTransceivers() if t.receiver.track is track)
        receiver, kind = transceiver.receiver, transceiver.kind
        if kind == "audio":
            key = AUDIO
        else:  # the first video the publisher sends is its camera, the second that camera's low layer
            sent = [t for t in peer.pc.getTransceivers()
                    if t.kind == "video" and offered_direction(t) in ("sendonly", "sendrecv")]
            index = sent.index(transceiver) if transceiver in sent else len(SENT_VIDEO)
            key = SENT_VIDEO[index] if index < len(SENT_VIDEO) else ""
        if not peer.publish or not key or key in peer.sources:
            return  # not allowed to publish, or a track beyond those forwarded
        source = PacketSource(f"{peer.participant_id}/{key}/{next(self._names)}", kind,
                              lambda ssrc: rtp_tap.request_keyframe(receiver, ssrc), layer=key)
        first_video = kind == "video" and not (Layer.HIGH in peer.sources or Layer.LOW in peer.sources)
        peer.sources[key] = source
        if key == Layer.LOW:  # viewers only: the recording keeps the camera's own picture
            rtp_tap.tap_packets(receiver, source.deliver, on_sender_report=source.sender_report)
        else:
            publication = Publication(peer.participant_id, kind, lambda: passthrough.request_keyframe(receiver))
            rtp_tap.tap_packets(receiver, source.deliver, frames_wanted=lambda: bool(publication.sinks),
                                on_sender_report=source.sender_report)
            tap_receiver(receiver, publication.deliver)
            peer.publications[kind] = publication
        for other in self.peers.values():
            if other is not peer:
                # Its first video names its slots in each viewer's video layout (paused for one who asked
                # for audio only: the selected source stays None, and that alone would tell them nothing).
                self._fill_slots(other, changed=first_video)
        if key != Layer.LOW:
            self._on_publication(publication)

    def _fill_slots(self, peer: RelayPeer, *, changed: bool = False) -> None:
        """Give every other publishing participant a slot of this peer's, and attach its tracks; announce
        the peer's layout if that changed what it shows (or ``changed`` says so)."""
        for other in self.peers.values():
            if other is peer or not other.sources:
                continue
            slot = next((s for s in peer.slots if s.owner == other.participant_id), None)
            if slot is None:
                slot = next((s for s in peer.slots if s.owner is None), None)
                if slot is None:
                    log.warning("relay: %s has no free slot for %s", peer.participant_id, other.participant_id)
                    continue
                slot.owner, changed = other.participant_id, True
            video = slot.video.selected
            slot.audio.select(other.sources.get(AUDIO))
            slot.video.select(self._video_for(peer, other))
            changed = changed or slot.video.selected is not video
        if changed:
            self._announce(peer)

    def _announce(self, peer: RelayPeer) -> None:
        self._on_layout(peer.participant_id, peer.layout())

    def _on_state(self, peer: RelayPeer) -> None:
        if peer.pc.connectionState in ("failed", "closed") and self.peers.get(peer.participant_id) is peer:
            task = asyncio.ensure_future(self.remove(peer.participant_id))
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


def _wants_padding(peer: RelayPeer) -> bool:
    return peer.choice.auto == Layer.PAUSED and peer.choice.video_wanted


def is_media_offer(sdp: str) -> bool:
    """Whether ``sdp`` is a session description with at least one audio or video section."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    return lines[0].strip() == "v=0" and any(line.startswith(("m=audio ", "m=video ")) for line in lines)
