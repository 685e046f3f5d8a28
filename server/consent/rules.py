"""What a consent record is and the rules it must keep, with no I/O: who consents (``Consenter``), how
(``How``), to what (``Scope``), the row and its audit entry. Kept apart from ``records`` (which reads and writes
them) so that a service that records a consent in its own transaction, as setting up a consultation does,
builds it the same way without depending on the consent service."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..audit import trail as audit
from ..client_address import client_address
from ..errors import ValidationFailed
from ..models import Consent, ConsentMethod, ConsentPurpose, ConsentSubject, ConsentTemplate


@dataclass(frozen=True)
class Consenter:
    """The person the consent is about."""

    subject: ConsentSubject
    identity: str  # user:<id> for a clinician, patient:<id> for a patient
    name: str
    user_id: int | None = None
    patient_id: int | None = None


@dataclass(frozen=True)
class How:
    """How the consent was given: clicked by the person, or said to a doctor who recorded it."""

    method: ConsentMethod
    recorded_by: int | None = None
    ip: str = ""
    user_agent: str = ""

    @classmethod
    def clicked(cls, request: web.Request) -> How:
        return cls(ConsentMethod.CLICKED, None, *where(request))

    @classmethod
    def verbal(cls, request: web.Request, doctor_id: int) -> How:
        return cls(ConsentMethod.VERBAL, doctor_id, *where(request))


@dataclass(frozen=True)
class Scope:
    """What the consent is for: a consultation (video, recording), a referral (record sharing), or for
    record sharing a consultation set up without a referral, with clinicians of another hospital taking
    part (``referral_id`` None)."""

    consultation_id: int | None = None
    referral_id: int | None = None


def where(request: web.Request) -> tuple[str, str]:
    """From where a consent is given: the client's address (not the proxy's) and its browser."""
    return client_address(request)[:64], request.headers.get("User-Agent", "")[:300]


def patient_identity(patient_id: int) -> str:
    return f"patient:{patient_id}"


def standing_key(purpose: ConsentPurpose, identity: str, scope: Scope) -> str:
    """What makes two standing records the same consent: its purpose, its person and its scope (a referral's,
    whichever of its consultations it was given in, else the consultation's). A record carries it while it
    stands, and the database lets one record at a time carry it."""
    where = (f"referral:{scope.referral_id}" if scope.referral_id is not None
             else f"consultation:{scope.consultation_id}")
    return f"{purpose.value}|{identity}|{where}"


def check(purpose: ConsentPurpose, consenter: Consenter, scope: Scope, how: How) -> None:
    """The rules a consent record must keep, before anything is written."""
    problems: dict[str, str] = {}
    if purpose is ConsentPurpose.RECORD_SHARING:
        if scope.referral_id is None and scope.consultation_id is None:
            problems["referral"] = "sharing records is consented to for one referral or one consultation"
        if consenter.subject is not ConsentSubject.PATIENT:
            problems["subject"] = "only the patient consents to sharing their records"
    elif scope.consultation_id is None:
        problems["consultation"] = f"{purpose} consent is for one consultation"
    if purpose is ConsentPurpose.VIDEO and consenter.subject is not ConsentSubject.PATIENT:
        problems["subject"] = "video consent is the patient's"
    if how.method is ConsentMethod.VERBAL and how.recorded_by is None:
        problems["recorded_by"] = "a verbal consent names the doctor who recorded it"
    if how.method is ConsentMethod.VERBAL and consenter.subject is not ConsentSubject.PATIENT:
        problems["method"] = "clinicians consent for themselves, by clicking"
    if problems:
        raise ValidationFailed(problems)


def new_record(template: ConsentTemplate, consenter: Consenter, scope: Scope, how: How) -> Consent:
    """A consent row, checked against the rules; the caller adds it to a session with its ``given_entry``."""
    check(template.purpose, consenter, scope, how)
    return Consent(purpose=template.purpose, template_id=template.id, subject=consenter.subject,
                   identity=consenter.identity, user_id=consenter.user_id, patient_id=consenter.patient_id,
                   name=consenter.name, consultation_id=scope.consultation_id, referral_id=scope.referral_id,
                   method=how.method, recorded_by=how.recorded_by, ip=how.ip, user_agent=how.user_agent,
                   standing_key=standing_key(template.purpose, consenter.identity, scope))


def given_entry(consent: Consent, template: ConsentTemplate) -> audit.Entry:
    """The audit entry of a consent given (called once the consent has its id)."""
    actor = f"user:{consent.recorded_by}" if consent.method is ConsentMethod.VERBAL else consent.identity
    return audit.Entry(actor, "consent.given", consent.consultation_id, f"consent:{consent.id}",
                       {"purpose": consent.purpose.value, "template": template.id, "version": template.version,
                        "method": consent.method.value, "for": consent.identity, "referral": consent.referral_id})
