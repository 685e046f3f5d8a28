"""The supervision statistics service over a crafted history: known event times give known medians, p90s and
shares per hospital and month (months on the deployment's clock), in a constant number of statements; a
supervisor sees only the partnerships linked to them, and nobody else sees any."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.errors import Forbidden, ValidationFailed
from server.supervision import statistics
from server.supervision.statistics import StatisticsQuery, p90

from ..retention.test_purge import who
from .history import craft

MARCH_APRIL = StatisticsQuery(from_month="2026-03", to_month="2026-04")


@pytest.mark.parametrize(("values", "expected"), [
    ([5.0], 5.0), ([1.0, 2.0], 2.0), ([2.0, 4.0, 6.0], 6.0), ([float(i) for i in range(1, 11)], 9.0),
    ([float(i) for i in range(1, 21)], 18.0),
])
def test_p90_is_the_nearest_rank(values: list[float], expected: float) -> None:
    """The documented p90: the smallest value with at least 90% of the values at or below it."""
    assert p90(values) == expected


@pytest.mark.parametrize(("first", "last", "months"), [
    ("2025-11", "2026-02", ["2025-11", "2025-12", "2026-01", "2026-02"]), ("2026-03", "2026-03", ["2026-03"]),
])
def test_month_ranges_cross_years(first: str, last: str, months: list[str]) -> None:
    """Guards the month arithmetic the rows are laid out on."""
    assert statistics.month_range(first, last) == months


def _row(stats: statistics.Statistics, hospital: int, month: str) -> dict:
    return next(r for r in stats.rows if r["hospital_id"] == hospital and r["month"] == month)


@pytest.mark.parametrize(("hospital", "month", "expected"), [
    ("provincial", "2026-03", {
        "referrals_received": 3, "referrals_sent": 0, "referrals_declined": 0, "referrals_redirected": 1,
        "declined_share": 0.0, "redirected_share": 0.3333, "referrals_accepted": 3, "referrals_booked": 2,
        "referrals_reported": 1, "hours_to_accepted_median": 4.0, "hours_to_accepted_p90": 6.0,
        "hours_to_booked_median": 20.0, "hours_to_booked_p90": 30.0, "hours_to_reported_median": 50.0,
        "hours_to_reported_p90": 50.0, "consultations_held": 0, "recording_coverage": None}),
    ("provincial", "2026-04", {
        "referrals_received": 1, "referrals_declined": 1, "declined_share": 1.0, "redirected_share": 0.0,
        "hours_to_accepted_median": None}),
    ("qingshan", "2026-03", {
        "referrals_sent": 3, "referrals_sent_with_sharing_consent": 1, "sharing_consent_coverage": 0.3333,
        "referrals_received": 0, "declined_share": None, "consultations_held": 2, "consultations_recorded": 1,
        "recording_coverage": 0.5, "recordings": 2, "recordings_with_everyones_consent": 1,
        "recording_consent_coverage": 0.5}),
    ("qingshan", "2026-04", {"referrals_sent": 1, "sharing_consent_coverage": 0.0, "consultations_held": 0}),
    ("baihe", "2026-03", {"referrals_sent": 0, "referrals_received": 0, "consultations_held": 0}),
])
async def test_known_history_gives_known_figures(client: TestClient, hospital: str, month: str,
                                                 expected: dict) -> None:
    """Turnarounds from the first event of each kind after submission (accept 2/4/6 h: median 4, p90 6), shares
    of what was received, coverage of what was held; a referral submitted at 01:00 on 1 April in Shanghai
    (still 31 March in UTC) is April's, the deployment's zone being Asia/Shanghai."""
    ids = await craft(client)
    async with client.app[DATABASE].session() as session:
        stats = await statistics.compute(session, await who(client, "supervisor"), MARCH_APRIL, "Asia/Shanghai")
    row = _row(stats, ids[hospital], month)
    assert {k: row[k] for k in expected} == expected
    assert set(row) == set(statistics.FIELDS)


async def test_totals_pool_the_hospitals_and_the_filters_narrow(client: TestClient) -> None:
    """The all-hospitals row of a month counts each referral once per side; a hospital filter keeps its rows
    alone; the months default to the twelve up to the current one."""
    await craft(client)
    supervisor = await who(client, "supervisor")
    async with client.app[DATABASE].session() as session:
        stats = await statistics.compute(session, supervisor, MARCH_APRIL, "Asia/Shanghai")
        march = stats.totals[0]
        assert (march["month"], march["referrals_sent"], march["referrals_received"], march["hours_to_accepted_median"],
                march["consultations_held"]) == ("2026-03", 3, 3, 4.0, 2)
        only = await statistics.compute(session, supervisor, StatisticsQuery(
            from_month="2026-03", to_month="2026-03", hospital_id=stats.hospitals[0][0]), "Asia/Shanghai")
        assert {r["hospital_id"] for r in only.rows} == {stats.hospitals[0][0]}
        recent = await statistics.compute(session, supervisor, StatisticsQuery(), "Asia/Shanghai")
    assert len(recent.months) == statistics.DEFAULT_MONTHS


async def test_a_constant_number_of_statements(client: TestClient) -> None:
    """Guards against N+1: a year of every hospital costs the same statements as one month of one."""
    ids = await craft(client)
    supervisor = await who(client, "supervisor")
    database = client.app[DATABASE]
    counted: list[str] = []

    def count(*args: object) -> None:
        counted.append(str(args[2]))

    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with database.session() as session:
            await statistics.compute(session, supervisor, StatisticsQuery(from_month="2026-03", to_month="2026-03",
                                                                          hospital_id=ids["qingshan"]), "Asia/Shanghai")
            few = len(counted)
            counted.clear()
            await statistics.compute(session, supervisor, StatisticsQuery(from_month="2025-06", to_month="2026-05"),
                                     "Asia/Shanghai")
    finally:
        sa.event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(counted) == few <= 10


async def test_a_supervisor_sees_only_what_they_oversee(client: TestClient) -> None:
    """The other partnership's supervisor gets none of this partnership's hospitals or figures, and is refused
    when naming it or one of its hospitals."""
    ids = await craft(client)
    other = await who(client, "other.supervisor")
    async with client.app[DATABASE].session() as session:
        stats = await statistics.compute(session, other, MARCH_APRIL, "Asia/Shanghai")
        assert [h for h, _ in stats.hospitals] == [ids["baihe"]]
        assert [p for p, _ in stats.partnerships] == [ids["other"]]
        assert all(r["referrals_sent"] == r["referrals_received"] == 0 for r in stats.rows + stats.totals)
        with pytest.raises(Forbidden):
            await statistics.compute(session, other, StatisticsQuery(partnership_id=1), "Asia/Shanghai")
        with pytest.raises(Forbidden):
            await statistics.compute(session, other, StatisticsQuery(hospital_id=ids["qingshan"]), "Asia/Shanghai")


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao", "admin", "auditor"])
async def test_nobody_else_reads_statistics(client: TestClient, username: str) -> None:
    """Clinicians, coordinators, administrators and auditors are refused."""
    async with client.app[DATABASE].session() as session:
        with pytest.raises(Forbidden):
            await statistics.compute(session, await who(client, username), StatisticsQuery(), "Asia/Shanghai")


async def test_months_in_the_wrong_order_are_refused(client: TestClient) -> None:
    """A range that ends before it starts is a 422 naming the field, not an empty answer."""
    async with client.app[DATABASE].session() as session:
        with pytest.raises(ValidationFailed) as refused:
            await statistics.compute(session, await who(client, "supervisor"),
                                     StatisticsQuery(from_month="2026-05", to_month="2026-01"), "Asia/Shanghai")
    assert "from_month" in refused.value.details["fields"]
