"""Slots from weekly hours and one-off exceptions, in the hospital's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from server.scheduling.slots import (
    DayChange,
    Hours,
    SlotStatus,
    day_slots,
    is_slot,
    open_minutes,
    shown_day,
    week_of,
)

MONDAY = date(2026, 11, 23)
WEEK = [Hours(0, 9 * 60, 12 * 60), Hours(0, 14 * 60, 15 * 60), Hours(2, 9 * 60, 10 * 60)]


def utc(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(("day", "changes", "expected"), [
    (MONDAY, [], [(540, 720), (840, 900)]),
    (date(2026, 11, 24), [], []),  # Tuesday: no hours
    (MONDAY, [DayChange(MONDAY, 0, 1440, False)], []),  # the whole day off
    (MONDAY, [DayChange(MONDAY, 600, 660, False)], [(540, 600), (660, 720), (840, 900)]),  # an hour off
    (MONDAY, [DayChange(MONDAY, 720, 780, True)], [(540, 780), (840, 900)]),  # extra hour, merged
    (MONDAY, [DayChange(date(2026, 11, 30), 0, 1440, False)], [(540, 720), (840, 900)]),  # another Monday
])
def test_open_minutes(day: date, changes: list[DayChange], expected: list[tuple[int, int]]) -> None:
    """Each row: a day's open minutes are its weekday's hours: none on a day without hours or on a day off, split
    around an hour off, merged with extra hours that touch them, and unchanged by another day's exception."""
    assert open_minutes(day, WEEK, changes) == expected


def test_slots_are_in_the_hospital_s_zone_and_whole() -> None:
    """Slots start on the hospital's clock (09:00 in Shanghai is 01:00 UTC), each lasts its full length, and only
    whole slots fit into a stretch of open hours."""
    slots = day_slots(MONDAY, "Asia/Shanghai", WEEK, [], 45)
    # 09:00-12:00 holds four 45-minute slots (the last 09:00+180); 14:00-15:00 holds one.
    assert [s.starts_at for s in slots] == [utc(1), utc(1, 45), utc(2, 30), utc(3, 15), utc(6)]
    assert all((s.ends_at - s.starts_at).total_seconds() == 45 * 60 for s in slots)


def test_booked_and_past_slots_are_not_offered() -> None:
    """Slots already booked, and those starting before the earliest time allowed, are not offered."""
    slots = day_slots(MONDAY, "Asia/Shanghai", WEEK, [], 60, booked=[utc(2)], not_before=utc(1, 30))
    assert [s.starts_at for s in slots] == [utc(3), utc(6)]


def test_daylight_saving_zone_keeps_local_hours() -> None:
    """A hospital in a zone with summer time: 09:00 local is 08:00 UTC in summer and 09:00 in winter."""
    summer = day_slots(date(2026, 7, 6), "Europe/London", [Hours(0, 540, 600)], [], 60)
    winter = day_slots(date(2026, 12, 7), "Europe/London", [Hours(0, 540, 600)], [], 60)
    assert summer[0].starts_at.hour == 8 and winter[0].starts_at.hour == 9


def test_is_slot_accepts_only_real_starts() -> None:
    """A time is accepted as a slot only when it is a slot's start within the day's hours: not off the grid, not in
    the lunch break, not on a day without hours."""
    assert is_slot(utc(1), "Asia/Shanghai", WEEK, [], 30) is not None
    assert is_slot(utc(1, 10), "Asia/Shanghai", WEEK, [], 30) is None  # not on the grid
    assert is_slot(utc(5), "Asia/Shanghai", WEEK, [], 30) is None  # 13:00 local: lunch
    assert is_slot(utc(1, day=24), "Asia/Shanghai", WEEK, [], 30) is None  # Tuesday


F, B, P = SlotStatus.FREE, SlotStatus.BOOKED, SlotStatus.PAST


@pytest.mark.parametrize(("booked", "now", "expected"), [
    ([], utc(0), [F, F, F, F]),  # 09:00-12:00 and 14:00-15:00 local, in 60-minute slots, before they start
    ([utc(2)], utc(0), [F, B, F, F]),  # 10:00 local taken
    ([], utc(2), [P, F, F, F]),  # at 10:00 local, 09:00 has passed; 10:00 starts now and is still free
    ([utc(1)], utc(2, 30), [B, P, F, F]),  # booked stays booked once past
    ([utc(1, day=30)], utc(0), [F, F, F, F]),  # a booking another Monday
])
def test_a_calendar_day_shows_every_slot_free_booked_or_past(booked: list[datetime], now: datetime,
                                                             expected: list[SlotStatus]) -> None:
    """Each row: a calendar day shows every slot of its hours as free, booked (still booked once past) or past (a
    slot starting now is still free), counts the free ones, and is not marked as time off; a booking on another
    Monday does not show."""
    hours = [Hours(0, 9 * 60, 12 * 60), Hours(0, 14 * 60, 15 * 60)]
    day = shown_day(MONDAY, "Asia/Shanghai", hours, [], 60, booked=booked, now=now)
    assert [s.status for s in day.slots] == expected
    assert [s.starts_at for s in day.slots] == [utc(1), utc(2), utc(3), utc(6)]
    assert day.free == expected.count(F) and not day.time_off


@pytest.mark.parametrize(("changes", "slots", "time_off"), [
    ([], 8, False),  # 09:00-12:00 and 14:00-15:00 in 30-minute slots
    ([DayChange(MONDAY, 0, 1440, False)], 0, True),  # the day off: empty, and says why
    ([DayChange(MONDAY, 600, 660, False)], 6, True),  # an hour off
    ([DayChange(date(2026, 11, 30), 0, 1440, False)], 8, False),  # next Monday off
])
def test_a_calendar_day_says_when_time_off_emptied_it(changes: list[DayChange], slots: int, time_off: bool) -> None:
    """Each row: a calendar day is marked as time off when an exception on that day took slots away, the whole day or
    an hour of it, and not otherwise (another Monday's day off does not count)."""
    day = shown_day(MONDAY, "Asia/Shanghai", WEEK, changes, 30, booked=[], now=utc(0))
    assert (len(day.slots), day.time_off) == (slots, time_off)


@pytest.mark.parametrize(("day", "monday"), [
    (MONDAY, MONDAY), (date(2026, 11, 29), MONDAY), (date(2026, 11, 30), date(2026, 11, 30)),
    (date(2027, 1, 2), date(2026, 12, 28)),  # across the new year
])
def test_week_of_is_its_monday(day: date, monday: date) -> None:
    """Each row: a day's week starts on its Monday, also across the end of a year."""
    assert week_of(day) == monday
