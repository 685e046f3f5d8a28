"""What a notification says: kept as a kind and its facts, put into words when it is read.

A notification is read by someone other than the person whose action made it, often days later, in
their own language and time zone: a county doctor in Qingshan reads in Chinese that the provincial
hospital booked a slot at 14:30 their time. So rows keep the kind and its parameters, and ``words``
renders them for the reader. ``text`` is also stored, in English with UTC times, for rows made before
kinds existed and for anyone reading the database directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from . import zones
from .errors import N_, NotFound
from .models import Notification, User, utcnow
from .outputs import Out
from .parsing import Id
from .permissions import Principal
from .settings import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

Gettext = Callable[[str], str]

KINDS: dict[str, str] = {
    "referral.state": N_("Referral #{referral}: {state}"),
    "appointment.booked": N_("Referral #{referral}: appointment booked for {when}"),
    "appointment.moved": N_("Referral #{referral}: appointment moved to {when} ({reason})"),
    "appointment.reminder": N_("Reminder: referral #{referral}'s consultation starts in {minutes} min ({when})"),
    "report.amended": N_("Referral #{referral}: the consultation report was amended (version {version})"),
    "report.acknowledged": N_("Referral #{referral}: the referring doctor acknowledged the report (version {version})"),
}

STATE_LABELS = {
    "draft": N_("Draft"), "submitted": N_("Submitted"), "accepted": N_("Accepted"), "declined": N_("Declined"),
    "redirected": N_("Redirected"), "scheduled": N_("Scheduled"), "in_consultation": N_("In consultation"),
    "completed": N_("Completed"), "cancelled": N_("Cancelled"),
}


@dataclass(frozen=True)
class Notice:
    """One thing to tell people, before it is addressed to anyone."""

    kind: str
    params: dict[str, Any]
    link: str

    @classmethod
    def referral_state(cls, referral_id: int, state: str) -> Notice:
        return cls("referral.state", {"referral": referral_id, "state": state}, f"/referrals/{referral_id}")

    @classmethod
    def booked(cls, referral_id: int, starts_at: datetime) -> Notice:
        return cls("appointment.booked", {"referral": referral_id, "when": starts_at.isoformat()},
                   f"/referrals/{referral_id}")

    @classmethod
    def moved(cls, referral_id: int, starts_at: datetime, reason: str) -> Notice:
        return cls("appointment.moved", {"referral": referral_id, "when": starts_at.isoformat(),
                                         "reason": reason.strip()[:300]}, f"/referrals/{referral_id}")

    @classmethod
    def reminder(cls, referral_id: int, consultation_id: int | None, minutes: int, starts_at: datetime) -> Notice:
        return cls("appointment.reminder", {"referral": referral_id, "minutes": minutes,
                                            "when": starts_at.isoformat()}, f"/consultations/{consultation_id}")

    @classmethod
    def report(cls, kind: str, referral_id: int, version: int) -> Notice:
        """``report.amended`` (to the referring doctor) or ``report.acknowledged`` (to the report's author)."""
        return cls(kind, {"referral": referral_id, "version": version}, f"/referrals/{referral_id}#report")

    def to(self, user_id: int) -> Notification:
        """The row that tells ``user_id``."""
        return Notification(user_id=user_id, kind=self.kind, params=json.dumps(self.params, ensure_ascii=False),
                            text=words(self.kind, self.params, lambda message: message, UTC), link=self.link)


def words(kind: str, params: dict[str, Any], gettext: Gettext, zone: ZoneInfo | Any) -> str:
    """The notice in the reader's language (``gettext``), its time in the reader's ``zone``."""
    values = dict(params)
    if "when" in values:
        local = datetime.fromisoformat(values["when"]).astimezone(zone)
        values["when"] = f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
    if "state" in values:
        values["state"] = gettext(STATE_LABELS.get(values["state"], values["state"]))
    return gettext(KINDS[kind]).format(**values)


def readable(row: Notification, gettext: Gettext, zone: ZoneInfo) -> str:
    """What the dashboard shows for a row: its words for this reader, or the stored text for old rows."""
    if row.kind not in KINDS:
        return row.text
    try:
        return words(row.kind, json.loads(row.params), gettext, zone)
    except (ValueError, KeyError, IndexError):  # a broken row or translation must not hide the dashboard
        log.warning("notification %s could not be put into words; showing its stored text", row.id)
        return row.text


async def latest(session: AsyncSession, user: User, gettext: Gettext, *, limit: int,
                 fallback: str = DEFAULT_TIMEZONE) -> list[dict[str, Any]]:
    """The user's newest notifications, in their words and their hospital's time zone (``fallback``'s
    without one)."""
    zone = ZoneInfo(await zones.hospital_zone(session, user.hospital_id, fallback))
    rows = (await session.exec(select(Notification).where(Notification.user_id == user.id)
                               .order_by(col(Notification.id).desc()).limit(limit))).all()
    return [{"id": n.id, "kind": n.kind or None, "text": readable(n, gettext, zone), "link": n.link,
             "created_at": n.created_at.astimezone(zone), "read": n.read_at is not None} for n in rows]


class NotificationShown(Out):
    id: int
    kind: str | None
    text: str
    link: str
    created_at: datetime
    read: bool


class NotificationList(Out):
    """The caller's newest notifications, in their words and their hospital's time zone, and how many are
    unread."""

    notifications: list[NotificationShown]
    unread: int


class ReadCount(Out):
    read: int


class MarkRead(pydantic.BaseModel):
    """Which of the caller's notifications to mark read: the ``ids`` given, else every unread one."""

    model_config = pydantic.ConfigDict(extra="forbid")

    ids: list[Id] | None = pydantic.Field(default=None, max_length=200)


async def unread_count(session: AsyncSession, who: Principal) -> int:
    """How many of the caller's notifications are unread (the badge beside their name)."""
    return (await session.exec(select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == who.user_id, col(Notification.read_at).is_(None)))).one()


async def mark_read(session: AsyncSession, who: Principal, body: MarkRead | None = None) -> int:
    """Mark the caller's unread notifications read now (those of ``body.ids`` only, if given); how many
    there were. Nobody marks another's: the caller's own rows are the only ones touched."""
    query = select(Notification).where(Notification.user_id == who.user_id, col(Notification.read_at).is_(None))
    if body is not None and body.ids is not None:
        query = query.where(col(Notification.id).in_(body.ids))
    rows = (await session.exec(query)).all()
    for row in rows:
        row.read_at = utcnow()
        session.add(row)
    await session.commit()
    return len(rows)


async def follow(session: AsyncSession, who: Principal, notification_id: int) -> str:
    """Open one of the caller's notifications: it is read from now on; where it leads. Another's is 404."""
    row = await session.get(Notification, notification_id)
    if row is None or row.user_id != who.user_id:
        raise NotFound(N_("There is no such notification."))
    await mark_read(session, who, MarkRead(ids=[notification_id]))
    return row.link
