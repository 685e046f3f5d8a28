"""The FHIR R4 API's reads, one function per resource: each asks the rules the pages ask (a referral's patient
data through ``referrals.load_with_records``, which applies ``patients/disclosure.py``; a consultation through
``consultations.service.visible``; a patient through ``patients.records.may_view``; the staff directory through
``permissions.can_see_colleague``), audits every read of a patient-related resource under the patient it
concerns, and returns the resource as JSON.

What the caller may not know exists is a 404 (``NotFound``); what the pages refuse with 403 is a 403 here too.
The older ``/api/.../fhir`` exports are these same reads, audited as ``fhir.exported``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..consultations import service as consultations
from ..consultations.service import partner_hospital_ids
from ..db import Database
from ..errors import N_, Forbidden, NotFound
from ..models import (
    Appointment,
    Consent,
    ConsentSubject,
    ConsentTemplate,
    ConsultationParticipant,
    ConsultationReport,
    Hospital,
    Patient,
    Referral,
    ReferralEvent,
    ReferralState,
    Specialty,
    User,
    utcnow,
)
from ..patients import records
from ..permissions import Principal, can_see_colleague, can_view_consultation, require
from ..referrals import service as referrals
from . import resources as fhir
from .resources import Site


@dataclass(frozen=True)
class Read:
    """A resource as the caller may see it, and whom it concerns (for the audit trail)."""

    resource: dict[str, Any]
    patient_id: int | None = None
    consultation_id: int | None = None

    @property
    def reference(self) -> str:
        return f"{self.resource['resourceType']}/{self.resource['id']}"


Loader = Callable[[AsyncSession, Principal, int, Site], Awaitable[Read]]


def _audited(session: AsyncSession, who: Principal, read: Read, *, exported: bool = False,
             also: list[str] | None = None) -> None:
    """A read of patient data is audited under the patient (``patient:<id>``, as the pages' views are); one of a
    consultation without a patient the reader may see, under the consultation. The directory is not audited
    (an export through the older /api routes always is)."""
    if read.patient_id is None and read.consultation_id is None and not exported:
        return
    subject = f"patient:{read.patient_id}" if read.patient_id is not None else read.reference
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "fhir.exported" if exported else "fhir.read",
                                           read.consultation_id, subject,
                                           {"resource": read.reference, **({"bundle": also} if also else {})}))


async def read(database: Database, who: Principal, loader: Loader, number: int, site: Site, *,
               exported: bool = False) -> dict[str, Any]:
    """One resource by id, audited (``fhir.read``; ``fhir.exported`` for the older /api exports)."""
    async with database.session() as session:
        found = await loader(session, who, number, site)
        _audited(session, who, found, exported=exported)
        await session.commit()
    return found.resource


# --- the directory: names and roles, no health records --------------------------------------------------------


async def _colleague_hospital(session: AsyncSession, who: Principal, hospital_id: int) -> Hospital:
    hospital = await session.get(Hospital, hospital_id)
    partners = await partner_hospital_ids(session, who.hospital_id)
    if hospital is None or not can_see_colleague(who, hospital_id, partners):
        raise NotFound(N_("There is no such hospital."))
    return hospital


async def _colleague(session: AsyncSession, who: Principal, user_id: int) -> tuple[User, Hospital]:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("There is no such user."))
    try:
        return user, await _colleague_hospital(session, who, user.hospital_id)
    except NotFound:
        raise NotFound(N_("There is no such user.")) from None


async def load_practitioner(session: AsyncSession, who: Principal, user_id: int, site: Site) -> Read:
    user, _ = await _colleague(session, who, user_id)
    return Read(fhir.practitioner_resource(user, site))


async def load_practitioner_role(session: AsyncSession, who: Principal, user_id: int, site: Site) -> Read:
    user, hospital = await _colleague(session, who, user_id)
    specialty = await session.get(Specialty, user.specialty_id) if user.specialty_id else None
    return Read(fhir.practitioner_role(user, hospital, specialty, site))


async def load_organization(session: AsyncSession, who: Principal, hospital_id: int, site: Site) -> Read:
    return Read(fhir.organization_resource(await _colleague_hospital(session, who, hospital_id), site))


async def load_binary(session: AsyncSession, who: Principal, template_id: int, site: Site) -> Read:
    """A consent template's text: published to everyone who gives or records a consent."""
    template = await session.get(ConsentTemplate, template_id)
    if template is None:
        raise NotFound(N_("There is no such consent text."))
    return Read(fhir.binary(template))


# --- patient data ---------------------------------------------------------------------------------------------


async def load_patient(session: AsyncSession, who: Principal, patient_id: int, site: Site) -> Read:
    """As ``records.view`` shows it: 404 if there is none, 403 if it is not the caller's to see."""
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(N_("There is no such patient."))
    require(await records.may_view(session, who, patient), N_("This patient's record is not yours to see."))
    return Read(fhir.patient(patient, site, own_hospital=who.hospital_id == patient.hospital_id), patient.id)


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


async def load_service_request(session: AsyncSession, who: Principal, referral_id: int, site: Site) -> Read:
    record = await _referral_record(session, who, referral_id)
    return Read(fhir.service_request(record, site), record.patient.id)


async def _appointment(session: AsyncSession, row: Appointment, record: fhir.ReferralRecord, site: Site) -> Read:
    specialist = await session.get(User, row.specialist_id)
    assert specialist is not None
    room = f"{site.url}/consultations/{row.consultation_id}"
    return Read(fhir.appointment(row, record, specialist, room, site), record.patient.id)


async def load_appointment(session: AsyncSession, who: Principal, appointment_id: int, site: Site) -> Read:
    """Any booking of a referral the caller sees with its records, a moved one's cancelled predecessor too."""
    row = await session.get(Appointment, appointment_id)
    if row is None:
        raise NotFound(N_("There is no such appointment."))
    return await _appointment(session, row, await _referral_record(session, who, row.referral_id), site)


async def latest_appointment_id(database: Database, who: Principal, referral_id: int) -> int:
    """The referral's latest booking (for the older export of a referral's appointment)."""
    async with database.session() as session:
        await referrals.load_with_records(session, who, referral_id)
        found = (await session.exec(select(Appointment.id).where(Appointment.referral_id == referral_id)
                                    .order_by(col(Appointment.id).desc()))).first()
    if found is None:
        raise NotFound(N_("This referral has no appointment."))
    return found


async def load_consent(session: AsyncSession, who: Principal, consent_id: int, site: Site) -> Read:
    """A consent, for those who may see what it covers: the referral's records, or the consultation (whose
    patient stays unnamed where the consultation's view withholds them)."""
    row = await session.get(Consent, consent_id)
    if row is None:
        raise NotFound(N_("There is no such consent."))
    patient_shown = True
    if row.referral_id is not None:
        await referrals.load_with_records(session, who, row.referral_id)
    elif row.consultation_id is not None:
        view = await consultations.visible(session, who, row.consultation_id, can_view_consultation)
        patient_shown = not view.withheld
    else:
        raise NotFound(N_("There is no such consent."))  # covers nothing the rules know: no one's to see
    template = await session.get(ConsentTemplate, row.template_id)
    patient = await session.get(Patient, row.patient_id) if row.patient_id and patient_shown else None
    recorder = await session.get(User, row.recorded_by) if row.recorded_by else None
    participant = await session.get(User, row.user_id) \
        if row.subject is ConsentSubject.PARTICIPANT and row.user_id else None
    assert template is not None
    return Read(fhir.consent(row, template, patient, recorder, participant, site),
                patient.id if patient else None, row.consultation_id)


async def load_encounter(session: AsyncSession, who: Principal, consultation_id: int, site: Site) -> Read:
    """The consultation as an Encounter of class virtual (finished once its referral is completed); without the
    patient's consent to sharing, the receiving side's names no patient and no reason."""
    view = await consultations.visible(session, who, consultation_id, can_view_consultation)
    users = (await session.exec(select(User).join(ConsultationParticipant).where(
        ConsultationParticipant.consultation_id == consultation_id).order_by(col(User.id)))).all()
    referral = (await session.exec(select(Referral).where(Referral.consultation_id == consultation_id))).first()
    events = (await session.exec(select(ReferralEvent).where(
        ReferralEvent.referral_id == referral.id))).all() if referral else []
    started = next((e.at for e in events if e.action == "start"), None)
    ended = next((e.at for e in events if e.action in ("complete", "cancel")), None)
    patient = None if view.withheld else view.patient
    resource = fhir.encounter(view.consultation, view.hospital, patient, list(users),
                              None if view.withheld else referral, started, ended, title=view.title, site=site)
    return Read(resource, patient.id if patient else None, consultation_id)


async def _completion(session: AsyncSession, referral_id: int) -> ReferralEvent | None:
    return (await session.exec(select(ReferralEvent).where(
        ReferralEvent.referral_id == referral_id, ReferralEvent.action == "complete")
        .order_by(col(ReferralEvent.id).desc()))).first()


async def load_diagnostic_report(session: AsyncSession, who: Principal, referral_id: int, site: Site) -> Read:
    """The specialist's opinion on a completed referral (404 until there is one), issued when it was completed,
    by the specialist who completed it."""
    record = await _referral_record(session, who, referral_id)
    completed = await _completion(session, referral_id)
    if record.referral.state is not ReferralState.COMPLETED or completed is None or not record.referral.opinion:
        raise NotFound(N_("This referral has no opinion yet."))
    signed = (await session.exec(select(ConsultationReport).where(ConsultationReport.referral_id == referral_id)
                                 .order_by(col(ConsultationReport.version).desc()))).first()
    author = await session.get(User, signed.author_id if signed is not None else completed.actor_id)
    assert author is not None
    return Read(fhir.diagnostic_report(record, author, completed.at, site, signed), record.patient.id,
                record.referral.consultation_id)


# --- everything about one referral ----------------------------------------------------------------------------


async def referral_bundle(database: Database, who: Principal, referral_id: int, site: Site) -> dict[str, Any]:
    """``Bundle/referral-{id}``: a ``collection`` of everything about one referral the caller may see: the
    ServiceRequest, its patient, the clinicians and hospitals it names, every appointment (a moved one's cancelled
    predecessor too), the consultation's Encounter, every consent given on the referral or the consultation, and
    the opinion once there is one. Each entry is the resource its own read answers (the same rules); the read of
    the Bundle is audited once, under the patient, naming every entry."""
    async with database.session() as session:
        request = await load_service_request(session, who, referral_id, site)  # 403/404 as the referral's read
        referral = await session.get(Referral, referral_id)
        assert referral is not None
        reads = [request, await load_patient(session, who, referral.patient_id, site)]
        people = [referral.referring_doctor_id] + ([referral.target_specialist_id] if referral.target_specialist_id
                                                   else [])
        for row in (await session.exec(select(Appointment).where(Appointment.referral_id == referral_id)
                                       .order_by(col(Appointment.id)))).all():
            assert row.id is not None
            reads.append(await load_appointment(session, who, row.id, site))
            people.append(row.specialist_id)
        if referral.consultation_id is not None:
            try:
                reads.append(await load_encounter(session, who, referral.consultation_id, site))
            except (Forbidden, NotFound):
                pass  # booked, but the consultation is not the caller's to see: the ServiceRequest's read says so
        given_on = col(Consent.referral_id) == referral_id
        if referral.consultation_id is not None:
            given_on = sa.or_(given_on, col(Consent.consultation_id) == referral.consultation_id)
        consents = (await session.exec(select(Consent.id).where(given_on).order_by(col(Consent.id)))).all()
        for consent_id in consents:
            try:
                reads.append(await load_consent(session, who, consent_id, site))
            except (Forbidden, NotFound):
                pass
        if referral.state is ReferralState.COMPLETED and referral.opinion:
            reads.append(await load_diagnostic_report(session, who, referral_id, site))
            completed = await _completion(session, referral_id)
            assert completed is not None
            people.append(completed.actor_id)
        directory = [(loader, user_id) for user_id in dict.fromkeys(people)
                     for loader in (load_practitioner, load_practitioner_role)]
        directory += [(load_organization, hospital_id) for hospital_id
                      in dict.fromkeys([referral.referring_hospital_id, referral.target_hospital_id])]
        for loader, number in directory:
            try:
                reads.append(await loader(session, who, number, site))
            except NotFound:
                pass  # no longer in the caller's partnerships: its read would not answer either
        bundle = Read({"resourceType": "Bundle", "id": f"referral-{referral_id}", "type": "collection",
                       "identifier": {"system": site.system("referral-bundle"), "value": str(referral_id)},
                       "timestamp": fhir.instant(utcnow()),
                       "entry": [{"fullUrl": f"{site.fhir}/{r.reference}", "resource": r.resource} for r in reads]},
                      referral.patient_id, referral.consultation_id)
        _audited(session, who, bundle, also=[r.reference for r in reads])
        await session.commit()
    return bundle.resource


# --- what is served -------------------------------------------------------------------------------------------

LOADERS: dict[str, Loader] = {
    "Patient": load_patient,
    "Practitioner": load_practitioner,
    "PractitionerRole": load_practitioner_role,
    "Organization": load_organization,
    "ServiceRequest": load_service_request,
    "Appointment": load_appointment,
    "Encounter": load_encounter,
    "Consent": load_consent,
    "DiagnosticReport": load_diagnostic_report,
    "Binary": load_binary,
}
