"""Which layer of the others' video a viewer gets, from what its link reports: pure, no I/O.

Every publisher in a relayed room may send its camera twice (Galène's way around aiortc's missing
simulcast, aiortc issue #676): the normal *high* layer and a *low* one of about 320x180 at 150 kbps, on a
second video transceiver. Per viewer the relay forwards the high layer while the viewer's link keeps up,
the low layer when it does not, and no video at all (*paused*: audio only) below that. Audio is never
paused. A viewer may also ask for audio only, and for video again. (A publisher that sends no low layer
is forwarded at its only layer where the choice is LOW.)

The viewer's link is one connection (everything is bundled), so one choice covers all its slots. What
the relay learns of it: receiver reports (per stream, the packets lost: :class:`StreamLoss` reads them)
and REMB (the receiver's estimate of the bitrate its link carries; aiortc and Chromium send it when
transport-wide feedback is not negotiated, which aiortc never negotiates). An estimate is weighed
against what the relay is sending that viewer, never against a fixed figure: a receiver estimates little
more than it is sent, so a still picture's few kilobits must not read as a weak link.

The rules, in the manner of the forwarding servers that adapt per viewer (LiveKit, Jitsi's videobridge):
- **down at once**: a report with more loss than ``LOSS_DOWN`` moves down a step (more than
  ``LOSS_PAUSE``, straight to paused), and so does an estimate that fell below ``ESTIMATE_SHORT`` of
  what the relay is sending the viewer; the other streams' reports of the same moment
  (``DOWN_GRACE_SECONDS``) move it no further;
- **up slowly**: a step up only after the link has held, without a bad report, for ``hold`` seconds;
  ``hold`` starts at ``HOLD_SECONDS`` and doubles (up to ``HOLD_MAX_SECONDS``) whenever a step up is
  followed by a step down within twice its hold, so a link that cannot carry the higher layer is not
  made to prove it every few seconds; it returns to ``HOLD_SECONDS`` once the high layer has held for
  ``HOLD_MAX_SECONDS``.

Two things a receiver says right after a change are not news about its link, and neither may undo a
climb (each did, measured in ``telemed bench impairment``, docs/benchmarks.md):
- **The packets lost before a silence.** A receiver counts a packet lost only once it sees a later one:
  what its link dropped just before its video was paused (or its slot emptied) is counted in the first
  report after the stream resumes, as the relay's sequence numbers go on after them. :class:`StreamLoss`
  reads each report's loss from the difference between it and the one before (cumulative lost, highest
  sequence number received) and leaves out the packets sent before the resume.
- **An estimate still climbing.** A receiver's estimator (REMB: aiortc's ``AimdRateControl``, the same
  AIMD as libwebrtc's) lowers its figure only when it finds its link overused, and otherwise raises it
  by about 8 % a second from where it was; after a step up it still speaks of the lower layer for many seconds. Only an
  estimate lower than the one before (or the first) counts against the layer being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Layer(StrEnum):
    """What a viewer gets of each publisher's video, best first."""

    HIGH = "high"
    LOW = "low"
    PAUSED = "paused"  # audio only


ORDER = (Layer.PAUSED, Layer.LOW, Layer.HIGH)
ESTIMATE_SHORT = 0.75  # an estimate below this share of what is being sent: the link cannot carry it
LOSS_DOWN = 0.10  # more lost than this in a report: one step down
LOSS_PAUSE = 0.30  # more lost than this: straight to audio only
LOSS_OK = 0.02  # at most this much lost counts as a good report
HOLD_SECONDS = 4.0
ESTIMATE_GRACE_SECONDS = 3.0
# Each stream of the link reports on its own (audio and every video slot, about once a second each), so
# for a moment after a step down the other streams' reports still describe the time before it.
DOWN_GRACE_SECONDS = 1.5
HOLD_MAX_SECONDS = 60.0
SEQ_MOD = 1 << 16


@dataclass(frozen=True, slots=True)
class LinkReport:
    """One thing a viewer's link said: a loss fraction (0-1) from a receiver report, or a REMB estimate
    with the bitrate the relay was sending that viewer meanwhile."""

    at: float  # seconds, monotonic
    lost: float | None = None
    estimate_bps: int | None = None
    sending_bps: int | None = None


@dataclass(frozen=True, slots=True)
class StreamReport:
    """What one receiver report block says of one stream the relay sends a viewer."""

    fraction_lost: float  # 0-1, of the packets expected since the receiver's previous report
    cumulative_lost: int  # packets lost since the stream began (may fall: late packets, duplicates)
    highest: int  # the highest sequence number received (only its low 16 bits are read)


class StreamLoss:
    """The loss of one stream the relay sends a viewer, report by report, as :class:`LinkReport` wants it:
    the packets lost among those the viewer should have received since the report before, not counting
    the ones sent before the stream went silent (:meth:`resumed`). Pure."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None  # the report before: highest, cumulative lost
        self._resumed: int | None = None  # the sequence number the stream went on at after a silence

    def resumed(self, sequence_number: int) -> None:
        """The stream goes on at ``sequence_number`` after a silence (video paused and resumed, a slot given
        to another publisher). Whatever the viewer lacks below it was lost before the silence: already
        counted, or too old to tell anything about its link now."""
        self._resumed = sequence_number % SEQ_MOD

    def report(self, report: StreamReport) -> float | None:
        """The share lost (0-1) since the report before, or None when no packet was due (the stream is
        silent)."""
        last, self._last = self._last, (report.highest % SEQ_MOD, report.cumulative_lost)
        if last is None:
            return report.fraction_lost  # nothing to take a difference from: the receiver's own figure
        highest, lost = last
        expected = (report.highest - highest) % SEQ_MOD
        if expected == 0 or expected >= SEQ_MOD // 2:  # nothing new, or a report older than the last
            self._last = last
            return None
        lost = report.cumulative_lost - lost
        resumed = self._resumed
        if resumed is not None:
            before = (resumed - 1 - highest) % SEQ_MOD  # sent before the silence, beyond what had come
            if before < SEQ_MOD // 2 and before < expected:  # the resumed stream reached the viewer
                expected -= before
                lost -= before
                self._resumed = None
            elif before >= SEQ_MOD // 2:  # resumed at or below what the viewer had: nothing to leave out
                self._resumed = None
        return min(1.0, max(0, lost) / expected)


class LayerChoice:
    """One viewer's choice. Feed it :meth:`report`s and :meth:`tick`s; read :attr:`layer` (the automatic
    choice, capped by what the viewer asked for)."""

    def __init__(self, now: float) -> None:
        self.auto = Layer.HIGH
        self.video_wanted = True  # False: the viewer asked for audio only
        self.hold = HOLD_SECONDS
        self._good_since = now  # the link has held since then
        self._changed_at = now
        self._last_up: float | None = None
        self._last_down: float | None = None
        self._estimate: int | None = None  # the viewer's last estimate

    @property
    def layer(self) -> Layer:
        return self.auto if self.video_wanted else Layer.PAUSED

    def want_video(self, wanted: bool, now: float) -> Layer:
        """The viewer asked for audio only (False) or for video again (True). Video comes back on the
        automatic choice's layer, not forced above what the link carries; but a viewer whose video the link
        had paused, and who asks for it, gets the low layer tried at once rather than after the hold."""
        self.video_wanted = wanted
        if wanted and self.auto == Layer.PAUSED:
            self._step(1, now)
        return self.layer

    def report(self, report: LinkReport) -> Layer:
        """Take one report; the layer to forward from now on."""
        down = 0
        settling = self._last_down is not None and report.at - self._last_down < DOWN_GRACE_SECONDS
        if report.lost is not None and report.lost > LOSS_OK:
            self._good_since = report.at  # the link has not held
            if report.lost > LOSS_PAUSE and not settling:
                down = len(ORDER)
            elif report.lost > LOSS_DOWN and not settling:
                down = 1
        # An estimate describes what the link carried a moment ago: right after a change it still speaks
        # of the old layer, so it counts only once the layer has been on for ESTIMATE_GRACE_SECONDS. It
        # never holds a climb back: a receiver's estimate grows only with what it is sent, so a link on
        # the low layer would never be estimated to carry the high one. And only an estimate that fell
        # counts: one that rose or stayed is the receiver's estimator catching up with a layer just climbed
        # to, or holding; it lowers its figure only when it finds its link overused.
        if report.estimate_bps is not None:
            fell = self._estimate is None or report.estimate_bps < self._estimate
            self._estimate = report.estimate_bps
            if fell and report.sending_bps and report.at - self._changed_at >= ESTIMATE_GRACE_SECONDS \
                    and report.estimate_bps < ESTIMATE_SHORT * report.sending_bps:
                down = max(down, 1)
        if down > 0:
            if self.auto == Layer.PAUSED:
                self._good_since = report.at
            else:
                self._step(-down, report.at)
        return self.tick(report.at)

    def tick(self, now: float) -> Layer:
        """Time passed: climb a step if the link has held long enough."""
        if self.auto == Layer.HIGH and now - self._changed_at >= HOLD_MAX_SECONDS:
            self.hold = HOLD_SECONDS  # the top layer held: the link is good again
        if self.auto != Layer.HIGH and now - self._good_since >= self.hold:
            self._step(1, now)
        return self.layer

    def _step(self, by: int, now: float) -> None:
        index = max(0, min(len(ORDER) - 1, ORDER.index(self.auto) + by))
        if by < 0 and self._last_up is not None and now - self._last_up < 2 * self.hold:
            self.hold = min(self.hold * 2, HOLD_MAX_SECONDS)  # the climb failed: wait longer before the next
        if by > 0:
            self._last_up = now
        else:
            self._last_down = now
        self.auto = ORDER[index]
        self._good_since = self._changed_at = now
