"""Time off as runs of whole days: added in one transaction with one audit entry, shown as runs, removed
all or none; and who keeps whose hours."""

from __future__ import annotations

from datetime import date

import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.errors import Forbidden, NotFound
from server.models import AvailabilityException
from server.scheduling import hours
from server.scheduling.hours import DaysOff, TimeOff

from .test_hours import last_entry, principal


def _row(id: int, day: str, note: str = "", *, available: bool = False, start: int = 0,
         end: int = 24 * 60) -> AvailabilityException:
    return AvailabilityException(id=id, specialist_id=2, day=date.fromisoformat(day), note=note,
                                 available=available, start_minute=start, end_minute=end)


@pytest.mark.parametrize(("rows", "runs", "others"), [
    ([], [], []),
    ([_row(1, "2030-05-03", "leave"), _row(2, "2030-05-04", "leave"), _row(3, "2030-05-05", "leave")],
     [DaysOff(date(2030, 5, 3), date(2030, 5, 5), "leave", (1, 2, 3))], []),
    ([_row(1, "2030-05-03", "leave"), _row(2, "2030-05-05", "leave")],  # a gap: two runs
     [DaysOff(date(2030, 5, 3), date(2030, 5, 3), "leave", (1,)), DaysOff(date(2030, 5, 5), date(2030, 5, 5),
                                                                          "leave", (2,))], []),
    ([_row(1, "2030-05-03", "leave"), _row(2, "2030-05-04", "course")],  # another note: two runs
     [DaysOff(date(2030, 5, 3), date(2030, 5, 3), "leave", (1,)), DaysOff(date(2030, 5, 4), date(2030, 5, 4),
                                                                          "course", (2,))], []),
    ([_row(1, "2030-05-03", available=True, start=600, end=720), _row(2, "2030-05-04", start=600, end=720)],
     [], [1, 2]),  # extra hours and part days stay one by one
])
def test_days_off_are_shown_as_runs(rows: list[AvailabilityException], runs: list[DaysOff],
                                    others: list[int]) -> None:
    """Each row: whole days off with the same note on consecutive days are shown as one run, a gap or another note
    starts a new one, and extra hours and part days are listed one by one."""
    found_runs, found_others = hours.days_off(rows)
    assert found_runs == runs and [r.id for r in found_others] == others


async def test_a_run_of_days_off_is_one_change(client: TestClient) -> None:
    """A coordinator adds five days off for a specialist as one change with one audit entry by them, shown as one
    run; removing the run with one id that is not his is refused and removes nothing; removing the run alone removes
    all five, with an entry that mentions its last day."""
    database = client.app[DATABASE]
    wang, zhao = await principal(database, "dr.wang"), await principal(database, "coord.zhao")
    async with database.session() as session:
        shown = await hours.add_time_off(session, zhao, wang.user_id, TimeOff(
            first_day=date(2030, 5, 3), last_day=date(2030, 5, 7), note="年假 leave"))
    assert [e.day.day for e in shown.exceptions] == [3, 4, 5, 6, 7]
    entry = await last_entry(database)
    assert entry is not None and entry.action == "availability.time_off" and entry.actor == f"user:{zhao.user_id}"
    runs, _ = hours.days_off(shown.exceptions)
    assert len(runs) == 1
    async with database.session() as session:
        with pytest.raises(NotFound):  # one id that is not his: nothing is removed
            await hours.remove_exceptions(session, wang, wang.user_id, [*runs[0].ids, 10_000])
        assert len((await hours.show(session, wang, wang.user_id)).exceptions) == 5
        shown = await hours.remove_exceptions(session, wang, wang.user_id, list(runs[0].ids))
    assert shown.exceptions == []
    entry = await last_entry(database)
    assert entry is not None and entry.action == "availability.exception_removed" and "2030-05-07" in entry.detail


@pytest.mark.parametrize(("username", "kept"), [("dr.wang", ["王芳 Wang Fang"]),
                                                ("coord.zhao", ["何静 He Jing", "周杰 Zhou Jie", "王芳 Wang Fang"])])
async def test_who_keeps_whose_hours(client: TestClient, username: str, kept: list[str]) -> None:
    """Each row: a specialist keeps their own hours only; their hospital's coordinator keeps every specialist's
    there."""
    who = await principal(client.app[DATABASE], username)
    async with client.app[DATABASE].session() as session:
        found = await hours.editable_specialists(session, who)
    assert sorted(u.display_name for u in found) == sorted(kept)


@pytest.mark.parametrize("username", ["dr.li", "admin", "auditor"])
async def test_others_keep_no_hours(client: TestClient, username: str) -> None:
    """Each row: a county doctor, an administrator or an auditor is refused the list of specialists whose hours they
    may keep."""
    who = await principal(client.app[DATABASE], username)
    async with client.app[DATABASE].session() as session:
        with pytest.raises(Forbidden):
            await hours.editable_specialists(session, who)
