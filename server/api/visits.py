"""REST: clinicians invite the consultation's patient by link; the patient, with the link as credential,
confirms who they are, then reads and gives consents and trades the link for a room token once the video
consent stands. Every guest route but the identity check itself asks for its proof (``identity`` in the
body, or the cookie the check set)."""

from __future__ import annotations

import pydantic
from aiohttp import web

from signaling.messages import DeviceCheck

from .. import idempotency
from ..appkeys import DATABASE, KEYS, ROOMS, SETTINGS
from ..consent import records as consents
from ..consent.records import How, Scope
from ..errors import N_, Conflict
from ..http import answer_once, json_response, locale_for, parse_body, path_id
from ..identity.auth import caller, public
from ..models import Consent, ConsentPurpose, PatientInvitation
from ..openapi import accepts, answers, idempotent
from ..patients import identity_check, invitations
from ..patients.identity_check import IdentityAnswer, IdentityConfirmed
from ..patients.invitations import Visit, consents_asked, open_visit, scope_of
from .consents import given_answer, withdrawn_answer
from .consultations import consultation_id
from .rooms import RoomToken, token_answer

routes = web.RouteTableDef()


IDENTITY_FIELD = pydantic.Field(
    default=None, max_length=4096,
    description="the proof `POST /api/guest/identity` answered; a browser may leave it to the cookie set then")


class GuestRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    guest: str = pydantic.Field(min_length=1, max_length=4096, description="the invitation link's token")
    identity: str | None = IDENTITY_FIELD


class GuestIdentityRequest(IdentityAnswer):
    guest: str = pydantic.Field(min_length=1, max_length=4096, description="the invitation link's token")


class GuestRoomRequest(GuestRequest):
    device_check: DeviceCheck | None = pydantic.Field(
        default=None, description="what the device check found; shown to the doctor who admits the patient")


class GuestConsentRequest(GuestRequest):
    purpose: ConsentPurpose
    given: pydantic.StrictBool
    template_id: int | None = None  # the text shown; the current one if left out


@routes.post("/api/consultations/{consultation_id}/invitations")
@answers(invitations.InvitationCreated, status=201)
@idempotent
async def create_invitation(request: web.Request) -> web.Response:
    """A participating clinician invites the consultation's patient: a link that expires when the room
    closes and that they can revoke (one per ``Idempotency-Key``)."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        return await answer_once(
            request, idempotency.of_user(who.user_id), None, _invited,
            lambda reply: invitations.create(session, who, consultation_id(request), settings=request.app[SETTINGS],
                                             keys=request.app[KEYS], reply=reply))


async def _invited(made: tuple[PatientInvitation, str]) -> idempotency.Answer:
    invitation, token = made
    created = invitations.InvitationCreated(**dict(invitations.shown(invitation)), url=f"/visit/{token}")
    return idempotency.Answer.of(201, created.model_dump(mode="json"))


@routes.get("/api/consultations/{consultation_id}/invitations")
@answers(invitations.InvitationList)
async def list_invitations(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        rows = await invitations.list_for(session, caller(request).principal, consultation_id(request))
    return json_response(invitations.InvitationList(invitations=[invitations.shown(row) for row in rows]))


@routes.delete("/api/invitations/{invitation_id}")
@answers(invitations.InvitationShown)
async def revoke_invitation(request: web.Request) -> web.Response:
    """Revoke a link at once: it opens nothing more, and a patient in the room by it leaves."""
    async with request.app[DATABASE].session() as session:
        invitation = await invitations.revoke(session, caller(request).principal, path_id(request, "invitation_id"),
                                              request.app[ROOMS])
    return json_response(invitations.shown(invitation))


async def link_visit(request: web.Request, token: str) -> Visit:
    """The visit an invitation link opens, if it is valid, unrevoked, unlocked and its consultation still open."""
    settings = request.app[SETTINGS]
    async with request.app[DATABASE].session() as session:
        return await open_visit(session, request.app[KEYS], settings.jwt_issuer, token)


async def guest_pass(request: web.Request, token: str, identity: str | None) -> Visit:
    """The link's visit, for a holder who has confirmed who they are (403 ``identity-required`` if not):
    ``identity`` is the proof sent in the body, else the browser's cookie is asked."""
    visit = await link_visit(request, token)
    identity_check.require(request.app[KEYS], request.app[SETTINGS].jwt_issuer, visit,
                           identity_check.proof_from(request, visit.invitation_id, identity))
    return visit


async def visit_scope(request: web.Request, visit: Visit, purpose: ConsentPurpose) -> Scope:
    async with request.app[DATABASE].session() as session:
        return await scope_of(session, visit, purpose)


@routes.post("/api/guest/identity")
@answers(IdentityConfirmed)
@public
@accepts(GuestIdentityRequest)
async def guest_identity(request: web.Request) -> web.Response:
    """The patient confirms who they are: their full name and the last four characters of their national ID
    (empty if they have none). Right: the proof (``identity``), also kept in a cookie for this invitation.
    Wrong: 401 ``identity-mismatch`` with ``attempts_left``; too many wrong answers lock the link (401
    ``link-locked``)."""
    body = await parse_body(request, GuestIdentityRequest)
    visit = await link_visit(request, body.guest)
    async with request.app[DATABASE].session() as session:
        confirmed = await identity_check.confirm(session, visit, body, settings=request.app[SETTINGS],
                                                 keys=request.app[KEYS])
    response = json_response(confirmed.shown().model_dump(mode="json"))
    identity_check.remember(response, confirmed, request.app[SETTINGS])
    return response


@routes.post("/api/guest/consents/list")
@answers(invitations.ConsentsAsked)
@public
@accepts(GuestRequest)
async def guest_consents(request: web.Request) -> web.Response:
    """The texts a patient is asked to consent to, one per purpose, and where each answer stands.
    (POST, so the link's token travels in the body, not in a URL that proxies log.)"""
    body = await parse_body(request, GuestRequest)
    visit = await guest_pass(request, body.guest, body.identity)
    async with request.app[DATABASE].session() as session:
        return json_response(invitations.ConsentsAsked(consents=await consents_asked(session, visit,
                                                                                      locale_for(request))))


@routes.post("/api/guest/consents")
@answers(consents.ConsentShown, status=201, description="The consent, given.")
@answers(consents.ConsentShown, description="The consent, withdrawn.")
@public
@accepts(GuestConsentRequest)
@idempotent
async def guest_consent(request: web.Request) -> web.Response:
    """The patient gives or withdraws one consent, for one purpose, by clicking (once per
    ``Idempotency-Key``)."""
    body = await parse_body(request, GuestConsentRequest)
    visit = await guest_pass(request, body.guest, body.identity)
    scope = await visit_scope(request, visit, body.purpose)
    database, rooms, owner = request.app[DATABASE], request.app[ROOMS], idempotency.of_invitation(visit.invitation_id)
    if body.given:
        return await answer_once(
            request, owner, body, given_answer,
            lambda reply: consents.give_clicked(database, rooms, body.purpose, visit.consenter, scope,
                                                body.template_id, locale=locale_for(request),
                                                how=How.clicked(request), reply=reply))

    async def withdraw(reply: idempotency.Reply[Consent]) -> Consent:
        withdrawn = await consents.withdraw_own(database, rooms, body.purpose, visit.consenter, scope, reply=reply)
        if withdrawn is None:
            raise Conflict(N_("There is no consent of yours for this to withdraw."), code="no-consent")
        return withdrawn
    return await answer_once(request, owner, body, withdrawn_answer, withdraw)


@routes.post("/api/guest/room-token")
@answers(RoomToken)
@public
@accepts(GuestRoomRequest)
async def guest_room_token(request: web.Request) -> web.Response:
    """The patient's pass into the waiting room: only with the video consent standing, and only while the
    room is open. The device check's findings, if any, travel with it to the doctor's lobby list."""
    body = await parse_body(request, GuestRoomRequest)
    visit = await guest_pass(request, body.guest, body.identity)
    async with request.app[DATABASE].session() as session:
        claims = await invitations.room_claims(session, visit, body.device_check, settings=request.app[SETTINGS])
    return token_answer(request, claims)

