"""REST: each clinician's and coordinator's calendar feed (a secret URL for their calendar program) and its rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col, select

from ..appkeys import DATABASE, KEYS, SETTINGS
from ..errors import Unauthenticated
from ..http import json_response
from ..identity.auth import caller, public
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
from ..permissions import has_calendar_feed
from ..scheduling.calendar_feed import CalendarEntry, build, feed_path, read_feed_token

routes = web.RouteTableDef()
HISTORY = timedelta(days=30)  # past appointments kept in the feed


async def feed_url(request: web.Request, *, rotate: bool) -> str:
    """The caller's feed URL (a new one if ``rotate``), for this API and the dashboard alike."""
    async with request.app[DATABASE].session() as session:
        path = await feed_path(session, caller(request).principal, request.app[KEYS],
                                             request.app[SETTINGS].jwt_issuer, rotate=rotate)
    return str(request.url.with_path(path).with_query(None))


@routes.get("/api/calendar")
async def calendar_link(request: web.Request) -> web.Response:
    """The caller's feed URL, to subscribe to in a calendar program. Treat it as a password."""
    return json_response({"url": await feed_url(request, rotate=False)})


@routes.post("/api/calendar/rotate")
async def rotate_calendar_link(request: web.Request) -> web.Response:
    """A new feed URL; every earlier one stops working (for a link that leaked)."""
    return json_response({"url": await feed_url(request, rotate=True)})


def _whose(user: User) -> Any:
    """The appointments in a user's feed: those they take part in, or for a coordinator every appointment
    with their hospital's specialists (they book and move them). Other roles have none."""
    if user.role is Role.COORDINATOR:
        return User.hospital_id == user.hospital_id
    if has_calendar_feed(user.role):
        return col(Appointment.consultation_id).in_(
            select(ConsultationParticipant.consultation_id).where(ConsultationParticipant.user_id == user.id))
    return sa.false()


@routes.get("/calendar/{token}.ics")
@public
async def calendar_feed(request: web.Request) -> web.Response:
    """The feed. A calendar program is not a browser: a bad link gets a plain 401, not the login page."""
    try:
        user_id, nonce = read_feed_token(request.app[KEYS], request.app[SETTINGS].jwt_issuer,
                                         request.match_info["token"])
    except Unauthenticated as exc:
        return web.Response(status=401, text=f"{exc.message}\n")
    async with request.app[DATABASE].session() as session:
        user = await session.get(User, user_id)
        if user is None or not user.is_active or not nonce or user.calendar_nonce != nonce:
            return web.Response(status=401, text="This calendar link was replaced or is no longer valid.\n")
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
    chinese = (user.locale or request.app[SETTINGS].default_locale) == "zh-CN"
    label = "远程会诊" if chinese else "Remote consultation"
    entries = [CalendarEntry(
        appointment_id=a.id or 0, starts_at=a.starts_at, ends_at=a.ends_at, timezone=hospital.timezone,
        cancelled=a.status.value != "booked",
        title=f"{label}: {s.name_zh if chinese else s.name_en} · {specialist.display_name} / "
              f"{referrers.get(r.referring_doctor_id, '')}",
        url=str(request.url.with_path(f"/consultations/{a.consultation_id}").with_query(None)))
        for a, r, s, specialist, hospital in rows]
    body = build(entries, host=request.url.host or "telemed", name=f"Telemed · {user.display_name}", now=utcnow())
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Content-Disposition": 'inline; filename="telemed.ics"'})
