"""The patient's way in, by invitation link and with no account: who they are, consent, device check,
waiting room.

Each step is its own page, and each refuses to be skipped: until the patient has confirmed who they are
in this browser (server/patients/identity_check.py keeps the proof in a cookie) every later step sends
them to the identity page; the device check and the room send them back to the consent page until the
video consent stands. The link, with that proof, is the credential throughout.
"""

from __future__ import annotations

from aiohttp import web

from server.appkeys import DATABASE, KEYS, ROOMS, SETTINGS
from server.consent import records as consents
from server.consent.records import How
from server.errors import N_, NC_, TelemedError, Unauthenticated
from server.http import locale_for, parse_form, read_form, translator
from server.identity.auth import public
from server.models import ConsentPurpose
from server.parsing import parse_id
from server.patients import identity_check, invitations
from server.patients.identity_check import IdentityAnswer
from server.patients.invitations import Visit

from .forms import field_errors
from .render import RENDERER
from .room_pages import render_room

routes = web.RouteTableDef()

PURPOSE_LABELS = {
    ConsentPurpose.VIDEO: N_("Video consultation"),
    ConsentPurpose.RECORDING: NC_("consent purpose", "Recording"),  # its heading, not the room's "recording now"
    ConsentPurpose.RECORD_SHARING: N_("Sharing your records with the partner hospital"),
}


async def _visit(request: web.Request) -> Visit:
    """The link's visit; else the answer is a page explaining what is wrong with the link (a patient has
    no login to be sent to)."""
    try:
        async with request.app[DATABASE].session() as session:
            return await invitations.open_visit(session, request.app[KEYS], request.app[SETTINGS].jwt_issuer,
                                                request.match_info["token"])
    except Unauthenticated as exc:
        message = exc.message if exc.code in ("link-closed", "link-revoked", "link-locked") else N_(
            "This link is not valid or has expired. Please ask the doctor for a new one.")
        page = request.app[RENDERER].error_page(request, Unauthenticated(message, code=exc.code))
        raise web.HTTPUnauthorized(text=page.text, headers=page.headers) from None


def _confirmed(request: web.Request, visit: Visit) -> bool:
    """Whether this browser has confirmed who the patient is, for this invitation."""
    try:
        identity_check.require(request.app[KEYS], request.app[SETTINGS].jwt_issuer, visit,
                               identity_check.proof_from(request, visit.invitation_id))
    except TelemedError:
        return False
    return True


async def _confirmed_visit(request: web.Request) -> Visit:
    """The visit, for the steps after the identity check: to the identity page until this browser passed it."""
    visit = await _visit(request)
    if not _confirmed(request, visit):
        raise web.HTTPSeeOther(f"/visit/{request.match_info['token']}/identity")
    return visit


async def _consented_visit(request: web.Request) -> Visit:
    """The visit, for the steps after consent: back to the consent page until the video consent stands."""
    visit = await _confirmed_visit(request)
    async with request.app[DATABASE].session() as session:
        found = await consents.standing(session, ConsentPurpose.VIDEO, identity=visit.identity,
                                        consultation_id=visit.consultation.id)
    if found is None:
        raise web.HTTPSeeOther(f"/visit/{request.match_info['token']}")
    return visit


def _identity_page(request: web.Request, visit: Visit, *, form: dict[str, str] | None = None,
                   error: TelemedError | None = None) -> web.Response:
    gettext = translator(request)
    # Nothing of the visit (its title is often clinical) before the holder of the link has said who they are.
    context = {"token": request.match_info["token"], "form": form or {},
               "errors": field_errors(error, gettext) if error else {}, "wrong": None}
    if error is not None and error.code == "identity-mismatch":
        context["wrong"] = error.details["attempts_left"]
    return request.app[RENDERER].render(request, "visit_identity.html", context,
                                        status=error.status if error else 200)


@routes.get("/visit/{token}/identity")
@public
async def identity_page(request: web.Request) -> web.Response:
    """Step 1: the patient's full name and the last four characters of their national ID, before anything
    of the visit is shown; straight on to consent if this browser has already answered."""
    visit = await _visit(request)
    if _confirmed(request, visit):
        raise web.HTTPSeeOther(f"/visit/{request.match_info['token']}")
    return _identity_page(request, visit)


@routes.post("/visit/{token}/identity")
@public
async def identity_answer(request: web.Request) -> web.Response:
    """The answer, as ``POST /api/guest/identity`` takes it: right, on to consent with the proof kept in a
    cookie; wrong, the page again saying how many tries remain; the last wrong one, the locked link's page."""
    visit = await _visit(request)
    token = request.match_info["token"]
    form = await read_form(request)
    shown = {k: form.get(k, "") for k in ("name", "id_last4")}
    try:
        answer = parse_form(shown, IdentityAnswer)
        async with request.app[DATABASE].session() as session:
            confirmed = await identity_check.confirm(session, visit, answer, settings=request.app[SETTINGS],
                                                     keys=request.app[KEYS])
    except Unauthenticated as exc:
        if exc.code == "link-locked":
            return request.app[RENDERER].error_page(request, exc)
        return _identity_page(request, visit, form={"name": shown["name"]}, error=exc)
    except TelemedError as exc:
        return _identity_page(request, visit, form=shown, error=exc)
    response = web.Response(status=303, headers={"Location": f"/visit/{token}"})
    identity_check.remember(response, confirmed, request.app[SETTINGS])
    return response


@routes.get("/visit/{token}", name="visit")
@public
async def consent_page(request: web.Request) -> web.Response:
    """Step 2: each purpose on its own, with its full text, agreed or declined separately."""
    visit = await _confirmed_visit(request)
    async with request.app[DATABASE].session() as session:
        items = [asked.model_dump(mode="json")
                 for asked in await invitations.consents_asked(session, visit, locale_for(request))]
    context = {"title": visit.consultation.title, "patient": visit.name, "items": items,
               "labels": PURPOSE_LABELS, "token": request.match_info["token"],
               "error": request.query.get("error"),
               "video_given": any(i["purpose"] == "video" and i["consent"] for i in items)}
    return request.app[RENDERER].render(request, "visit_consent.html", context)


@routes.post("/visit/{token}/consent")
@public
async def consent_answer(request: web.Request) -> web.Response:
    """One answer, for one purpose: agree, or withdraw an earlier agreement. Back to the consent page."""
    visit = await _confirmed_visit(request)
    token = request.match_info["token"]
    form = await read_form(request)
    template_id = parse_id(form.get("template_id"))  # ASCII digits naming a possible row, else None
    try:
        purpose = ConsentPurpose(form.get("purpose", ""))
    except ValueError:
        purpose = None
    if purpose is None or template_id is None:
        raise web.HTTPSeeOther(f"/visit/{token}?error=bad-answer")
    try:
        async with request.app[DATABASE].session() as session:
            scope = await invitations.scope_of(session, visit, purpose)
        database, rooms = request.app[DATABASE], request.app[ROOMS]
        if form.get("answer") == "agree":
            await consents.give_clicked(database, rooms, purpose, visit.consenter, scope, template_id,
                                        locale=locale_for(request), how=How.clicked(request))
        elif await consents.withdraw_own(database, rooms, purpose, visit.consenter, scope) is None:
            raise web.HTTPSeeOther(f"/visit/{token}?error=no-consent")
    except TelemedError as exc:
        raise web.HTTPSeeOther(f"/visit/{token}?error={exc.code}") from None
    raise web.HTTPSeeOther(f"/visit/{token}#{purpose.value}")


@routes.get("/visit/{token}/check")
@public
async def device_check(request: web.Request) -> web.Response:
    """Step 3: camera, microphone, speaker and the round trip to the server, checked in the browser."""
    visit = await _consented_visit(request)
    token = request.match_info["token"]
    return request.app[RENDERER].render(request, "visit_check.html", {
        "title": visit.consultation.title, "token": token, "room_url": f"/visit/{token}/room"})


@routes.get("/visit/{token}/room")
@public
async def waiting_room(request: web.Request) -> web.Response:
    """Step 4: the room, where the patient waits in the lobby until a doctor admits them."""
    visit = await _consented_visit(request)
    token = request.match_info["token"]
    config = {
        "consultationId": visit.consultation.id,
        "roomTokenUrl": "/api/guest/room-token",
        "consentUrl": "/api/guest/recording-consent",
        "guest": token,
    }
    # A patient sees the consultation's title and nothing of the record; times on their browser's clock.
    return await render_room(request, {"title": visit.consultation.title, "subtitle": None, "patient": None,
                                       "config": config},
                             consultation=visit.consultation, reader_hospital_id=visit.patient.hospital_id,
                             patient=True)
