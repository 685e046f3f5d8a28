"""The per-viewer layer choice (media/layers.py): down at once, up only after the link has held, audio only
when asked, and a climb that fails makes the next one wait longer; neither the packets lost before a pause
nor an estimate still climbing after a step up undoes a climb. Tables, no network."""

from __future__ import annotations

import pytest

from media.layers import (
    ESTIMATE_GRACE_SECONDS,
    HOLD_MAX_SECONDS,
    HOLD_SECONDS,
    Layer,
    LayerChoice,
    LinkReport,
    StreamLoss,
    StreamReport,
)

# (reports as (seconds, lost fraction or None, estimate or None, sending or None), the layer after the last)
CASES = [
    ("a clean link stays high", [(1, 0.0, None, None), (4, None, 2_000_000, 1_000_000)], Layer.HIGH),
    ("a small estimate for a small stream is no weak link", [(4, None, 30_000, 25_000)], Layer.HIGH),
    ("a little loss is no reason to move", [(1, 0.05, None)], Layer.HIGH),
    ("loss over 10 % steps down at once", [(1, 0.15, None)], Layer.LOW),
    ("more loss on the low layer pauses video", [(1, 0.15, None), (2.6, 0.15, None)], Layer.PAUSED),
    ("another stream's report of the same moment moves no further", [(1, 0.15, None), (1.5, 0.15, None)],
     Layer.LOW),
    ("loss over 30 % goes straight to audio only", [(1, 0.4, None)], Layer.PAUSED),
    ("an estimate short of what is sent steps down", [(4, None, 300_000, 600_000)], Layer.LOW),
    ("and again if it stays short after the grace",
     [(4, None, 300_000, 600_000), (4 + ESTIMATE_GRACE_SECONDS, None, 80_000, 150_000)], Layer.PAUSED),
    ("an estimate in the first seconds of a layer still speaks of before", [(1, None, 60_000, 600_000)],
     Layer.HIGH),
    ("back up a step once the link held for the hold time",
     [(1, 0.15, None), (1 + HOLD_SECONDS - 0.1, 0.0, None), (1 + HOLD_SECONDS, 0.0, None)], Layer.HIGH),
    ("not before", [(1, 0.15, None), (1 + HOLD_SECONDS - 0.1, 0.0, None)], Layer.LOW),
    ("moderate loss does not count as holding", [(1, 0.15, None), (3, 0.05, None), (1 + HOLD_SECONDS, 0.0, None)],
     Layer.LOW),
    ("one step at a time from paused", [(1, 0.5, None), (1 + HOLD_SECONDS, 0.0, None)], Layer.LOW),
    ("and the next after another hold",
     [(1, 0.5, None), (1 + HOLD_SECONDS, 0.0, None), (1 + 2 * HOLD_SECONDS, 0.0, None)], Layer.HIGH),
    ("a low estimate right after a climb is the old layer's: ignored",
     [(1, 0.15, None), (1 + HOLD_SECONDS, 0.0, None), (2 + HOLD_SECONDS, None, 200_000, 600_000)], Layer.HIGH),
    # after a climb at 1 + HOLD_SECONDS the receiver's estimate grows about 8 % a second from the low layer's
    ("an estimate still climbing after the grace is no weak link",
     [(1, 0.15, None), (1 + HOLD_SECONDS, 0.0, None), (2 + HOLD_SECONDS, None, 200_000, 150_000),
      (1.5 + HOLD_SECONDS + ESTIMATE_GRACE_SECONDS, None, 216_000, 3_700_000),
      (2 + HOLD_SECONDS + ESTIMATE_GRACE_SECONDS, None, 233_000, 3_700_000)], Layer.HIGH),
    ("nor one that holds where it was",
     [(1, 0.15, None), (1 + HOLD_SECONDS, 0.0, None), (2 + HOLD_SECONDS, None, 233_000, 150_000),
      (2 + HOLD_SECONDS + ESTIMATE_GRACE_SECONDS, None, 233_000, 3_700_000)], Layer.HIGH),
    ("one that falls short of what is sent steps down",
     [(1, 0.15, None), (1 + HOLD_SECONDS, 0.0, None), (2 + HOLD_SECONDS, None, 2_500_000, 3_700_000),
      (2 + HOLD_SECONDS + ESTIMATE_GRACE_SECONDS, None, 1_200_000, 3_700_000)], Layer.LOW),
]


@pytest.mark.parametrize(("reports", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_layer_follows_the_reports(reports: list[tuple], expected: Layer) -> None:
    """Each row: the reports a viewer's link sent, and the layer it then gets."""
    choice = LayerChoice(0.0)
    for at, lost, *estimate in reports:
        layer = choice.report(LinkReport(at, lost, *estimate))
    assert layer == expected


def test_asking_for_audio_only_pauses_video_and_asking_again_brings_back_what_the_link_carries() -> None:
    """Audio only is the viewer's to choose, whatever the link; video comes back on the automatic layer
    (low here, as the link was lossy), not forced to high."""
    choice = LayerChoice(0.0)
    assert choice.want_video(False, 0.5) == Layer.PAUSED
    assert choice.report(LinkReport(1.0, lost=0.0)) == Layer.PAUSED
    choice.report(LinkReport(2.0, lost=0.2))
    assert choice.layer == Layer.PAUSED
    assert choice.want_video(True, 2.5) == Layer.LOW


def test_asking_for_video_that_the_link_paused_tries_the_low_layer_at_once() -> None:
    """The "try video again" of a viewer whose link paused video is answered now, with the low layer; if
    the link still cannot carry it, the next report pauses it again."""
    choice = LayerChoice(0.0)
    assert choice.report(LinkReport(1.0, lost=0.5)) == Layer.PAUSED
    assert choice.want_video(True, 1.5) == Layer.LOW
    assert choice.report(LinkReport(3.0, lost=0.2)) == Layer.PAUSED


def test_a_failed_climb_doubles_the_hold_and_a_steady_link_resets_it() -> None:
    """A link that loses packets as soon as it is given the high layer is tried again only after twice
    the hold, then four times, up to the maximum; the high layer holding for that maximum brings the
    hold back to the start."""
    choice = LayerChoice(0.0)
    now = 1.0
    choice.report(LinkReport(now, lost=0.2))
    holds = []
    for _ in range(6):
        now += choice.hold
        assert choice.tick(now) == Layer.HIGH
        now += 0.5
        assert choice.report(LinkReport(now, lost=0.2)) == Layer.LOW  # the climb failed
        holds.append(choice.hold)
    assert holds == [min(HOLD_SECONDS * 2 ** n, HOLD_MAX_SECONDS) for n in range(1, 7)]
    choice.tick(now + choice.hold)  # up again, and this time it holds
    assert choice.tick(now + choice.hold + HOLD_MAX_SECONDS) == Layer.HIGH
    assert choice.hold == HOLD_SECONDS


def test_a_short_estimate_does_not_keep_video_down_once_the_link_holds() -> None:
    """Moved down for a short estimate, video climbs back after the hold once reports are clean: a
    receiver sent less cannot estimate more, so the estimate never holds a climb back."""
    choice = LayerChoice(0.0)
    at = ESTIMATE_GRACE_SECONDS
    assert choice.report(LinkReport(at, estimate_bps=100_000, sending_bps=500_000)) == Layer.LOW
    assert choice.report(LinkReport(at + 1, estimate_bps=100_000, sending_bps=120_000)) == Layer.LOW
    assert choice.tick(at + HOLD_SECONDS) == Layer.HIGH


def _report(lost: int, highest: int, fraction: float = 0.0) -> StreamReport:
    return StreamReport(fraction, lost, highest)


# (steps: a report as (cumulative lost, highest), or ("resumed", sequence number); the share lost each report
# gives, None for none)
LOSS_CASES = [
    ("the first report: the receiver's own fraction", [StreamReport(0.25, 30, 100)], [0.25]),
    ("after it, what was lost of what was due since the report before",
     [(0, 100), (10, 200)], [0.0, 0.1]),
    ("nothing due (the stream is silent): nothing said", [(3, 100), (3, 100)], [0.0, None]),
    ("a report older than the last says nothing", [(0, 200), (0, 150)], [0.0, None]),
    ("late packets lower the count: never below nothing", [(10, 100), (8, 150)], [0.0, 0.0]),
    # 101..120 were sent and lost just before the pause; the viewer learns it once 121 on arrive
    ("the packets sent before a silence are left out of the first report after it",
     [(3, 100), (3, 100), ("resumed", 121), (23, 170)], [0.0, None, 0.0]),
    ("loss after the resume still counts", [(3, 100), (3, 100), ("resumed", 121), (28, 170)], [0.0, None, 0.1]),
    ("once", [(3, 100), ("resumed", 121), (23, 170), (33, 270)], [0.0, 0.0, 0.1]),
    ("a report before the resumed packets come keeps them left out for the next",
     [(0, 100), ("resumed", 121), (0, 110), (10, 170)], [0.0, 0.0, 0.0]),
    ("a resume with nothing missing leaves out nothing", [(0, 100), ("resumed", 101), (5, 150)], [0.0, 0.1]),
    ("across the wrap of sequence numbers", [(0, 65_530), ("resumed", 4), (9, 54), (11, 74)], [0.0, 0.0, 0.1]),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in LOSS_CASES], ids=[c[0] for c in LOSS_CASES])
def test_a_streams_loss_leaves_out_what_was_sent_before_a_silence(steps: list, expected: list) -> None:
    """Each row: a stream's receiver reports (and where the relay resumed it after a silence), and the
    share lost that each report gives the layer choice."""
    loss = StreamLoss()
    got = []
    for step in steps:
        if isinstance(step, StreamReport):
            got.append(loss.report(step))
        elif step[0] == "resumed":
            loss.resumed(step[1])
        else:
            got.append(loss.report(_report(*step)))
    assert got == expected


def test_video_resumed_on_a_cleared_link_climbs_after_the_hold_not_later() -> None:
    """A viewer paused by a lossy link, whose link then clears: the low layer comes after the hold, and the
    first report of the resumed video, which counts the 20 packets dropped just before the pause (29 %
    lost as the receiver says it), does not pause it again: the high layer follows one hold later."""
    choice, loss = LayerChoice(0.0), StreamLoss()
    assert choice.report(LinkReport(1.0, lost=loss.report(_report(0, 100, 0.0)))) == Layer.HIGH
    assert choice.report(LinkReport(2.0, lost=0.4)) == Layer.PAUSED  # another stream's report
    assert loss.report(_report(0, 100)) is None  # the video stream's, while paused: nothing due
    assert choice.tick(2.0 + HOLD_SECONDS) == Layer.LOW
    loss.resumed(121)
    first = _report(20, 170, fraction=20 / 70)
    assert choice.report(LinkReport(3.0 + HOLD_SECONDS, lost=loss.report(first))) == Layer.LOW
    assert choice.tick(2.0 + 2 * HOLD_SECONDS) == Layer.HIGH
