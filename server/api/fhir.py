"""REST: FHIR R4 exports of a referral, its appointment, a consent and a consultation. Each export is
audited; a referral's patient data leaves only where the caller may see it (the receiving side only
while the patient's consent to sharing stands)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import col, select

from ..appkeys import DATABASE
from ..audit import trail as audit
from ..errors import N_, NotFound
from ..fhir import resources as fhir
from ..http import json_response, path_id
from ..identity.auth import caller
from ..models import (
    Appointment,
    Consent,
    ConsentTemplate,
    ConsultationParticipant,
    Hospital,
    Patient,
    Referral,
    ReferralEvent,
    Specialty,
    User,
)
from ..permissions import can_view_consultation
from ..referrals import service as referrals
from .consultations import authorize, load_authorized
from .referrals import referral_id

routes = web.RouteTableDef()
FHIR_JSON = "application/fhir+json"


async def _answer(request: web.Request, resource: dict[str, Any]) -> web.Response:
    await audit.record(request.app[DATABASE], actor=f"user:{caller(request).user.id}", action="fhir.exported",
                       subject=f"{resource['resourceType']}/{resource['id']}")
    response = json_response(resource)
    response.content_type = FHIR_JSON
    return response


async def _referral_record(request: web.Request, number: int) -> tuple[fhir.ReferralRecord, Referral]:
    async with request.app[DATABASE].session() as session:
        referral = await referrals.load_with_records(session, caller(request).principal, number)
        patient = await session.get(Patient, referral.patient_id)
        specialty = await session.get(Specialty, referral.specialty_id)
        referrer = await session.get(User, referral.referring_doctor_id)
        target = await session.get(Hospital, referral.target_hospital_id)
        specialist = await session.get(User, referral.target_specialist_id) if referral.target_specialist_id else None
    assert patient and specialty and referrer and target
    return fhir.ReferralRecord(referral, patient, specialty, referrer, target, specialist), referral


@routes.get("/api/referrals/{referral_id}/fhir")
async def referral_service_request(request: web.Request) -> web.Response:
    """The referral as a FHIR R4 ServiceRequest."""
    record, _ = await _referral_record(request, referral_id(request))
    return await _answer(request, fhir.service_request(record))


@routes.get("/api/referrals/{referral_id}/appointment/fhir")
async def referral_appointment(request: web.Request) -> web.Response:
    """The referral's latest appointment as a FHIR R4 Appointment, with the video room's details."""
    record, referral = await _referral_record(request, referral_id(request))
    async with request.app[DATABASE].session() as session:
        row = (await session.exec(select(Appointment).where(Appointment.referral_id == referral.id)
                                  .order_by(col(Appointment.id).desc()))).first()
        specialist = await session.get(User, row.specialist_id) if row else None
    if row is None or specialist is None:
        raise NotFound(N_("This referral has no appointment."))
    room = str(request.url.with_path(f"/consultations/{row.consultation_id}").with_query(None))
    return await _answer(request, fhir.appointment(row, record, specialist, room))


@routes.get("/api/consents/{consent_id}/fhir")
async def consent_resource(request: web.Request) -> web.Response:
    """A consent as a FHIR R4 Consent, for those who may see what it covers."""
    async with request.app[DATABASE].session() as session:
        row = await session.get(Consent, path_id(request, "consent_id"))
    if row is None:
        raise NotFound(N_("There is no such consent."))
    if row.referral_id is not None:
        await _referral_record(request, row.referral_id)  # 403 unless the caller sees the referral's records
    elif row.consultation_id is not None:
        await authorize(request, row.consultation_id, can_view_consultation)
    async with request.app[DATABASE].session() as session:
        template = await session.get(ConsentTemplate, row.template_id)
        patient = await session.get(Patient, row.patient_id) if row.patient_id else None
        recorder = await session.get(User, row.recorded_by) if row.recorded_by else None
    assert template is not None
    text = str(request.url.with_path("/api/consent-templates").with_query(None))
    return await _answer(request, fhir.consent(row, template, patient, recorder, text))


@routes.get("/api/consultations/{consultation_id}/fhir")
async def consultation_encounter(request: web.Request) -> web.Response:
    """The consultation as a FHIR R4 Encounter of class virtual (finished once its referral is completed)."""
    view = await load_authorized(request, can_view_consultation)
    async with request.app[DATABASE].session() as session:
        users = (await session.exec(select(User).join(ConsultationParticipant).where(
            ConsultationParticipant.consultation_id == view.consultation.id).order_by(col(User.id)))).all()
        referral = (await session.exec(select(Referral).where(
            Referral.consultation_id == view.consultation.id))).first()
        events = (await session.exec(select(ReferralEvent).where(
            ReferralEvent.referral_id == referral.id))).all() if referral else []
    started = next((e.at for e in events if e.action == "start"), None)
    ended = next((e.at for e in events if e.action in ("complete", "cancel")), None)
    # without the patient's consent to sharing, the receiving side's export names no patient and no reason
    return await _answer(request, fhir.encounter(view.consultation, view.hospital, view.patient, list(users),
                                                 None if view.withheld else referral, started, ended,
                                                 title=view.title))
