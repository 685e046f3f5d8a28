"""FHIR R4 exports, one function per resource: each checks that the caller may see what it covers (a
referral's patient data leaves only where ``referrals.load_with_records`` allows it, a consultation's
through ``consultations.service.visible``), audits the export and returns the resource as JSON.

``origin`` is this server's own address, for the links a resource carries (the video room, the consent
texts)."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from yarl import URL

from ..audit import trail as audit
from ..consultations import service as consultations
from ..db import Database
from ..errors import N_, NotFound
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
from ..permissions import Principal, can_view_consultation
from ..referrals import service as referrals
from . import resources as fhir


async def _exported(database: Database, who: Principal, resource: dict[str, Any]) -> dict[str, Any]:
    """Every export is in the audit trail, naming the resource that left."""
    await audit.record(database, actor=f"user:{who.user_id}", action="fhir.exported",
                       subject=f"{resource['resourceType']}/{resource['id']}")
    return resource


async def _referral_record(session: AsyncSession, who: Principal, referral_id: int) -> fhir.ReferralRecord:
    """The referral with what its resources name, if the caller sees its patient's records (else 403/404)."""
    referral = await referrals.load_with_records(session, who, referral_id)
    patient = await session.get(Patient, referral.patient_id)
    specialty = await session.get(Specialty, referral.specialty_id)
    referrer = await session.get(User, referral.referring_doctor_id)
    target = await session.get(Hospital, referral.target_hospital_id)
    specialist = await session.get(User, referral.target_specialist_id) if referral.target_specialist_id else None
    assert patient and specialty and referrer and target
    return fhir.ReferralRecord(referral, patient, specialty, referrer, target, specialist)


async def service_request(database: Database, who: Principal, referral_id: int) -> dict[str, Any]:
    """The referral as a FHIR R4 ServiceRequest."""
    async with database.session() as session:
        record = await _referral_record(session, who, referral_id)
    return await _exported(database, who, fhir.service_request(record))


async def appointment(database: Database, who: Principal, referral_id: int, *, origin: URL) -> dict[str, Any]:
    """The referral's latest appointment as a FHIR R4 Appointment, with the video room's details."""
    async with database.session() as session:
        record = await _referral_record(session, who, referral_id)
        row = (await session.exec(select(Appointment).where(Appointment.referral_id == record.referral.id)
                                  .order_by(col(Appointment.id).desc()))).first()
        specialist = await session.get(User, row.specialist_id) if row else None
    if row is None or specialist is None:
        raise NotFound(N_("This referral has no appointment."))
    room = str(origin.with_path(f"/consultations/{row.consultation_id}"))
    return await _exported(database, who, fhir.appointment(row, record, specialist, room))


async def consent(database: Database, who: Principal, consent_id: int, *, origin: URL) -> dict[str, Any]:
    """A consent as a FHIR R4 Consent, for those who may see what it covers: the referral's records, or
    the consultation."""
    async with database.session() as session:
        row = await session.get(Consent, consent_id)
        if row is None:
            raise NotFound(N_("There is no such consent."))
        if row.referral_id is not None:
            await referrals.load_with_records(session, who, row.referral_id)
        elif row.consultation_id is not None:
            await consultations.visible(session, who, row.consultation_id, can_view_consultation)
        template = await session.get(ConsentTemplate, row.template_id)
        patient = await session.get(Patient, row.patient_id) if row.patient_id else None
        recorder = await session.get(User, row.recorded_by) if row.recorded_by else None
    assert template is not None
    text = str(origin.with_path("/api/consent-templates"))
    return await _exported(database, who, fhir.consent(row, template, patient, recorder, text))


async def encounter(database: Database, who: Principal, consultation_id: int) -> dict[str, Any]:
    """The consultation as a FHIR R4 Encounter of class virtual (finished once its referral is completed)."""
    async with database.session() as session:
        view = await consultations.visible(session, who, consultation_id, can_view_consultation)
        users = (await session.exec(select(User).join(ConsultationParticipant).where(
            ConsultationParticipant.consultation_id == consultation_id).order_by(col(User.id)))).all()
        referral = (await session.exec(select(Referral).where(Referral.consultation_id == consultation_id))).first()
        events = (await session.exec(select(ReferralEvent).where(
            ReferralEvent.referral_id == referral.id))).all() if referral else []
    started = next((e.at for e in events if e.action == "start"), None)
    ended = next((e.at for e in events if e.action in ("complete", "cancel")), None)
    # without the patient's consent to sharing, the receiving side's export names no patient and no reason
    return await _exported(database, who, fhir.encounter(view.consultation, view.hospital, view.patient, list(users),
                                                         None if view.withheld else referral, started, ended,
                                                         title=view.title))
