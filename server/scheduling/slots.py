"""A specialist's bookable slots on one day: weekly hours, minus time off, plus extra hours, cut into
slots of the specialty's length, in the hospital's time zone; and a week of them as a booking calendar
shows it, free, booked or past. Pure: the caller brings the rows."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Hours:
    """Weekly hours: ``weekday`` 0 is Monday; minutes after local midnight."""

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class DayChange:
    """One local day's exception: time off (available False) or extra hours (available True)."""

    day: date
    start_minute: int
    end_minute: int
    available: bool


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime


def open_minutes(day: date, hours: Iterable[Hours], changes: Iterable[DayChange]) -> list[tuple[int, int]]:
    """The day's open intervals in local minutes, merged and sorted."""
    intervals = [(h.start_minute, h.end_minute) for h in hours if h.weekday == day.weekday()]
    todays = [c for c in changes if c.day == day]
    intervals += [(c.start_minute, c.end_minute) for c in todays if c.available]
    for off in (c for c in todays if not c.available):
        intervals = [piece for start, end in intervals for piece in _cut(start, end, off.start_minute, off.end_minute)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _cut(start: int, end: int, off_start: int, off_end: int) -> list[tuple[int, int]]:
    return [(s, e) for s, e in ((start, min(end, off_start)), (max(start, off_end), end)) if s < e]


def day_slots(day: date, zone: str, hours: Iterable[Hours], changes: Iterable[DayChange], slot_minutes: int, *,
              booked: Iterable[datetime] = (), not_before: datetime | None = None) -> list[Slot]:
    """Free slots on local ``day``: whole slots inside open hours, not booked, not starting before ``not_before``.

    Slots are laid from the start of each open interval, so the same hours always give the same starts:
    that is what lets the database refuse a second booking of one start."""
    tz = ZoneInfo(zone)
    taken = {b.astimezone(UTC) for b in booked}
    slots = []
    midnight = datetime.combine(day, time(0), tz)
    for start, end in open_minutes(day, hours, changes):
        minute = start
        while minute + slot_minutes <= end:
            # wall-clock minutes of the local day, each turned into UTC by the zone's rules that day
            local = midnight.replace(hour=minute // 60, minute=minute % 60)
            starts_at = local.astimezone(UTC)
            ends_at = (local + timedelta(minutes=slot_minutes)).astimezone(UTC)
            if starts_at not in taken and (not_before is None or starts_at >= not_before):
                slots.append(Slot(starts_at, ends_at))
            minute += slot_minutes
    return slots


def is_slot(starts_at: datetime, zone: str, hours: Iterable[Hours], changes: Iterable[DayChange],
            slot_minutes: int) -> Slot | None:
    """The slot that starts exactly at ``starts_at`` in these hours, or None (a time that is no slot)."""
    local_day = starts_at.astimezone(ZoneInfo(zone)).date()
    wanted = starts_at.astimezone(UTC)
    return next((s for s in day_slots(local_day, zone, list(hours), list(changes), slot_minutes)
                 if s.starts_at == wanted), None)


class SlotStatus(enum.StrEnum):
    """What a booking calendar shows a slot as: only a free one can be booked."""

    FREE = "free"
    BOOKED = "booked"
    PAST = "past"


@dataclass(frozen=True)
class ShownSlot:
    starts_at: datetime  # UTC
    ends_at: datetime
    status: SlotStatus


@dataclass(frozen=True)
class ShownDay:
    """One specialist's local day in a booking calendar: every slot of their hours, and whether they took
    time off that day (so an empty day says why)."""

    day: date
    slots: list[ShownSlot]
    time_off: bool

    @property
    def free(self) -> int:
        return sum(s.status is SlotStatus.FREE for s in self.slots)


def shown_day(day: date, zone: str, hours: Iterable[Hours], changes: Iterable[DayChange], slot_minutes: int, *,
              booked: Iterable[datetime], now: datetime) -> ShownDay:
    """Every slot of local ``day``, each free, booked or past (a booked slot is shown booked even once past:
    what matters to a coordinator is that it was taken)."""
    changes = list(changes)
    taken = {b.astimezone(UTC) for b in booked}
    shown = []
    for slot in day_slots(day, zone, list(hours), changes, slot_minutes):
        status = SlotStatus.BOOKED if slot.starts_at in taken else \
            SlotStatus.PAST if slot.starts_at < now else SlotStatus.FREE
        shown.append(ShownSlot(slot.starts_at, slot.ends_at, status))
    return ShownDay(day, shown, any(c.day == day and not c.available for c in changes))


def week_of(day: date) -> date:
    """The Monday of ``day``'s week (weeks run Monday to Sunday, as ``Hours.weekday`` counts them)."""
    return day - timedelta(days=day.weekday())
