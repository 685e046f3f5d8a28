"""REST: referrals and their transitions, free slots across the partnership, booking, notifications."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from .. import idempotency, notices
from ..appkeys import DATABASE, ROOMS, SETTINGS
from ..consent.records import How
from ..errors import ValidationFailed
from ..http import answer_once, json_response, locale_for, parse_body, parse_form, path_id, translator
from ..identity.auth import caller
from ..models import Appointment, Referral
from ..notices import MarkRead, NotificationList, ReadCount
from ..openapi import accepts, answers, idempotent, queries
from ..parsing import parse_whole
from ..referrals import request as consultation_request
from ..referrals import service as referrals
from ..referrals import views
from ..referrals.flow import Redirection
from ..referrals.inputs import (
    Booking,
    Rebooking,
    ReferralActionBody,
    ReferralCreate,
    ReferralListQuery,
    ReferralRequestEdit,
)
from ..scheduling import service as scheduling

routes = web.RouteTableDef()


def referral_id(request: web.Request) -> int:
    return path_id(request, "referral_id")


@routes.get("/api/referrals")
@queries(ReferralListQuery)
@answers(views.ReferralList)
async def list_referrals(request: web.Request) -> web.Response:
    """The caller's referrals; ``?inbox=1``: those waiting for the receiving side, most urgent and oldest first."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        rows = await referrals.list_for(session, who, inbox=parse_form(request.query, ReferralListQuery).inbox)
        return json_response({"referrals": await views.describe_many(session, who, rows)})


@routes.post("/api/referrals")
@accepts(ReferralCreate)
@answers(views.ReferralDetail, status=201, description="The referral, created.")
@idempotent
async def create_referral(request: web.Request) -> web.Response:
    """Refer a patient to a partner hospital (once per ``Idempotency-Key``)."""
    who = caller(request).principal
    body = await parse_body(request, ReferralCreate)
    async with request.app[DATABASE].session() as session:
        async def created(referral: Referral) -> idempotency.Answer:
            return idempotency.Answer.of(201, await views.describe(session, who, referral, full=True))
        return await answer_once(
            request, idempotency.of_user(who.user_id), body, created,
            lambda reply: referrals.refer(session, who, body, locale=locale_for(request),
                                          how=How.verbal(request, who.user_id), reply=reply))


@routes.get("/api/referrals/{referral_id}")
@answers(views.ReferralDetail)
async def get_referral(request: web.Request) -> web.Response:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        referral, _ = await referrals.load_visible(session, who, referral_id(request))
        data = await views.describe(session, who, referral, full=True)
    await views.audit_patient_view(request.app[DATABASE], who, data)
    return json_response(data)


@routes.get("/api/referrals/{referral_id}/request")
@answers(consultation_request.RequestShown)
async def get_request(request: web.Request) -> web.Response:
    """The referral's consultation request (会诊申请单) as the receiving side reads it: hospitals, doctors,
    specialty and title wanted, the consent's status from the consent records, and (where the patient's records
    may be seen) the patient, reason, question, working diagnosis, history, results and summary, else null."""
    facts, _ = await consultation_request.read(request.app[DATABASE], caller(request).principal,
                                               referral_id(request), "json",
                                               default_zone=request.app[SETTINGS].default_timezone)
    return json_response(facts.shown(locale_for(request)))


@routes.put("/api/referrals/{referral_id}/request")
@accepts(ReferralRequestEdit)
@answers(views.ReferralDetail, description="The referral with its rewritten request.")
async def edit_request(request: web.Request) -> web.Response:
    """The referring doctor rewrites a draft's consultation request (every field; 403 once it is submitted)."""
    who = caller(request).principal
    body = await parse_body(request, ReferralRequestEdit)
    async with request.app[DATABASE].session() as session:
        referral = await referrals.edit_request(session, who, referral_id(request), body)
        data = await views.describe(session, who, referral, full=True)
    return json_response(data)


@routes.post("/api/referrals/{referral_id}/actions")
@accepts(ReferralActionBody)
@answers(views.ReferralDetail, description="The referral, moved on.")
async def act_on_referral(request: web.Request) -> web.Response:
    """Move a referral on: submit, accept, decline, redirect, start or cancel (409 if it cannot). A draft saved
    without the patient's consent to sharing is submitted with it (``sharing_consent: "verbal"``). A referral is
    completed by signing its consultation report (``POST /api/referrals/{id}/reports``), not here: ``complete``
    answers 422."""
    who = caller(request).principal
    body = await parse_body(request, ReferralActionBody)
    target = Redirection(body.redirect_to.hospital_id, body.redirect_to.specialist_id) if body.redirect_to else None
    async with request.app[DATABASE].session() as session:
        referral = await referrals.act(session, who, referral_id(request), body.action, reason=body.reason,
                                       redirect_to=target,
                                       sharing=referrals.SharingSaid.of(body, How.verbal(request, who.user_id),
                                                                        locale_for(request)))
        data = await views.describe(session, who, referral, full=True)
    return json_response(data)


@routes.get("/api/slots")
@queries(scheduling.SlotQuery)
@answers(scheduling.FreeSlots)
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
@answers(views.ReferralDetail, status=201, description="The referral, scheduled: its appointment booked.")
@idempotent
async def book_appointment(request: web.Request) -> web.Response:
    """Book a slot for an accepted referral (once per ``Idempotency-Key``)."""
    who = caller(request).principal
    body = await parse_body(request, Booking)
    async with request.app[DATABASE].session() as session:
        async def booked(appointment: Appointment) -> idempotency.Answer:
            referral, _ = await referrals.load_visible(session, who, appointment.referral_id)
            return idempotency.Answer.of(201, await views.describe(session, who, referral, full=True))
        return await answer_once(
            request, idempotency.of_user(who.user_id), body, booked,
            lambda reply: scheduling.book(session, who, referral_id(request), body.specialist_id, body.starts_at,
                                          reply=reply))


@routes.put("/api/referrals/{referral_id}/appointment")
@accepts(Rebooking)
@answers(views.ReferralDetail, description="The referral, its appointment moved.")
async def move_appointment(request: web.Request) -> web.Response:
    who = caller(request).principal
    body = await parse_body(request, Rebooking)
    async with request.app[DATABASE].session() as session:
        moved = await scheduling.move(session, who, referral_id(request), body.specialist_id, body.starts_at,
                                      body.reason, rooms=request.app[ROOMS])
        referral, _ = await referrals.load_visible(session, who, moved.referral_id)
        data = await views.describe(session, who, referral, full=True)
    return json_response(data)


@routes.get("/api/notifications")
@answers(NotificationList)
async def list_notifications(request: web.Request) -> web.Response:
    """The caller's notifications, newest first (the last 100), in their language and time zone, and how
    many are unread."""
    who = caller(request)
    async with request.app[DATABASE].session() as session:
        rows = await notices.latest(session, who.user, translator(request), limit=100)
        unread = await notices.unread_count(session, who.principal)
    return json_response({"notifications": [{**n, "created_at": n["created_at"].isoformat()} for n in rows],
                          "unread": unread})


@routes.post("/api/notifications/read")
@accepts(MarkRead)
@answers(ReadCount, description="How many were marked read.")
async def mark_notifications_read(request: web.Request) -> web.Response:
    """Mark the caller's notifications read: those of ``ids``, or with no body every unread one."""
    body = await parse_body(request, MarkRead) if request.body_exists else None
    async with request.app[DATABASE].session() as session:
        read = await notices.mark_read(session, caller(request).principal, body)
    return json_response({"read": read})
