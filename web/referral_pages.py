"""The referral pages: the list (a coordinator's inbox, then the rest), a new referral, and one referral with
the forms for what the caller may do next (accept, decline, redirect, book a slot from the week's calendar,
sign the consultation report and amend it, acknowledge it, cancel). Every time is on the reader's hospital's
clock, with the zone's short name.

Plain forms, posted back here and redirected (post/redirect/get); the work is done by the same
server/referrals/service.py and server/scheduling/service.py functions the REST API calls, so the rules are the same.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from aiohttp import web

from server.appkeys import DATABASE, RECORDING_KEY, REPORTS, ROOMS, SETTINGS
from server.consent import records as consents
from server.consent import templates as consent_templates
from server.consent.records import How
from server.errors import N_, BadRequest, NotFound, TelemedError, ValidationFailed
from server.http import file_upload, locale_for, parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.models import ConsentPurpose, ConsultationReport, ReferralState, Urgency, utcnow
from server.notices import STATE_LABELS
from server.parsing import parse_id
from server.permissions import (
    awaits_licence,
    can_acknowledge_report,
    can_attach,
    can_edit_referral_request,
    can_refer,
    can_sign_report,
    has_referral_inbox,
    has_referrals,
    is_report_signer,
    require,
)
from server.referrals import attachments, choices, request_pdf, views
from server.referrals import request as consultation_request
from server.referrals import service as referrals
from server.referrals.flow import Redirection, ReferralAction
from server.referrals.inputs import (
    Booking,
    Rebooking,
    ReferralActionBody,
    ReferralCreate,
    ReferralRequestEdit,
    ReferralSearch,
)
from server.reports import service as reports
from server.reports.inputs import ReportInput
from server.scheduling import service as scheduling

from .booking_calendar import calendar
from .clock import zone_names
from .forms import field_errors, refusal_text
from .render import RENDERER

routes = web.RouteTableDef()

URGENCY_LABELS = {"routine": N_("Routine"), "urgent": N_("Urgent"), "emergency": N_("Emergency")}


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    return request.app[RENDERER].render(request, template, {
        **context, "state_labels": STATE_LABELS, "urgency_labels": URGENCY_LABELS,
        "title_words": consultation_request.TITLE_WORDS}, status=status)


def _text(request: web.Request, message: str) -> str:
    return request.app[RENDERER].gettext(request, message)


# The list's search names its fields as the search form labels them.
SEARCH_LABELS = {"name": N_("Patient's name"), "state": N_("State")}


def _error_text(request: web.Request, error: TelemedError, labels: dict[str, str] | None = None) -> str:
    """A refusal as the page says it: each wrong field by its label, or the error's message, translated."""
    return refusal_text(error, translator(request), labels)


def _page_link(request: web.Request, key: str, page: int, *, keep: bool = True) -> str:
    """This list's address at another page of one of its sections, keeping the search and the other's page
    (not a search that could not be read: the pages shown are then the unsearched list's)."""
    if not keep:
        return str(request.rel_url.with_query({key: str(page)}))
    return str(request.rel_url.update_query({key: str(page)}))


@routes.get("/referrals", name="referrals")
async def referral_list(request: web.Request) -> web.Response:
    """The caller's referrals, a page at a time, searchable; a coordinator's inbox first, and each referral once.
    A search that cannot be read is a 422 like the other lists', its alert naming each field, above the first
    page of all the caller's referrals."""
    who = caller(request).principal
    require(has_referrals(who), N_("Only clinicians and coordinators work with referrals."))
    error = None
    try:
        search = parse_form(dict(request.query), ReferralSearch)  # the model the search's limits live in
    except ValidationFailed as exc:
        search, error = ReferralSearch(), _error_text(request, exc, SEARCH_LABELS)
    async with request.app[DATABASE].session() as session:
        zone = await views.reader_zone(session, who, request.app[SETTINGS].default_timezone)
        inbox = await referrals.find(session, who, search, box="inbox") if has_referral_inbox(who) else None
        rest = await referrals.find(session, who, search, box="others" if inbox is not None else "all")
        # one batch describes both sections
        described = {d["id"]: d for d in await views.describe_many(
            session, who, (inbox.items if inbox else []) + rest.items)}
    return _render(request, "referrals.html", {
        "inbox": inbox and [described[r.id] for r in inbox.items], "inbox_page": inbox,
        "referrals": [described[r.id] for r in rest.items], "page": rest,
        "search": search, "states": list(ReferralState), "error": error, "searched": bool(search.name or search.state),
        "receiving": not can_refer(who), "zone": zone,
        "zone_short": zone_names([], zone),
        "page_link": lambda key: lambda n: _page_link(request, key, n, keep=error is None),
        "can_refer": can_refer(who), "typed_name": request.query.get("name", "")},  # kept to be put right
        status=422 if error else 200)


async def _new_form_choices(request: web.Request) -> dict[str, Any]:
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        return {
            **await choices.for_new_referral(session, who),
            "urgencies": list(Urgency),
            "sharing_text": await consent_templates.current(session, ConsentPurpose.RECORD_SHARING,
                                                            locale_for(request)),
        }


@routes.get("/referrals/new", name="referral_new")
async def referral_new(request: web.Request) -> web.Response:
    context = await _new_form_choices(request)
    return _render(request, "referral_new.html", {**context, "form": {}, "error": None})


@routes.post("/referrals/new")
async def referral_create(request: web.Request) -> web.Response:
    form = await read_form(request)
    values = {k: str(v).strip() for k, v in form.items()}
    who = caller(request).principal
    try:
        # the same model, limits and service as POST /api/referrals
        body = parse_form({**values, "submit": str(values.get("submit") != "draft")}, ReferralCreate)
        async with request.app[DATABASE].session() as session:
            referral = await referrals.refer(session, who, body, locale=locale_for(request),
                                             how=How.verbal(request, who.user_id))
    except TelemedError as exc:
        message = _error_text(request, exc)
        context = await _new_form_choices(request)
        return _render(request, "referral_new.html", {**context, "form": values, "error": message,
                                                      "errors": field_errors(exc, translator(request))}, status=422)
    raise web.HTTPSeeOther(f"/referrals/{referral.id}")


def _int(raw: str | None) -> int:
    """The id a form's list sent; anything else (tampered with, or nothing chosen) is 400 choice-required."""
    number = parse_id(raw)
    if number is None:
        raise BadRequest(N_("Choose from the lists."), code="choice-required")
    return number


@routes.get("/referrals/{referral_id}", name="referral")
async def referral_page(request: web.Request) -> web.Response:
    return await _render_referral(request, path_id(request, "referral_id"))


async def _render_referral(request: web.Request, referral_id: int, *, error: str | None = None,
                           errors: dict[str, str] | None = None, status: int = 200, week_raw: str | None = None,
                           report_form: dict[str, str] | None = None, move_reason: str = "") -> web.Response:
    who = caller(request).principal
    week_raw = week_raw or request.query.get("week")
    async with request.app[DATABASE].session() as session:
        referral, appointment = await referrals.load_visible(session, who, referral_id)
        data = await views.describe(session, who, referral, full=True)
        scope = referrals.scope_of(referral, appointment)
        versions = [] if data["records_withheld"] else [
            reports.describe(row) for row in await reports.versions(session, referral_id)]
        zone = await views.reader_zone(session, who, request.app[SETTINGS].default_timezone)
        hospitals, specialists = await choices.partners(session, referral.target_hospital_id)
        week = None
        if data["can_book"] or data["can_move"]:
            week = await scheduling.booking_week(session, who, referral_id, _day(week_raw))
        sharing_text = None  # read out to the patient as a draft saved without their consent is submitted
        if "submit" in data["actions"] and not data["sharing_consent"]:
            sharing_text = await consent_templates.current(session, ConsentPurpose.RECORD_SHARING, locale_for(request))
    await views.audit_patient_view(request.app[DATABASE], who, data)
    files: list[attachments.AttachmentShown] = []
    if not data["records_withheld"]:
        async with request.app[DATABASE].session() as session:
            files = [attachments.describe(row) for row in await attachments.list_for(session, who, referral_id)]
    return _render(request, "referral.html", {
        "attachments": files, "can_attach": can_attach(who, referrals.scope_of(referral, None))
        and referral.state not in attachments.CLOSED,
        "referral": data, "hospitals": hospitals, "specialists": specialists, "zone": zone,
        "reports": versions, "can_sign_report": can_sign_report(who, scope),
        # theirs to sign but for their licence: the page says why they cannot yet
        "signing_awaits_licence": is_report_signer(who, scope) and awaits_licence(who)
        and referral.state in (ReferralState.SCHEDULED, ReferralState.IN_CONSULTATION),
        "can_edit_request": can_edit_referral_request(who, scope, referral.state),
        "can_acknowledge_report": can_acknowledge_report(who, scope),
        "report_form": report_form or {"findings": "", "diagnosis_code": "", "recommendations": ""},
        "calendar": calendar(week, locale_for(request)) if week else None, "moving": data["can_move"],
        "move_reason": move_reason, "asked_week": bool(week_raw), "sharing_text": sharing_text,
        "error": error, "errors": errors or {}}, status)


REQUEST_FIELDS = tuple(ReferralRequestEdit.model_fields)


@routes.get("/referrals/{referral_id}/request", name="referral_request")
async def request_page(request: web.Request) -> web.Response:
    """The referral's consultation request laid out like the paper form, printable: the same facts as
    ``GET /api/referrals/{id}/request`` and the PDF, on the reader's clock, read audited."""
    facts, zone = await consultation_request.read(request.app[DATABASE], caller(request).principal,
                                                  path_id(request, "referral_id"), "page",
                                                  default_zone=request.app[SETTINGS].default_timezone)
    return _render(request, "referral_request.html", {
        "request": facts, "clinical": facts.clinical, "zone": zone, "words": consultation_request})


@routes.get("/referrals/{referral_id}/request.pdf", name="referral_request_pdf")
async def request_pdf_file(request: web.Request) -> web.Response:
    """The consultation request as a PDF, in the reader's language and on their hospital's clock."""
    referral_id = path_id(request, "referral_id")
    facts, zone = await consultation_request.read(request.app[DATABASE], caller(request).principal, referral_id,
                                                  "pdf", default_zone=request.app[SETTINGS].default_timezone)
    # fpdf2 and the embedded CJK font take a while: off the event loop that carries everyone's signaling
    pdf = await asyncio.to_thread(request_pdf.render, facts, locale_for(request), zone, printed_at=utcnow())
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="consultation-request-{referral_id}.pdf"',
        "Cache-Control": "no-store"})


async def _edit_form(request: web.Request, referral_id: int, form: dict[str, str], *,
                     error: TelemedError | None = None) -> web.Response:
    context = {"referral_id": referral_id, "form": form, "error": None, "errors": {}}
    if error is not None:
        context.update(error=_error_text(request, error), errors=field_errors(error, translator(request)))
    return _render(request, "referral_request_edit.html", context, status=error.status if error else 200)


@routes.get("/referrals/{referral_id}/request/edit", name="referral_request_edit")
async def request_edit(request: web.Request) -> web.Response:
    """A draft's consultation request, in the new referral form's fields, for its referring doctor."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    async with request.app[DATABASE].session() as session:
        referral, appointment = await referrals.load_visible(session, who, referral_id)
    require(can_edit_referral_request(who, referrals.scope_of(referral, appointment), referral.state),
            N_("Only the referring doctor changes a referral's request, and only while it is a draft."))
    form = {name: str(getattr(referral, name).value if name == "title_wanted" else getattr(referral, name))
            for name in REQUEST_FIELDS}
    return await _edit_form(request, referral_id, form)


@routes.post("/referrals/{referral_id}/request/edit")
async def request_save(request: web.Request) -> web.Response:
    """Save a draft's request (``referrals.edit_request``, as ``PUT /api/referrals/{id}/request``)."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    values = {k: str(v).strip() for k, v in (await read_form(request)).items() if k in REQUEST_FIELDS}
    try:
        body = parse_form(values, ReferralRequestEdit)
        async with request.app[DATABASE].session() as session:
            await referrals.edit_request(session, who, referral_id, body)
    except TelemedError as exc:
        return await _edit_form(request, referral_id, values, error=exc)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}")


def _day(raw: str | None) -> date | None:
    """The ``?week=YYYY-MM-DD`` a calendar link carries; anything else asks for the default week."""
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@routes.post("/referrals/{referral_id}/action")
async def referral_action(request: web.Request) -> web.Response:
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    form = {k: v.strip() for k, v in (await read_form(request)).items()}
    try:
        ReferralAction(form.get("action", ""))  # (a tampered form's action: 400, before the model names it)
        body = parse_form(form, ReferralActionBody)  # the API's model; a redirect's target from its two lists
        target = None
        if body.action is ReferralAction.REDIRECT:
            target = Redirection(_int(form.get("hospital_id")),
                                 _int(form["specialist_id"]) if form.get("specialist_id") else None)
        async with request.app[DATABASE].session() as session:
            await referrals.act(session, who, referral_id, body.action, reason=body.reason, redirect_to=target,
                                sharing=referrals.SharingSaid.of(body, How.verbal(request, who.user_id),
                                                                 locale_for(request)))
    except ValueError:
        return await _render_referral(request, referral_id, error=_text(request, N_("Unknown action.")), status=400)
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc, SUBMIT_LABELS),
                                      errors=field_errors(exc, translator(request)), status=exc.status)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}")


# what a submit may find missing, named as the pages name them
SUBMIT_LABELS = {"question": N_("Question for the specialist"),
                 "sharing_consent": N_("The patient's consent to sharing their records")}
REPORT_FIELDS = ("findings", "diagnosis_code", "recommendations")


@routes.post("/referrals/{referral_id}/report")
async def referral_report(request: web.Request) -> web.Response:
    """The booked specialist signs the consultation report, completing the referral (``reports.sign``, as
    ``POST /api/referrals/{id}/reports``); with ``amends``, a new version of that one (``reports.amend``)."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    form = {k: str(v).strip() for k, v in (await read_form(request)).items()}
    values = {k: form.get(k, "") for k in REPORT_FIELDS}
    try:
        body = parse_form(values, ReportInput)
        async with request.app[DATABASE].session() as session:
            if form.get("amends"):
                await reports.amend(session, who, _int(form["amends"]), body, tools=request.app[REPORTS],
                                    of_referral=referral_id)
            else:
                await reports.sign(session, who, referral_id, body, tools=request.app[REPORTS])
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc), status=exc.status,
                                      report_form={**values, "errors": field_errors(exc, translator(request))})
    raise web.HTTPSeeOther(f"/referrals/{referral_id}#report")


@routes.post("/referrals/{referral_id}/reports/{report_id}/acknowledge")
async def referral_report_acknowledge(request: web.Request) -> web.Response:
    """The referring doctor acknowledges receipt of a report version (``reports.acknowledge``)."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    try:
        async with request.app[DATABASE].session() as session:
            await reports.acknowledge(session, who, path_id(request, "report_id"), of_referral=referral_id)
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc), status=exc.status)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}#report")


@routes.get("/referrals/{referral_id}/reports/{report_id}/verification")
async def referral_report_verification(request: web.Request) -> web.Response:
    """Whether a report version's stored PDF still holds, in words (``reports.verification``, as
    ``GET /api/reports/{id}/verification``)."""
    who = caller(request).principal
    report_id = path_id(request, "report_id")
    found = await reports.verification(request.app[DATABASE], who, report_id, tools=request.app[REPORTS],
                                       locale=locale_for(request))
    async with request.app[DATABASE].session() as session:
        report = await session.get(ConsultationReport, report_id)
        zone = await views.reader_zone(session, who, request.app[SETTINGS].default_timezone)
    if report is None or report.referral_id != path_id(request, "referral_id"):
        raise NotFound(N_("There is no such report."))
    return _render(request, "report_verification.html", {"found": found, "report": report, "zone": zone})


@routes.post("/referrals/{referral_id}/book")
async def referral_book(request: web.Request) -> web.Response:
    """A slot chosen in the calendar, booked by the same service as ``POST /api/referrals/{id}/appointment``."""
    return await _take_slot(request, moving=False)


@routes.post("/referrals/{referral_id}/move")
async def referral_move(request: web.Request) -> web.Response:
    """Another slot chosen in the calendar for a booked appointment, with the reason both sides are told, moved by
    the same service as ``PUT /api/referrals/{id}/appointment`` (a specialist it moves away from leaves the
    consultation, and its room if they are in it)."""
    return await _take_slot(request, moving=True)


async def _take_slot(request: web.Request, *, moving: bool) -> web.Response:
    """The calendar's slot button sends ``<specialist id>@<start>``, read into the API's own ``Booking`` (or, moving,
    ``Rebooking`` with the reason); a refusal shows the calendar again, at the week it was, with what was typed."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    form = await read_form(request)
    week, reason = form.get("week"), form.get("reason", "")
    specialist_raw, _, starts_raw = form.get("slot", "").partition("@")
    if not specialist_raw or not starts_raw:
        return await _render_referral(request, referral_id, error=_text(request, N_("Choose a slot.")), status=422,
                                      week_raw=week, move_reason=reason)
    slot = {"specialist_id": specialist_raw, "starts_at": starts_raw}
    try:
        if moving:
            move = parse_form({**slot, "reason": reason}, Rebooking)
            async with request.app[DATABASE].session() as session:
                await scheduling.move(session, who, referral_id, move.specialist_id, move.starts_at, move.reason,
                                      rooms=request.app[ROOMS])
        else:
            booking = parse_form(slot, Booking)
            async with request.app[DATABASE].session() as session:
                await scheduling.book(session, who, referral_id, booking.specialist_id, booking.starts_at)
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc, MOVE_LABELS),
                                      status=exc.status, week_raw=week, move_reason=reason)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}#appointment")


MOVE_LABELS = {"reason": N_("Why it moves (both sides are told)")}


@routes.post("/referrals/{referral_id}/sharing-consent/withdraw")
async def withdraw_sharing(request: web.Request) -> web.Response:
    """The referring doctor records, on the patient's word, that they withdraw consent to sharing."""
    who = caller(request).principal
    referral_id = path_id(request, "referral_id")
    async with request.app[DATABASE].session() as session:
        referral, _ = await referrals.load_visible(session, who, referral_id)
        consent = await referrals.sharing_consent(session, referral)
    try:
        if consent is not None and consent.id is not None:  # (withdrawn meanwhile: nothing left to withdraw)
            await consents.withdraw_as(request.app[DATABASE], request.app[ROOMS], who, consent.id)
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc), status=exc.status)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}")


@routes.post("/referrals/{referral_id}/attachments")
async def attach(request: web.Request) -> web.Response:
    """The referring doctor attaches a file from the referral page."""
    referral_id = path_id(request, "referral_id")
    try:
        settings = request.app[SETTINGS]
        await attachments.attach(request.app[DATABASE], caller(request).principal, referral_id,
                                 lambda: file_upload(request), root=settings.recordings_dir,
                                 key=request.app[RECORDING_KEY], max_bytes=settings.attachment_max_bytes)
    except TelemedError as exc:
        return await _render_referral(request, referral_id, error=_error_text(request, exc), status=exc.status)
    raise web.HTTPSeeOther(f"/referrals/{referral_id}#attachments")
