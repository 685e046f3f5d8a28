"""Setting up a consultation from the UI, and inviting its patient: the link to send, a button to copy it,
its QR code for a phone's camera, and a message ready to paste into an SMS or WeChat.

The new-consultation form parses into ``NewConsultation``, the model POST /api/consultations reads, after
reading its start on the hospital's clock (``forms.on_clock``), and calls the same ``consultations.create``;
inviting calls ``patients.invitations`` as POST /api/consultations/{id}/invitations does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from server.appkeys import DATABASE, KEYS, ROOMS, SETTINGS
from server.consent import templates as consent_templates
from server.consent.rules import How
from server.consultations import choices
from server.consultations import service as consultations
from server.consultations.inputs import DURATIONS, ConsultationSearch, NewConsultation
from server.errors import N_, TelemedError, ValidationFailed
from server.http import locale_for, parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.models import ConsentPurpose, ConsultationStatus
from server.parsing import parse_id
from server.patients import invitations
from server.permissions import can_create_consultation, can_join_consultation, can_list_consultations, require

from .clock import for_patient, zone_label, zone_names
from .forms import field_errors, on_clock, summary
from .pages import STATUS_LABELS
from .qr import svg_data_uri
from .render import RENDERER, page_zone

routes = web.RouteTableDef()

FIELDS = ("title", "planned_start", "duration_minutes", "patient_id", "sharing_consent", "sharing_template_id")

# The message a doctor pastes into an SMS or WeChat; in the page's language, for the patient to read.
MESSAGE = N_("Hello %(patient)s, this is %(inviter)s of %(hospital)s. You are invited to a video "
             "consultation, \u201c%(title)s\u201d, on %(when)s. At that time, open this link on your phone or "
             "computer and follow the steps: %(url)s The link is for you alone; please do not pass it on.")
MESSAGE_NO_NAME = N_("Hello, this is %(inviter)s of %(hospital)s. You are invited to a video consultation, "
                     "\u201c%(title)s\u201d, on %(when)s. At that time, open this link on your phone or "
                     "computer and follow the steps: %(url)s The link is for you alone; please do not pass it on.")


def _default_start(zone: str) -> str:
    """The next whole hour but one on the hospital's clock, as a datetime-local value."""
    now = datetime.now(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0)
    return (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")


async def _form_page(request: web.Request, form: dict[str, Any], *, errors: dict[str, str] | None = None,
                     error: str | None = None, status: int = 200) -> web.Response:
    async with request.app[DATABASE].session() as session:
        offered = await choices.for_new_consultation(session, caller(request).principal)
        sharing = await consent_templates.current(session, ConsentPurpose.RECORD_SHARING, locale_for(request))
    zone = offered.hospital.timezone
    form.setdefault("planned_start", _default_start(zone))
    form.setdefault("duration_minutes", "30")
    return request.app[RENDERER].render(request, "consultation_new.html", {
        "choices": offered, "form": form, "errors": errors or {}, "error": error, "durations": DURATIONS,
        "sharing_text": sharing,
        "zone": zone_label(zone)}, status=status)


SEARCH_FIELDS = ("q", "status", "since", "until", "page")


@routes.get("/consultations", name="consultations")
async def consultation_list(request: web.Request) -> web.Response:
    """The consultations the caller may see, latest first, a page at a time, searched by patient or title,
    status and days on the hospital's clock (``consultations.find``, as GET /api/consultations)."""
    who = caller(request).principal
    require(can_list_consultations(who), N_("Only clinicians and coordinators list consultations."))
    form = {k: request.query[k].strip() for k in SEARCH_FIELDS if k in request.query}
    errors: dict[str, str] = {}
    async with request.app[DATABASE].session() as session:
        try:
            search = parse_form(form, ConsultationSearch)
        except ValidationFailed as exc:
            errors, search = field_errors(exc, translator(request)), ConsultationSearch()
        fallback = request.app[SETTINGS].default_timezone
        found = await consultations.find(session, who, search, fallback=fallback) if not errors else None
        zone = await page_zone(request, session)
    kept = {k: v for k, v in form.items() if k != "page" and v}

    def page_url(page: int) -> str:
        return str(request.rel_url.with_query({**kept, "page": str(page)}))

    return request.app[RENDERER].render(request, "consultations.html", {
        "form": form, "errors": errors, "found": found, "searched": bool(kept), "page_url": page_url,
        "statuses": list(ConsultationStatus), "status_labels": STATUS_LABELS, "zone": zone,
        "zone_short": zone_names([], zone), "can_create": can_create_consultation(who),
        "may_join": {v.consultation.id: can_join_consultation(who, v.scope) for v in (found.items if found else [])},
    }, status=422 if errors else 200)


@routes.get("/consultations/new", name="consultation_new")
async def consultation_new(request: web.Request) -> web.Response:
    patient = parse_id(request.query.get("patient_id"))
    return await _form_page(request, {"patient_id": str(patient) if patient else "", "participant_ids": [],
                                      "invite": "yes"})


@routes.post("/consultations/new")
async def consultation_create(request: web.Request) -> web.Response:
    """Set up the consultation; with "invite the patient" ticked, create their link too and show it."""
    who = caller(request).principal
    raw = await read_form(request)
    form: dict[str, Any] = {k: raw.get(k, "").strip() for k in FIELDS}
    form["participant_ids"] = [str(v) for v in (await request.post()).getall("participant_ids", [])]
    form["invite"] = raw.get("invite", "")
    gettext = translator(request)
    try:
        async with request.app[DATABASE].session() as session:
            hospital_zone = (await choices.for_new_consultation(session, who)).hospital.timezone
        values = {**form, "planned_start": on_clock(form["planned_start"], hospital_zone)}
        body = parse_form(values, NewConsultation)
        async with request.app[DATABASE].session() as session:
            created = await consultations.create(session, who, body, locale=locale_for(request),
                                                 how=How.verbal(request, who.user_id))
    except TelemedError as exc:
        return await _form_page(request, form, errors=field_errors(exc, gettext), error=summary(exc, gettext),
                                status=exc.status)
    if form["invite"] and body.patient_id is not None:
        async with request.app[DATABASE].session() as session:
            await invitations.create(session, who, created.id, settings=request.app[SETTINGS], keys=request.app[KEYS])
        raise web.HTTPSeeOther(f"/consultations/{created.id}/invitations")
    raise web.HTTPSeeOther("/")


def _message(request: web.Request, view: consultations.ConsultationView, link: invitations.Shareable,
             url: str) -> str:
    gettext = translator(request)
    values = {"inviter": link.inviter.display_name, "hospital": link.inviter_hospital.name,
              "title": view.title or gettext(N_("Consultation #%(number)s")) % {"number": view.consultation.id},
              "url": url,
              "when": for_patient(view.consultation.planned_start, view.hospital.timezone, locale_for(request))}
    if view.patient is None:
        return gettext(MESSAGE_NO_NAME) % values
    return gettext(MESSAGE) % {**values, "patient": view.patient.name}


@routes.get("/consultations/{consultation_id}/invitations", name="invitations")
async def invitation_page(request: web.Request) -> web.Response:
    """The consultation's working invitation links, each with a copy button, its QR code and a message; and
    the links locked by wrong answers to the patient's identity check, for which a new one is needed."""
    who = caller(request).principal
    consultation_id = path_id(request, "consultation_id")
    async with request.app[DATABASE].session() as session:
        view = await consultations.visible(session, who, consultation_id, can_join_consultation)
        links = await invitations.shareable(session, who, consultation_id, settings=request.app[SETTINGS],
                                            keys=request.app[KEYS]) if view.consultation.patient_id else []
        locked = await invitations.locked_for(session, who, consultation_id) if view.consultation.patient_id else []
        zone = await page_zone(request, session)
    shown = []
    for link in links:
        url = str(request.url.with_path(f"/visit/{link.token}").with_query(None))
        shown.append({"id": link.invitation.id, "url": url, "qr": svg_data_uri(url), "inviter": link.inviter,
                      "created_at": link.invitation.created_at, "expires_at": link.invitation.expires_at,
                      "message": _message(request, view, link, url)})
    return request.app[RENDERER].render(request, "invitations.html", {
        "view": view, "links": shown, "locked": locked, "status_labels": STATUS_LABELS, "zone": zone,
        "has_patient": view.consultation.patient_id is not None})


@routes.post("/consultations/{consultation_id}/invitations")
async def invite(request: web.Request) -> web.Response:
    """A new link for the consultation's patient (an earlier one keeps working until withdrawn)."""
    consultation_id = path_id(request, "consultation_id")
    async with request.app[DATABASE].session() as session:
        invitation, _ = await invitations.create(session, caller(request).principal, consultation_id,
                                                 settings=request.app[SETTINGS], keys=request.app[KEYS])
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}/invitations#invitation-{invitation.id}")


@routes.post("/consultations/{consultation_id}/invitations/{invitation_id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Withdraw a link at once; a patient in the room by it leaves."""
    consultation_id = path_id(request, "consultation_id")
    async with request.app[DATABASE].session() as session:
        await invitations.revoke(session, caller(request).principal, path_id(request, "invitation_id"),
                                 request.app[ROOMS])
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}/invitations")
