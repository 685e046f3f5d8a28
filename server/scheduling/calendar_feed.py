"""A clinician's appointments as an iCalendar feed (RFC 5545), with a VTIMEZONE for each hospital's zone,
so they show at the right time in any calendar program.

A calendar program fetches the feed without logging in, often through a third-party service: the feed's
URL holds a signed token that names the user and their current feed nonce (rotating the nonce ends
every old URL), and the events say nothing about the patient, only who meets whom, when, and the link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Unauthenticated
from ..i18n import translations
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..models import (
    Appointment,
    ConsultationParticipant,
    Hospital,
    Referral,
    Role,
    Specialty,
    User,
    utcnow,
)
from ..permissions import Principal, has_calendar_feed

CALENDAR_AUDIENCE = "telemed-calendar"
HISTORY = timedelta(days=30)  # past appointments kept in the feed
FEED_TTL = 2 * 365 * 24 * 3600  # calendar programs keep a subscription for years; rotate to end one


@dataclass(frozen=True)
class CalendarEntry:
    appointment_id: int
    starts_at: datetime
    ends_at: datetime
    timezone: str  # the specialist's hospital's zone
    cancelled: bool
    title: str  # no patient data: "Remote consultation: Cardiology, with Dr …"
    url: str


async def feed_path(session: AsyncSession, who: Principal, keys: KeyRing, issuer: str, *, rotate: bool) -> str:
    """The caller's feed path (``/calendar/<token>.ics``): with a new nonce if ``rotate`` (audited; every
    earlier URL stops working), else with theirs, made on first use. Roles without appointments get an
    empty feed (the dashboard offers the link only to those with ``has_calendar_feed``)."""
    user = await session.get(User, who.user_id)
    assert user is not None and user.id is not None
    if rotate or not user.calendar_nonce:
        user.calendar_nonce = secrets.token_urlsafe(16)
        session.add(user)
        if rotate:
            audit.with_commit(session, audit.Entry(f"user:{user.id}", "calendar.rotated"))
        await session.commit()
        await session.refresh(user)
    return f"/calendar/{feed_token(keys, issuer, user.id, user.calendar_nonce)}.ics"


def feed_token(keys: KeyRing, issuer: str, user_id: int, nonce: str) -> str:
    return (AccessToken(issuer=issuer, audience=CALENDAR_AUDIENCE, ttl=FEED_TTL)
            .with_identity(f"user:{user_id}").with_claims(nonce=nonce).to_jwt(keys))


def read_feed_token(keys: KeyRing, issuer: str, token: str) -> tuple[int, str]:
    """(user id, nonce) from a feed token; the caller checks the nonce is still the user's."""
    claims = TokenVerifier(keys, issuer=issuer, audience=CALENDAR_AUDIENCE).verify(token)
    subject, nonce = str(claims["sub"]), claims.get("nonce")
    if not subject.startswith("user:") or not subject[5:].isdigit() or not isinstance(nonce, str):
        raise Unauthenticated(N_("The calendar link is not valid."), code="token-invalid")
    return int(subject[5:]), nonce


def build(entries: list[CalendarEntry], *, host: str, name: str, now: datetime) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Telemed//Partnership Telemedicine//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    for entry in entries:
        zone = ZoneInfo(entry.timezone)
        event = icalendar.Event()
        event.add("uid", f"appointment-{entry.appointment_id}@{host}")
        event.add("dtstamp", now)
        event.add("dtstart", entry.starts_at.astimezone(zone))
        event.add("dtend", entry.ends_at.astimezone(zone))
        event.add("summary", entry.title)
        event.add("url", entry.url)
        event.add("description", entry.url)
        event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _whose(user: User) -> Any:
    """The appointments in a user's feed: those they take part in, or for a coordinator every appointment
    with their hospital's specialists (they book and move them). Other roles have none."""
    if user.role is Role.COORDINATOR:
        return User.hospital_id == user.hospital_id
    if has_calendar_feed(user.role):
        return col(Appointment.consultation_id).in_(
            select(ConsultationParticipant.consultation_id).where(ConsultationParticipant.user_id == user.id))
    return sa.false()


async def feed_entries(session: AsyncSession, keys: KeyRing, issuer: str, token: str, *, origin: str,
                       default_locale: str) -> tuple[User, list[CalendarEntry]]:
    """The feed a token opens: its user and their appointments of the last 30 days and to come, in their
    language; ``Unauthenticated`` for a forged token or one whose nonce was rotated away."""
    user_id, nonce = read_feed_token(keys, issuer, token)
    user = await session.get(User, user_id)
    if user is None or not user.is_active or not nonce or user.calendar_nonce != nonce:
        raise Unauthenticated(N_("This calendar link was replaced or is no longer valid."), code="token-invalid")
    rows = (await session.exec(
        select(Appointment, Referral, Specialty, User, Hospital)
        .join(Referral, col(Referral.id) == Appointment.referral_id)
        .join(Specialty, col(Specialty.id) == Referral.specialty_id)
        .join(User, col(User.id) == Appointment.specialist_id)
        .join(Hospital, col(Hospital.id) == User.hospital_id)
        .where(_whose(user), Appointment.starts_at >= utcnow() - HISTORY)
        .order_by(col(Appointment.starts_at)))).all()
    referrers = {u.id: u.display_name for u in (await session.exec(
        select(User).where(col(User.id).in_({r.referring_doctor_id for _, r, _, _, _ in rows})))).all()}
    locale = user.locale or default_locale
    chinese = locale == "zh-CN"
    label = translations(locale).gettext(N_("Remote consultation"))  # (a calendar program sends no language)
    return user, [CalendarEntry(
        appointment_id=a.id or 0, starts_at=a.starts_at, ends_at=a.ends_at, timezone=hospital.timezone,
        cancelled=a.status.value != "booked",
        title=f"{label}: {s.name_zh if chinese else s.name_en} · {specialist.display_name} / "
              f"{referrers.get(r.referring_doctor_id, '')}",
        url=f"{origin}/consultations/{a.consultation_id}")
        for a, r, s, specialist, hospital in rows]
