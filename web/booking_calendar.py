"""The booking calendar on a referral's page: a week of the receiving hospital's specialists' slots
(``scheduling.booking_week``) as the page draws it, the days headed in the reader's language and every time
on the hospital's clock, each free slot carrying the value the booking form posts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from server.scheduling.service import BookingWeek
from server.scheduling.slots import ShownDay, SlotStatus

from .clock import clock_time, day_and_month, day_span, weekday, zone_names


@dataclass(frozen=True)
class DayHead:
    iso: str
    weekday: str  # Monday, 星期一
    date: str  # Jun 2, 6月2日
    today: bool


@dataclass(frozen=True)
class SlotCell:
    time: str  # 08:00 on the hospital's clock
    starts_at: str  # ISO, UTC
    status: str  # free, booked, past
    value: str  # what the booking form posts for it: "<specialist id>@<ISO start>"


@dataclass(frozen=True)
class DayCell:
    head: DayHead
    slots: list[SlotCell]  # free and booked; a slot already begun is left out
    time_off: bool
    over: bool  # the day had slots, and every one has begun: it says so instead of listing them

    @property
    def free(self) -> int:
        return sum(s.status == SlotStatus.FREE for s in self.slots)


@dataclass(frozen=True)
class SpecialistRow:
    id: int
    name: str
    asked_for: bool
    days: list[DayCell]


@dataclass(frozen=True)
class Calendar:
    heads: list[DayHead]
    rows: list[SpecialistRow]
    span: str  # Jun 2 – 8, 2025
    zone: str  # Asia/Shanghai
    zone_short: str  # CST
    week: str  # the Monday, ISO
    earlier: str | None
    later: str | None
    this_week: bool  # the week that holds today
    today: str  # ISO, on the hospital's clock
    free: int


def slot_value(specialist_id: int, starts_at: str) -> str:
    """One button's value: the booking form has a button per slot, and a button sends one value."""
    return f"{specialist_id}@{starts_at}"


def calendar(week: BookingWeek, locale: str) -> Calendar:
    zone = week.hospital.timezone
    heads = [DayHead(day.isoformat(), weekday(day, locale), day_and_month(day, locale), day == week.today)
             for day in week.days]
    rows = []
    for row in week.rows:
        assert row.specialist.id is not None
        rows.append(SpecialistRow(row.specialist.id, row.specialist.display_name, row.asked_for, [
            _cell(head, day, row.specialist.id, zone) for head, day in zip(heads, row.days, strict=True)]))
    moments = [s.starts_at for row in week.rows for day in row.days for s in day.slots]
    return Calendar(heads, rows, day_span(week.days[0], week.days[-1], locale), zone, zone_names(moments, zone),
                    week.start.isoformat(), _iso(week.earlier), _iso(week.later),
                    this_week=week.days[0] <= week.today <= week.days[-1], today=week.today.isoformat(),
                    free=week.free)


def _cell(head: DayHead, day: ShownDay, specialist_id: int, zone: str) -> DayCell:
    """A day of one specialist's: past slots are left out (a week of greyed-out mornings hid the free ones)."""
    shown = [SlotCell(clock_time(s.starts_at, zone), s.starts_at.isoformat(), s.status.value,
                      slot_value(specialist_id, s.starts_at.isoformat()))
             for s in day.slots if s.status is not SlotStatus.PAST]
    return DayCell(head, shown, day.time_off, over=bool(day.slots) and not shown)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
