"""REST: referrals and their transitions, free slots across the partnership, booking, notifications."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pydantic
from aiohttp import web
from sqlmodel import col, select

from .. import audit, consent_templates, notices, referrals, scheduling
from ..appkeys import DATABASE, RENDERER
from ..auth import caller
from ..consents import How
from ..errors import ValidationFailed
from ..http import json_response, parse_body, path_id
from ..models import ConsentPurpose, Notification, Referral, Urgency, utcnow
from ..openapi import accepts
from ..parsing import Id, parse_whole
from ..referral_flow import Redirection, ReferralAction

routes = web.RouteTableDef()


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ReferralCreate(_Body):
    patient_id: Id
    specialty: str = pydantic.Field(min_length=1, max_length=64)
    urgency: Urgency
    reason: str = pydantic.Field(min_length=1, max_length=500)
    summary: str = pydantic.Field(default="", max_length=20_000)
    target_hospital_id: Id
    target_specialist_id: Id | None = None
    submit: bool = True  # false keeps it a draft
    # "verbal": the patient agreed, to the referring doctor, to their records going to the partner hospital
    # (the current record-sharing text, or the one in sharing_template_id). Needed to submit.
    sharing_consent: Literal["verbal"] | None = None
    sharing_template_id: Id | None = None


class RedirectTarget(_Body):
    hospital_id: Id
    specialist_id: Id | None = None


class ReferralActionBody(_Body):
    action: ReferralAction
    reason: str = pydantic.Field(default="", max_length=1000)
    opinion: str = pydantic.Field(default="", max_length=20_000)
    recommendations: str = pydantic.Field(default="", max_length=20_000)
    redirect_to: RedirectTarget | None = None


class Booking(_Body):
    specialist_id: Id
    starts_at: pydantic.AwareDatetime


class Rebooking(Booking):
    reason: str = pydantic.Field(min_length=1, max_length=1000)


def referral_id(request: web.Request) -> int:
    return path_id(request, "referral_id")


@routes.get("/api/referrals")
async def list_referrals(request: web.Request) -> web.Response:
    """The caller's referrals; ``?inbox=1``: those waiting for the receiving side, most urgent and oldest first."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        rows = await referrals.list_for(session, who, inbox=request.query.get("inbox") == "1")
        return json_response({"referrals": [await referrals.describe(session, who, r, full=False) for r in rows]})


@routes.post("/api/referrals")
@accepts(ReferralCreate)
async def create_referral(request: web.Request) -> web.Response:
    who = caller(request).principal
    body = await parse_body(request, ReferralCreate)
    fields = body.model_dump(exclude={"sharing_consent", "sharing_template_id"})
    referral = await create_with_consent(request, fields, verbal_consent=body.sharing_consent == "verbal",
                                         template_id=body.sharing_template_id)
    async with request.app[DATABASE].session() as session:
        data = await referrals.describe(session, who, referral, full=True)
    return json_response(data, status=201)


async def create_with_consent(request: web.Request, fields: dict, *, verbal_consent: bool,
                              template_id: int | None) -> Referral:
    """Create a referral (for the API and the form alike), with the patient's consent to sharing their
    records if the referring doctor records it; both are audited in the same transaction."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        sharing = None
        if verbal_consent:
            template = await consent_templates.offered(session, ConsentPurpose.RECORD_SHARING, template_id,
                                                       request.app[RENDERER].locale_for(request))
            sharing = (template, How.verbal(request, who.user_id))
        return await referrals.create(session, who, referrals.NewReferral(**fields, sharing_consent=sharing))


async def audit_patient_view(request: web.Request, data: dict) -> None:
    """A referral shown with its patient's records is a view of the patient's record: audit it."""
    if data.get("patient") and "summary" in data:
        await audit.record(request.app[DATABASE], actor=f"user:{caller(request).user.id}", action="patient.viewed",
                           subject=f"patient:{data['patient']['id']}", detail={"via": f"referral:{data['id']}"})


@routes.get("/api/referrals/{referral_id}")
async def get_referral(request: web.Request) -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        referral, _ = await referrals.load_visible(session, who, referral_id(request))
        data = await referrals.describe(session, who, referral, full=True)
    await audit_patient_view(request, data)
    return json_response(data)


@routes.post("/api/referrals/{referral_id}/actions")
@accepts(ReferralActionBody)
async def act_on_referral(request: web.Request) -> web.Response:
    """Move a referral on: submit, accept, decline, redirect, start, complete or cancel (409 if it cannot)."""
    who = caller(request).principal
    body = await parse_body(request, ReferralActionBody)
    target = Redirection(body.redirect_to.hospital_id, body.redirect_to.specialist_id) if body.redirect_to else None
    async with request.app[DATABASE].session() as session:
        referral = await referrals.act(session, who, referral_id(request), body.action, reason=body.reason,
                                       opinion=body.opinion, recommendations=body.recommendations,
                                       redirect_to=target)
        data = await referrals.describe(session, who, referral, full=True)
    return json_response(data)


@routes.get("/api/slots")
async def free_slots(request: web.Request) -> web.Response:
    """Free slots across the caller's partnerships: ``?specialty=<code>&date=YYYY-MM-DD[&days=N]``."""
    who = caller(request).principal
    problems = {}
    specialty = request.query.get("specialty", "")
    if not specialty:
        problems["specialty"] = "required: a specialty code"
    try:
        start = date.fromisoformat(request.query.get("date", ""))
    except ValueError:
        problems["date"] = "required: a day as YYYY-MM-DD"
    days = parse_whole(request.query.get("days", "1"), 1, scheduling.SEARCH_DAYS_MAX)
    if days is None:
        problems["days"] = f"a whole number of days, from 1 to {scheduling.SEARCH_DAYS_MAX}"
    if problems:
        raise ValidationFailed(problems)
    window = scheduling.search_window(start, days)
    async with request.app[DATABASE].session() as session:
        found = await scheduling.search(session, who, specialty, window)
    return json_response({"specialists": [s.to_json() for s in found]})


@routes.post("/api/referrals/{referral_id}/appointment")
@accepts(Booking)
async def book_appointment(request: web.Request) -> web.Response:
    who = caller(request).principal
    body = await parse_body(request, Booking)
    async with request.app[DATABASE].session() as session:
        booked = await scheduling.book(session, who, referral_id(request), body.specialist_id, body.starts_at)
        referral, _ = await referrals.load_visible(session, who, booked.referral_id)
        data = await referrals.describe(session, who, referral, full=True)
    return json_response(data, status=201)


@routes.put("/api/referrals/{referral_id}/appointment")
@accepts(Rebooking)
async def move_appointment(request: web.Request) -> web.Response:
    who = caller(request).principal
    body = await parse_body(request, Rebooking)
    async with request.app[DATABASE].session() as session:
        moved = await scheduling.move(session, who, referral_id(request), body.specialist_id, body.starts_at,
                                      body.reason)
        referral, _ = await referrals.load_visible(session, who, moved.referral_id)
        data = await referrals.describe(session, who, referral, full=True)
    return json_response(data)


@routes.get("/api/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    """The caller's notifications, newest first (the last 100), in their language and time zone."""
    async with request.app[DATABASE].session() as session:
        rows = await notices.latest(session, caller(request).user, request.app[RENDERER].translator(request), limit=100)
    return json_response({"notifications": [{**n, "created_at": n["created_at"].isoformat()} for n in rows]})


@routes.post("/api/notifications/read")
async def mark_notifications_read(request: web.Request) -> web.Response:
    user_id = caller(request).user.id
    async with request.app[DATABASE].session() as session:
        rows = (await session.exec(select(Notification).where(Notification.user_id == user_id,
                                                              col(Notification.read_at).is_(None)))).all()
        for row in rows:
            row.read_at = utcnow()
            session.add(row)
        await session.commit()
    return json_response({"read": len(rows)})
