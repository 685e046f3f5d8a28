"""Packets from a publisher to viewers: the glue between media/rtp_tap.py (aiortc) and media/rtp_rewrite.py
(the rewriting), used by media/relay.py.

- :class:`PacketSource` is one publisher's stream on the relay: every packet goes into its cache and to
  each attached output at once, and key frame requests go upstream at most every
  ``KEYFRAME_REQUEST_INTERVAL`` seconds, as media/forwarding.py does for frames. What is the same for
  every viewer (the packet's parse, the time of sending) is worked out once per packet, here.
- :class:`PacketOutput` is one viewer's stream: a rewriter and the sender it writes to. NACKs are answered
  from the cache of the source each lost packet came from; PLI/FIR is passed to the source forwarded; the
  viewer's receiver reports of the stream become its loss (:class:`media.layers.StreamLoss`, told where
  the stream resumed after a silence). An output that forwards nothing (a viewer whose video is paused)
  is offered no packets at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiortc.rtp import RtpPacket

from .layers import StreamLoss, StreamReport
from .rtp_rewrite import TS_MOD, Outgoing, PacketCache, RateLimit, SourcePacket, StreamRewriter
from .rtp_tap import PacketSender, TappedPacket
from .rtp_wire import audio_level_byte, ntp_now

KEYFRAME_REQUEST_INTERVAL = 0.5  # seconds, as media/forwarding.py
CACHE_PACKETS = 1024  # about 2-4 s of a 640x480 stream; NACKs for older packets are too late anyway
PADDING_KEPT = 256  # the padding packets last sent (about 12 s of them), to send again on a NACK


class PacketSource:
    """One publisher's stream: packets in (from :func:`media.rtp_tap.tap_packets`), out to every output."""

    def __init__(self, name: str, kind: str, ask_keyframe: Callable[[int], Awaitable[None]], *, layer: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.kind = name, kind
        self.layer = layer  # which of its publisher's streams this is, for the relay ("high", "low"...)
        self.cache: PacketCache[RtpPacket] = PacketCache(CACHE_PACKETS)
        self.outputs: set[PacketOutput] = set()
        self.ssrc: int | None = None
        self.codec: str | None = None  # "VP8", "H264", "opus", from the first packet
        self.reported: tuple[int, int] | None = None  # the publisher's last sender report: (NTP, RTP timestamp)
        self.packets = self.keyframe_requests = 0
        self._ask, self._limit = ask_keyframe, RateLimit(KEYFRAME_REQUEST_INTERVAL, clock)
        self._tasks: set[asyncio.Future[None]] = set()

    def deliver(self, tapped: TappedPacket) -> None:
        packet = tapped.packet
        self.packets += 1
        self.ssrc, self.codec = packet.ssrc, tapped.codec
        self.cache.put(packet.sequence_number, packet)
        if not self.outputs:
            return
        shared = SourcePacket.parse(tapped.codec, packet.sequence_number, packet.timestamp, bool(packet.marker),
                                    packet.payload, audio_level_byte(packet.extensions.audio_level))
        ntp = ntp_now()
        for output in tuple(self.outputs):
            output.offer(self, shared, tapped.arrived, ntp)

    def sender_report(self, ntp: int, rtp: int) -> None:
        """The publisher's sender report: its NTP time at RTP timestamp ``rtp``."""
        self.reported = (ntp, rtp)

    def end(self) -> None:
        """The publisher is gone: every output forwarding it goes quiet (and stays, ready for another)."""
        for output in tuple(self.outputs):
            if output.selected is self:
                output.select(None)
        self.outputs.clear()

    def request_keyframe(self) -> None:
        if self.kind != "video" or self.ssrc is None or not self._limit.allow():
            return
        self.keyframe_requests += 1
        task = asyncio.ensure_future(self._ask(self.ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class PacketOutput:
    """One viewer's outgoing stream of a kind: forwards the selected source's packets, rewritten."""

    def __init__(self, sender: PacketSender, kind: str, codec: str, clock_rate: int) -> None:
        self.sender = sender
        self.rewriter = StreamRewriter(sender.ssrc, kind, codec, clock_rate)
        self.sources: dict[str, PacketSource] = {}
        self.selected: PacketSource | None = None
        self.loss = StreamLoss()
        self.on_loss: Callable[[float], None] = lambda fraction: None  # the share lost, from each report
        self._padding = False  # silent, and sending padding instead
        self._padded: PacketCache[int] | None = None  # the padding sent lately: its timestamps, to send again
        sender.on_nack = self.nacked
        sender.on_keyframe_request = self.keyframe_wanted
        sender.on_report = self.reported

    def select(self, source: PacketSource | None) -> None:
        """Forward ``source`` from its next key frame (None: stop now). The previous source goes on until then."""
        if source is self.selected:
            return
        if source is not None:
            self.sources[source.name] = source
            source.outputs.add(self)
        else:  # stopped at once: no source need offer it anything until it selects one again
            for known in self.sources.values():
                known.outputs.discard(self)
        self.selected = source
        self.rewriter.select(None if source is None else source.name)
        if source is not None:
            source.request_keyframe()

    def offer(self, source: PacketSource, packet: SourcePacket, arrived: float, ntp: int) -> None:
        """``source``'s packet, which arrived at ``arrived`` (monotonic) and goes out at ``ntp`` (wall clock,
        64-bit NTP): forward it to this viewer if it is to have it. Once per packet and viewer: kept lean."""
        sender = self.sender
        if not sender.ready:  # not connected yet: a key frame sent now would be lost, wait for the next
            return
        rewriter = self.rewriter
        silent = rewriter.current is None and sender.sent > 0  # paused, or its slot emptied
        out = rewriter.forward(source.name, packet, arrived)
        if out is not None:
            if silent:
                self.loss.resumed(out[0])  # what the viewer lost before the silence is not its link's now
                self._padding = False
            # the publisher's last sender report in this stream's timestamps: what keeps a viewer's audio
            # and video of one publisher in step, as the publisher had them
            # (moved as this stream moves the source's timestamps: by its timestamp less the source's)
            reported = source.reported
            report = None if reported is None else (reported[0], (reported[1] + out[1] - packet.timestamp) % TS_MOD)
            sender.forward(out[0], out[1], packet, out[2], ntp, report)
            return
        if rewriter.waiting and source is self.selected:
            source.request_keyframe()
        if rewriter.current is not None and rewriter.current.source != source.name and source is not self.selected:
            source.outputs.discard(self)  # switched away from it for good

    def pad(self) -> bool:
        """One padding-only packet on this stream while it forwards nothing, so the viewer's reports on it
        go on saying what its link loses (with its video paused, a browser reports otherwise on its audio
        alone, Chromium every 5 s or so); False, and nothing sent, while it forwards or is not connected."""
        if not self.sender.ready:
            return False
        place = self.rewriter.padding()
        if place is None:
            return False
        if not self._padding:  # what the viewer lost before the silence is not its link's now
            self.loss.resumed(place[0])
            self._padding = True
        if self._padded is None:
            self._padded = PacketCache(PADDING_KEPT)
        self._padded.put(*place)
        self.sender.pad(*place)
        return True

    def nacked(self, sequence_numbers: list[int]) -> None:
        for seq in sequence_numbers:
            origin = self.rewriter.original(seq)
            if origin is None and self._padded is not None and (timestamp := self._padded.get(seq)) is not None:
                # as for any packet: a receiver that waits on what it lacks (aiortc's does) would stall
                self.sender.retransmit(Outgoing(self.rewriter.ssrc, seq, timestamp, False, b""))
                continue
            if origin is None or origin[0] not in self.sources:
                continue
            packet = self.sources[origin[0]].cache.get(origin[1])
            if packet is None:
                continue
            out = self.rewriter.again(origin[0], packet.sequence_number, packet.timestamp, bool(packet.marker),
                                      packet.payload)
            if out is not None:
                self.sender.retransmit(out, packet)

    def reported(self, report: StreamReport) -> None:
        lost = self.loss.report(report)
        if lost is not None:
            self.on_loss(lost)

    def keyframe_wanted(self) -> None:
        if self.selected is not None:
            self.selected.request_keyframe()

    def close(self) -> None:
        for source in self.sources.values():
            source.outputs.discard(self)
        self.rewriter.select(None)
