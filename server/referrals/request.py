"""The consultation request (会诊申请单) a referral carries, as the receiving side reads it: gathered once, shown
as a page, a PDF and JSON alike.

The same rules as the referral itself: whoever may see the referral sees the request's heading (hospitals,
doctors, specialty, title wanted, urgency, times, the consent's status); the patient and the clinical content
(reason, question, diagnosis, history, results, summary) only where their records may be seen
(``patients/disclosure.py``): the receiving hospital only while the patient's consent to sharing stands.
The consent's status is read from the consent records, never stored on the referral.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import zones
from ..audit import trail as audit
from ..db import Database
from ..errors import N_
from ..models import (
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentTemplate,
    Hospital,
    Patient,
    Referral,
    Sex,
    Specialty,
    TitleWanted,
    Urgency,
    User,
)
from ..outputs import Instant, Out
from ..patients import disclosure
from ..permissions import Principal
from ..reports import icd10
from .service import load_visible

ConsentStatus = Literal["given", "withdrawn", "none"]
Format = Literal["page", "pdf", "json"]

# The request's words, for the page and the PDF alike (msgids: each is translated where it is shown).
TITLE_WORDS = {TitleWanted.ANY: N_("Any title"), TitleWanted.ATTENDING: N_("Attending physician"),
               TitleWanted.ASSOCIATE_CHIEF: N_("Associate chief physician"), TitleWanted.CHIEF: N_("Chief physician")}
URGENCY_WORDS = {Urgency.ROUTINE: N_("Routine"), Urgency.URGENT: N_("Urgent"), Urgency.EMERGENCY: N_("Emergency")}
SEX_WORDS = {Sex.FEMALE: N_("Female"), Sex.MALE: N_("Male"), Sex.OTHER: N_("Other"), Sex.UNKNOWN: N_("Not recorded")}
CONSENT_WORDS = {
    "given": N_("Given: the patient agreed to their records going to the consulting hospital"),
    "withdrawn": N_("Withdrawn: the patient's records are withheld from the consulting hospital"),
    "none": N_("Not given: the consulting hospital sees nothing of the patient"),
}
METHOD_WORDS = {ConsentMethod.CLICKED: N_("agreed on a page"),
                ConsentMethod.VERBAL: N_("said to %(doctor)s, who recorded it")}


@dataclass(frozen=True)
class SharingConsent:
    """The latest record-sharing consent on file for the referral: standing (``given``) or withdrawn."""

    status: ConsentStatus
    given_at: datetime | None = None
    method: ConsentMethod | None = None
    recorded_by: str = ""  # the doctor who recorded a verbal consent
    withdrawn_at: datetime | None = None
    text_version: int | None = None  # the version of the text the patient agreed to


@dataclass(frozen=True)
class Clinical:
    """What of the request is the patient's record: shown only where it may be."""

    patient_id: int
    patient_name: str
    sex: Sex
    birth_year: int | None
    reason: str
    question: str
    working_diagnosis: str
    diagnosis_code: str
    diagnosis_title_en: str  # the code's title in the list in use (either may be empty)
    diagnosis_title_zh: str
    history: str
    results: str
    summary: str

    def diagnosis_title(self, locale: str) -> str:
        return icd10.Diagnosis(self.diagnosis_code, self.diagnosis_title_en, self.diagnosis_title_zh).title(locale)


@dataclass(frozen=True)
class RequestFacts:
    """A consultation request, as gathered for one reader."""

    referral_id: int
    state: str
    urgency: Urgency
    requesting_hospital: str
    consulting_hospital: str
    requesting_doctor: str
    specialty_zh: str
    specialty_en: str
    title_wanted: TitleWanted
    target_specialist: str  # "" when any specialist of the hospital may take it
    created_at: datetime
    submitted_at: datetime | None
    consent: SharingConsent
    clinical: Clinical | None  # None: withheld from this reader

    def specialty(self, locale: str) -> str:
        return self.specialty_zh if locale.startswith("zh") else self.specialty_en

    def to_json(self, locale: str) -> dict[str, Any]:
        """The request as ``GET /api/referrals/{id}/request`` answers it (``shown``), as JSON."""
        return self.shown(locale).model_dump(mode="json")

    def shown(self, locale: str) -> RequestShown:
        """The request as ``GET /api/referrals/{id}/request`` answers it; the clinical keys are null when
        withheld, so a reader can tell withheld from empty."""
        c = self.clinical
        consent = self.consent
        return RequestShown(
            referral_id=self.referral_id, state=self.state, urgency=self.urgency,
            requesting_hospital=self.requesting_hospital, consulting_hospital=self.consulting_hospital,
            requesting_doctor=self.requesting_doctor,
            specialty=SpecialtyNames(name_zh=self.specialty_zh, name_en=self.specialty_en),
            title_wanted=self.title_wanted, target_specialist=self.target_specialist or None,
            created_at=self.created_at, submitted_at=self.submitted_at, records_withheld=c is None,
            patient=RequestPatient(id=c.patient_id, name=c.patient_name, sex=c.sex, birth_year=c.birth_year)
            if c else None,
            reason=c.reason if c else None, question=c.question if c else None,
            working_diagnosis=WorkingDiagnosis(text=c.working_diagnosis, code=c.diagnosis_code or None,
                                               code_title=c.diagnosis_title(locale) or None) if c else None,
            history=c.history if c else None, results=c.results if c else None,
            summary=c.summary if c else None,
            sharing_consent=SharingConsentShown(
                status=consent.status, given_at=consent.given_at, method=consent.method,
                recorded_by=consent.recorded_by or None, withdrawn_at=consent.withdrawn_at,
                text_version=consent.text_version))


class SpecialtyNames(Out):
    name_zh: str
    name_en: str


class RequestPatient(Out):
    id: int
    name: str
    sex: Sex
    birth_year: int | None


class WorkingDiagnosis(Out):
    """The requesting doctor's working diagnosis: their words, and the ICD-10 code they picked (if any) with its
    title in the reader's language."""

    text: str
    code: str | None
    code_title: str | None


class SharingConsentShown(Out):
    """The patient's consent to sharing their records for this referral, from the consent records: ``given``,
    ``withdrawn`` or ``none``; ``recorded_by`` names the doctor who recorded a verbal one."""

    status: ConsentStatus
    given_at: Instant | None
    method: ConsentMethod | None
    recorded_by: str | None
    withdrawn_at: Instant | None
    text_version: int | None


class RequestShown(Out):
    """A consultation request (会诊申请单) as its reader may see it: the clinical keys are null where the
    patient's records are withheld from them (``records_withheld``)."""

    referral_id: int
    state: str
    urgency: Urgency
    requesting_hospital: str
    consulting_hospital: str
    requesting_doctor: str
    specialty: SpecialtyNames
    title_wanted: TitleWanted
    target_specialist: str | None
    created_at: Instant
    submitted_at: Instant | None
    records_withheld: bool
    patient: RequestPatient | None
    reason: str | None
    question: str | None
    working_diagnosis: WorkingDiagnosis | None
    history: str | None
    results: str | None
    summary: str | None
    sharing_consent: SharingConsentShown


async def sharing_status(session: AsyncSession, referral_id: int) -> SharingConsent:
    """The patient's consent to sharing their records for this referral, as the consent records say it: one in
    force if any (what disclosure goes by), else the latest withdrawn one, else none."""
    sharing = select(Consent, ConsentTemplate).join(ConsentTemplate).where(
        Consent.referral_id == referral_id, Consent.purpose == ConsentPurpose.RECORD_SHARING)
    row = (await session.exec(sharing.where(col(Consent.withdrawn_at).is_(None))
                              .order_by(col(Consent.id).desc()).limit(1))).first()
    if row is None:
        row = (await session.exec(sharing.order_by(col(Consent.id).desc()).limit(1))).first()
    if row is None:
        return SharingConsent("none")
    consent, template = row
    doctor = await session.get(User, consent.recorded_by) if consent.recorded_by else None
    return SharingConsent("withdrawn" if consent.withdrawn_at else "given", consent.given_at, consent.method,
                          doctor.display_name if doctor else "", consent.withdrawn_at, template.version)


async def gather(session: AsyncSession, who: Principal, referral_id: int) -> RequestFacts:
    """The request of a referral the caller may see (404/403 as for the referral itself)."""
    referral, _ = await load_visible(session, who, referral_id)
    return await facts_of(session, who, referral)


async def facts_of(session: AsyncSession, who: Principal, referral: Referral) -> RequestFacts:
    assert referral.id is not None
    requesting = await session.get(Hospital, referral.referring_hospital_id)
    consulting = await session.get(Hospital, referral.target_hospital_id)
    doctor = await session.get(User, referral.referring_doctor_id)
    specialty = await session.get(Specialty, referral.specialty_id)
    specialist = await session.get(User, referral.target_specialist_id) if referral.target_specialist_id else None
    assert requesting and consulting and doctor and specialty
    clinical = None
    if await disclosure.shared_with(session, who, referral):
        patient = await session.get(Patient, referral.patient_id)
        assert patient is not None and patient.id is not None
        found = await icd10.lookup(session, referral.diagnosis_code) if referral.diagnosis_code else None
        clinical = Clinical(
            patient_id=patient.id, patient_name=patient.name, sex=patient.sex, birth_year=patient.birth_year,
            reason=referral.reason, question=referral.question, working_diagnosis=referral.working_diagnosis,
            diagnosis_code=referral.diagnosis_code, diagnosis_title_en=found.title_en if found else "",
            diagnosis_title_zh=found.title_zh if found else "", history=referral.history, results=referral.results,
            summary=referral.summary)
    return RequestFacts(
        referral_id=referral.id, state=referral.state.value, urgency=referral.urgency,
        requesting_hospital=requesting.name, consulting_hospital=consulting.name,
        requesting_doctor=doctor.display_name, specialty_zh=specialty.name_zh, specialty_en=specialty.name_en,
        title_wanted=referral.title_wanted, target_specialist=specialist.display_name if specialist else "",
        created_at=referral.created_at, submitted_at=referral.submitted_at,
        consent=await sharing_status(session, referral.id), clinical=clinical)


async def read(database: Database, who: Principal, referral_id: int, shown_as: Format, *,
               default_zone: str) -> tuple[RequestFacts, str]:
    """The one way to read a request, whatever its form (page, PDF, JSON): its facts as the caller may see them,
    the caller's clock (their hospital's zone), and the read audited where it shows the patient."""
    async with database.session() as session:
        facts = await gather(session, who, referral_id)
        zone = await zones.reader_zone(session, who, default_zone)
    await audit_read(database, who, facts, shown_as)
    return facts, zone


async def audit_read(database: Database, who: Principal, facts: RequestFacts, shown_as: Format) -> None:
    """A request read with its patient's records is a view of the patient's record, audited as the referral
    page's reads are (``patient.viewed``), with the form it was read in."""
    if facts.clinical is not None:
        await audit.record(database, actor=f"user:{who.user_id}", action="patient.viewed",
                           subject=f"patient:{facts.clinical.patient_id}",
                           detail={"via": f"referral:{facts.referral_id}", "format": f"request-{shown_as}"})
