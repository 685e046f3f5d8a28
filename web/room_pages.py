"""A clinician's consultation room: the call, and beside it the referral the consultation was booked for (its
report signed from there), or for a consultation set up without one, the patient's consent to sharing their
record with the other hospitals taking part, which their own doctor records or withdraws on their word. The
patient's room (``visit_pages``) is rendered by the same ``render_room``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import zones
from server.appkeys import DATABASE, REPORTS, ROOMS, SETTINGS
from server.consent import records as consents
from server.consent import templates as consent_templates
from server.consent.rules import How
from server.consultations import service as consultations
from server.consultations.room_window import RoomWindow
from server.errors import N_, NotFound, TelemedError
from server.http import locale_for, parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.models import ConsentPurpose, Consultation, utcnow
from server.patients import invitations
from server.permissions import awaits_licence, can_join_consultation, can_speak_for_patient
from server.referrals import attachments, views
from server.referrals import service as referrals
from server.reports import service as reports
from server.reports.inputs import ReportInput

from .clock import zoned
from .forms import field_errors, refusal_text, summary
from .referral_pages import URGENCY_LABELS
from .render import RENDERER
from .room_texts import api_errors, signaling_errors

routes = web.RouteTableDef()


@routes.get("/consultations/{consultation_id}", name="consultation")
async def consultation_room(request: web.Request) -> web.Response:
    return await _room(request, path_id(request, "consultation_id"))


@routes.post("/consultations/{consultation_id}/report")
async def room_report(request: web.Request) -> web.Response:
    """The booked specialist signs the consultation report from the room, which completes the referral: the
    referral page's report form, through the same model and service (``reports.service.sign``), back to the
    room."""
    who = caller(request).principal
    consultation_id = path_id(request, "consultation_id")
    form = await read_form(request)
    values = {k: form.get(k, "").strip() for k in ("findings", "diagnosis_code", "recommendations")}
    try:
        body = parse_form(values, ReportInput)
        async with request.app[DATABASE].session() as session:
            # only a consultation the caller is in, and only the referral it was booked for
            await consultations.visible(session, who, consultation_id, can_join_consultation)
            found = await referrals.booked_for(session, who, consultation_id)
            if found is None:
                raise NotFound(N_("This consultation was not booked for a referral you can see."))
            referral, _ = found
            assert referral.id is not None
            await reports.sign(session, who, referral.id, body, tools=request.app[REPORTS])
    except TelemedError as exc:
        # each field's refusal beside it, in the reader's words, as on the referral page
        gettext = translator(request)
        return await _room(request, consultation_id, status=exc.status, report_form={
            **values, "error": summary(exc, gettext), "errors": field_errors(exc, gettext)})
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}#referral-panel")


@routes.post("/consultations/{consultation_id}/sharing-consent")
async def record_sharing(request: web.Request) -> web.Response:
    """The patient's doctor records, on the patient's word, their consent to sharing their record with the other
    hospitals taking part, to the text shown beside the button (the API's ``VerbalConsent``, ``record_verbal``)."""
    who = caller(request).principal
    consultation_id = path_id(request, "consultation_id")
    form = await read_form(request)
    try:
        body = parse_form({"purpose": ConsentPurpose.RECORD_SHARING.value, "template_id": form.get("template_id")},
                          consents.VerbalConsent)
        await consents.record_verbal(request.app[DATABASE], request.app[ROOMS], who, consultation_id, body,
                                     locale=locale_for(request), how=How.verbal(request, who.user_id))
    except TelemedError as exc:
        return await _room(request, consultation_id, status=exc.status,
                           sharing_error=refusal_text(exc, translator(request)))
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}#sharing-consent")


@routes.post("/consultations/{consultation_id}/sharing-consent/withdraw")
async def withdraw_sharing(request: web.Request) -> web.Response:
    """The patient's doctor records, on the patient's word, that they withdraw their consent to sharing
    (``withdraw_sharing_in``); 409 if it was withdrawn meanwhile (a page left open)."""
    consultation_id = path_id(request, "consultation_id")
    try:
        await consents.withdraw_sharing_in(request.app[DATABASE], request.app[ROOMS], caller(request).principal,
                                           consultation_id)
    except TelemedError as exc:
        return await _room(request, consultation_id, status=exc.status,
                           sharing_error=refusal_text(exc, translator(request)))
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}#sharing-consent")


async def _room(request: web.Request, consultation_id: int, *, report_form: dict[str, str] | None = None,
                sharing_error: str | None = None, status: int = 200) -> web.Response:
    """A clinician's room: the call, and beside it the referral the consultation was booked for."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        view = await consultations.visible(session, who, consultation_id, can_join_consultation)
    beside_patient = view.patient is not None and can_speak_for_patient(who, view.patient.hospital_id)
    config = {
        "consultationId": view.consultation.id,
        "roomTokenUrl": f"/api/consultations/{view.consultation.id}/room-token",
        "invitationUrl": f"/api/consultations/{view.consultation.id}/invitations" if view.patient else None,
        "hasPatient": view.patient is not None,
        # the patient beside the doctor consents to recording through them
        "patientConsentUrl": f"/api/consultations/{view.consultation.id}/consents" if beside_patient else None,
        "consentUrl": f"/api/consultations/{view.consultation.id}/recording-consent",
        # (a partner the patient is withheld from may not open them: no link to a refusal)
        "recordingsUrl": None if view.withheld else f"/api/consultations/{view.consultation.id}/recordings",
    }
    title = view.title or translator(request)(N_("Consultation #%(number)s")) % {"number": view.consultation.id}
    async with request.app[DATABASE].session() as session:  # links the patient's identity check locked
        locked = len(await invitations.locked_for(session, who, consultation_id)) if view.patient else 0
        sharing = await consents.sharing_in(session, who, view, locale=locale_for(request))
    referral = await _referral_panel(request, consultation_id)
    if referral is not None and report_form is not None:
        referral["report_form"] = report_form
    return await render_room(request, {"title": title, "subtitle": view.hospital.name,
                                       "patient": view.patient.name if view.patient else None, "config": config,
                                       "referral": referral, "locked_invitations": locked,
                                       "urgency_labels": URGENCY_LABELS, "back_url": "/",
                                       "sharing": sharing, "sharing_error": sharing_error,
                                       "licence_notice": awaits_licence(who)},
                             consultation=view.consultation, reader_hospital_id=who.hospital_id, status=status)


async def _referral_panel(request: web.Request, consultation_id: int) -> dict[str, Any] | None:
    """The referral the consultation was booked for, as the caller may see it (its patient's records only
    while they may: ``views.describe`` and ``attachments.list_for`` ask ``patients/disclosure.py``), or None."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        found = await referrals.booked_for(session, who, consultation_id)
        if found is None:
            return None
        data = await views.describe(session, who, found[0], full=True)
        files = [] if data["records_withheld"] else [
            attachments.describe(row) for row in await attachments.list_for(session, who, data["id"])]
        signed = [] if data["records_withheld"] else await reports.versions(session, data["id"])
    await views.audit_patient_view(request.app[DATABASE], who, data)
    return {**data, "attachments": files, "can_write_report": data["can_sign_report"],
            "report": reports.describe(signed[-1]) if signed else None,
            "report_form": {"findings": "", "diagnosis_code": "", "recommendations": "", "error": None, "errors": {}}}


async def render_room(request: web.Request, context: dict, *, consultation: Consultation, reader_hospital_id: int,
                      status: int = 200, patient: bool = False) -> web.Response:
    """The room page: whether the room lets people in yet (and when it opens, on the clock of the reader's
    hospital, or for a ``patient`` on their browser's, the hospital's being what shows without script), the
    recording consent's current text beside its checkbox, and the signaling errors' words."""
    renderer = request.app[RENDERER]
    window = RoomWindow.of(consultation, request.app[SETTINGS])
    now = utcnow()
    async with request.app[DATABASE].session() as session:
        text = await consent_templates.current(session, ConsentPurpose.RECORDING, locale_for(request))
        zone = await zones.hospital_zone(session, reader_hospital_id, request.app[SETTINGS].default_timezone)
    state = window.state(now)
    context["config"]["recordingTemplateId"] = text.id
    # The server's clock too, so that a browser whose clock is off still counts down to the right moment.
    context["config"]["window"] = {"state": state, "opensAt": window.opens.isoformat(),
                                   "closesAt": window.closes.isoformat(), "now": now.isoformat()}
    context.setdefault("referral", None)
    context.setdefault("back_url", None)
    context.setdefault("licence_notice", False)  # a clinician's room says when they come in as a guest
    context.setdefault("sharing", None)  # the patient's consent to sharing, for their own doctor to record
    context.setdefault("sharing_error", None)
    room_window = {"state": state, "opens_at": window.opens.isoformat(), "closes_at": window.closes.isoformat(),
                   "opens": zoned(window.opens, zone), "closes": zoned(window.closes, zone), "zone": zone,
                   "in_browser_zone": patient}
    return renderer.render(request, "consultation.html", {
        **context, "recording_text": text, "window": room_window,
        "signaling_errors": signaling_errors(translator(request)), "api_errors": api_errors(translator(request))},
        status=status)
