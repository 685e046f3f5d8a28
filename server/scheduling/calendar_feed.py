"""A clinician's appointments as an iCalendar feed (RFC 5545), with a VTIMEZONE for each hospital's zone,
so they show at the right time in any calendar program.

A calendar program fetches the feed without logging in, often through a third-party service: the feed's
URL holds a signed token that names the user and their current feed nonce (rotating the nonce ends
every old URL), and the events say nothing about the patient, only who meets whom, when, and the link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import icalendar
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import Unauthenticated
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..models import User
from ..permissions import Principal

CALENDAR_AUDIENCE = "telemed-calendar"
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
        raise Unauthenticated("The calendar link is not valid.", code="token-invalid")
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
