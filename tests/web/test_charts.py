"""The bar charts' geometry (web/charts.py), table-driven: round axis maxima, bars in proportion, nothing drawn
for a month with nothing to show."""

from __future__ import annotations

import pytest

from web.charts import HEIGHT, bars, nice_top


@pytest.mark.parametrize(("largest", "top"), [(0, 1.0), (1, 1), (3, 5), (7, 10), (12, 20), (0.4, 0.5), (250, 500)])
def test_the_axis_ends_at_a_round_number(largest: float, top: float) -> None:
    """Guards the axis: 1, 2 or 5 times a power of ten, never below the largest bar."""
    assert nice_top(largest) == pytest.approx(top)


def test_bars_are_in_proportion_and_empty_months_have_none() -> None:
    """A bar of half the axis is half as tall as the plot; a month with no value (a median of no referral) has
    a zero-height bar, not a bar of zero drawn as a value; the ticks split the axis in fifths."""
    chart = bars([("2026-03", 5.0), ("2026-04", 2.5), ("2026-05", None)])
    full, half, empty = chart.bars
    assert half.height == pytest.approx(full.height / 2) and empty.height == 0 and empty.value is None
    assert full.y + full.height == pytest.approx(chart.baseline) and chart.baseline < HEIGHT
    assert [t.value for t in chart.ticks] == [0, 1, 2, 3, 4, 5]
    assert full.x < half.x < empty.x


@pytest.mark.parametrize(("months", "labelled"), [(2, 2), (5, 5), (6, 3), (12, 4)])
def test_month_labels_are_thinned_so_they_do_not_overlap(months: int, labelled: int) -> None:
    """A year of bars labels every third month; the first month is always labelled."""
    chart = bars([(f"2026-{m:02d}", 1.0) for m in range(1, months + 1)])
    assert chart.bars[0].tick_label == "2026-01"
    assert len([b for b in chart.bars if b.tick_label]) == labelled


@pytest.mark.parametrize(("largest", "ticks"), [(0, [0, 1]), (1, [0, 1]), (2, [0, 1, 2]), (3, [0, 1, 2, 3, 4, 5]),
                                                (12, [0, 4, 8, 12, 16, 20])])
def test_a_count_is_ticked_in_whole_numbers(largest: int, ticks: list[int]) -> None:
    """Guards the axis of a count (consultations, referrals): no 0.2 or 0.4 of a referral on it; a median in
    hours is still ticked in fifths."""
    assert [t.value for t in bars([("2026-03", float(largest))], counts=True).ticks] == ticks
    assert [t.value for t in bars([("2026-03", 1.0)]).ticks] == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
