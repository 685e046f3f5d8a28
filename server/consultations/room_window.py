"""When a consultation's room lets people in: from a while before its planned start until a while after
its planned end. Pure: the caller brings the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..errors import N_, Conflict
from ..models import Consultation
from ..settings import Settings

UNBOOKED_LENGTH = timedelta(hours=1)  # a consultation planned without a slot is taken to last this long


@dataclass(frozen=True)
class RoomWindow:
    opens: datetime
    closes: datetime

    @classmethod
    def of(cls, consultation: Consultation, settings: Settings) -> RoomWindow:
        end = consultation.planned_end or consultation.planned_start + UNBOOKED_LENGTH
        return cls(consultation.planned_start - timedelta(minutes=settings.room_opens_minutes_before),
                   end + timedelta(minutes=settings.room_closes_minutes_after))

    def state(self, now: datetime) -> Literal["not-open", "open", "closed"]:
        """Where ``now`` falls: before the window, in it, or after it."""
        if now < self.opens:
            return "not-open"
        if now > self.closes:
            return "closed"
        return "open"

    def check(self, now: datetime) -> None:
        """Refuse a join outside the window, saying when it opens or that it has closed."""
        state = self.state(now)
        if state == "not-open":
            raise Conflict(N_("The consultation room is not open yet."), code="room-not-open",
                           opens_at=self.opens.isoformat())
        if state == "closed":
            raise Conflict(N_("The consultation room has closed."), code="room-closed",
                           closed_at=self.closes.isoformat())
