"""REST: consent texts, a patient's verbal consent recorded by their doctor, consents of a consultation,
and withdrawal (which takes effect at once)."""

from __future__ import annotations

import pydantic
from aiohttp import web
from sqlmodel import col, select

from ..appkeys import DATABASE, ROOMS
from ..consent import records as consents
from ..consent import templates as consent_templates
from ..consent.records import Consenter, How, Scope, patient_identity
from ..errors import N_, BadRequest, Conflict, NotFound
from ..http import json_response, locale_for, parse_body, path_id
from ..identity.auth import caller
from ..models import Consent, ConsentPurpose, ConsentSubject, ConsentTemplate, Referral
from ..openapi import accepts
from ..parsing import Id
from ..permissions import can_join_consultation, can_withdraw_consent, require
from .consultations import authorize, load_authorized

routes = web.RouteTableDef()


class VerbalConsent(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    purpose: ConsentPurpose
    template_id: Id | None = None  # the text read to the patient; the current one if left out


@routes.get("/api/consent-templates")
async def list_templates(request: web.Request) -> web.Response:
    """The current text of each purpose, in the caller's language (``?locale=en|zh-CN`` to choose)."""
    locale = request.query.get("locale") or locale_for(request)
    async with request.app[DATABASE].session() as session:
        texts = [await consent_templates.current(session, purpose, locale) for purpose in ConsentPurpose]
    return json_response({"templates": [consent_templates.describe(t) for t in texts]})


@routes.get("/api/consultations/{consultation_id}/consents")
async def consultation_consents(request: web.Request) -> web.Response:
    """Every consent given in this consultation, standing or withdrawn, for its participants."""
    view = await load_authorized(request, can_join_consultation)
    async with request.app[DATABASE].session() as session:
        rows = (await session.exec(select(Consent, ConsentTemplate).join(ConsentTemplate).where(
            Consent.consultation_id == view.consultation.id).order_by(col(Consent.id)))).all()
    return json_response({"consents": [consents.describe(c, t) for c, t in rows]})


@routes.post("/api/consultations/{consultation_id}/consents")
@accepts(VerbalConsent)
async def record_verbal_consent(request: web.Request) -> web.Response:
    """A participating clinician records the patient's verbal consent (the patient is with them, without a
    device of their own), for the video visit or for recording. The clinician is named on the record."""
    view = await load_authorized(request, can_join_consultation)
    body = await parse_body(request, VerbalConsent)
    if view.patient is None or view.patient.id is None:
        raise Conflict(N_("This consultation has no patient to consent."), code="no-patient")
    if body.purpose is ConsentPurpose.RECORD_SHARING:
        raise BadRequest(N_("Consent to sharing records is recorded on the referral."), code="wrong-scope")
    user = caller(request).user
    assert user.id is not None
    async with request.app[DATABASE].session() as session:
        template = await consent_templates.offered(session, body.purpose, body.template_id,
                                                   locale_for(request))
    patient = view.patient
    consent = await consents.give(
        request.app[DATABASE], request.app[ROOMS], template,
        Consenter(ConsentSubject.PATIENT, patient_identity(patient.id), patient.name, patient_id=patient.id),
        Scope(consultation_id=view.consultation.id), How.verbal(request, user.id))
    return json_response(consents.describe(consent, template), status=201)


@routes.post("/api/consents/{consent_id}/withdraw")
async def withdraw_consent(request: web.Request) -> web.Response:
    """Withdraw a consent now. Clinicians withdraw their own; a patient's is withdrawn on their word by the
    referring doctor (record sharing) or by a participating clinician (video, recording)."""
    user = caller(request).user
    async with request.app[DATABASE].session() as session:
        consent = await session.get(Consent, path_id(request, "consent_id"))
        if consent is None:
            raise NotFound(N_("There is no such consent."))
        referral = await session.get(Referral, consent.referral_id) if consent.referral_id else None
    participant = consent.user_id if consent.subject is ConsentSubject.PARTICIPANT else None
    if participant is None and referral is None:
        assert consent.consultation_id is not None
        await authorize(request, consent.consultation_id, can_join_consultation)  # 403 if not
    require(can_withdraw_consent(caller(request).principal, participant_consent_of=participant,
                                 referring_doctor_id=referral.referring_doctor_id if referral else None,
                                 in_consultation=True),
            N_("Only the person who consented, or the doctor recording their word, withdraws it."))
    assert consent.id is not None
    withdrawn = await consents.withdraw(request.app[DATABASE], request.app[ROOMS], consent.id, f"user:{user.id}")
    return json_response(consents.describe(withdrawn))

