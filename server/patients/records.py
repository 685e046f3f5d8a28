"""Patients' records: the minimum needed, a national ID kept only as a keyed hash for matching, who may
see a record, and the operations on them (registering, looking up, viewing), each audited in the same
transaction as what it does.

The national ID (居民身份证号码, GB 11643-1999) is checked, then hashed with HMAC-SHA256 under a key
derived from the recordings' key: the same ID always gives the same hash, so a doctor can find a
patient by it, but the hash cannot be reversed by hashing every possible ID without the key. Only
its last four characters are kept in the clear, for people to tell two records apart.
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..consent import records as consents
from ..errors import N_, Conflict, NotFound, ValidationFailed
from ..models import ConsentPurpose, Patient, Referral, Sex
from ..outputs import Out
from ..paging import LIKE_ESCAPE, Page, like_pattern, offset
from ..permissions import Principal, can_handle_patients, require
from ..referrals.service import can_view, live_appointment
from .inputs import NewPatient, PatientSearch

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_key(recording_key: bytes) -> bytes:
    """The national-ID hashing key, derived from the recordings' key (both must outlive every record)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"telemed national id").derive(recording_key)


def normalise_national_id(raw: str) -> str:
    """The ID in canonical form, or ValueError saying what is wrong with it."""
    value = raw.strip().replace(" ", "").upper()
    if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
        raise ValueError(N_("a national ID is 17 digits and a check character (a digit or X)"))
    expected = _CHECK[sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True)) % 11]
    if value[17] != expected:
        raise ValueError(N_("the check character does not match: please check the number"))
    return value


def national_id_hash(key: bytes, national_id: str) -> str:
    return hmac.new(key, normalise_national_id(national_id).encode(), hashlib.sha256).hexdigest()


async def find_by_national_id(session: AsyncSession, key: bytes, hospital_id: int, national_id: str) -> list[Patient]:
    digest = national_id_hash(key, national_id)
    return list((await session.exec(select(Patient).where(Patient.national_id_hash == digest,
                                                          Patient.hospital_id == hospital_id))).all())


async def may_view(session: AsyncSession, who: Principal, patient: Patient) -> bool:
    """Clinicians of the patient's own hospital; elsewhere in the partnership, only those a referral of the
    patient was sent to, and only while the patient's consent to sharing their records stands."""
    if not can_handle_patients(who):
        return False  # administrators and auditors see who did what (the audit trail), not health records
    if who.hospital_id == patient.hospital_id:
        return True
    referrals = (await session.exec(select(Referral).where(Referral.patient_id == patient.id))).all()
    for referral in referrals:
        assert referral.id is not None
        if not can_view(who, referral, await live_appointment(session, referral.id)):
            continue
        if await consents.standing(session, ConsentPurpose.RECORD_SHARING, referral_id=referral.id) is not None:
            return True
    return False


class PatientShown(Out):
    """A patient's record as shown; ``phone`` only to the patient's own hospital."""

    id: int
    name: str
    sex: Sex
    birth_year: int | None
    hospital_id: int
    national_id_last4: str | None
    phone: str | None = None


class PatientListed(Out):
    id: int
    name: str
    birth_year: int | None
    national_id_last4: str | None


class PatientPage(Out):
    patients: list[PatientListed]
    page: int
    pages: int
    total: int


def describe(patient: Patient, *, own_hospital: bool) -> dict:
    """The record as shown. The phone number stays at the patient's own hospital (the minimum shared)."""
    shown = {"id": patient.id, "name": patient.name, "sex": patient.sex.value, "birth_year": patient.birth_year,
             "hospital_id": patient.hospital_id, "national_id_last4": patient.national_id_last4 or None}
    if own_hospital:
        shown["phone"] = patient.phone or None
    return shown


def shown_to(who: Principal, patient: Patient) -> dict:
    """The record as this caller sees it (one they may view)."""
    return describe(patient, own_hospital=who.hospital_id == patient.hospital_id)


def _checked_national_id(raw: str) -> str:
    try:
        return normalise_national_id(raw)
    except ValueError as exc:
        raise ValidationFailed({"national_id": str(exc)}) from None


async def register(session: AsyncSession, who: Principal, body: NewPatient, key: bytes) -> Patient:
    """A clinician registers a patient of their own hospital, audited with the new row. A national ID
    already registered there is a Conflict naming the existing record, so one person has one record."""
    require(can_handle_patients(who), N_("Only clinicians register patients."))
    digest = last4 = None
    if body.national_id:
        national_id = _checked_national_id(body.national_id)
        digest, last4 = national_id_hash(key, national_id), national_id[-4:]
    if digest is not None:
        found = (await session.exec(select(Patient).where(Patient.national_id_hash == digest,
                                                          Patient.hospital_id == who.hospital_id))).first()
        if found is not None:
            raise Conflict(N_("A patient with this national ID is already registered at your hospital."),
                           code="duplicate-patient", patient_id=found.id)
    patient = Patient(hospital_id=who.hospital_id, name=body.name, sex=body.sex, birth_year=body.birth_year,
                      phone=body.phone, national_id_hash=digest, national_id_last4=last4 or "")
    session.add(patient)
    audit.with_commit(session, lambda: audit.Entry(f"user:{who.user_id}", "patient.registered",
                                                   subject=f"patient:{patient.id}"))
    await session.commit()
    await session.refresh(patient)
    return patient


PAGE_SIZE = 20


async def look_up(session: AsyncSession, who: Principal, key: bytes, query: PatientSearch) -> Page[Patient]:
    """The caller's hospital's patients, by name (a part of it, any case), a page at a time; or those
    matching ``query.national_id``. A search by ID is audited (with what it found, never with the ID)."""
    require(can_handle_patients(who), N_("Only clinicians look up patients."))
    if query.national_id:
        found = await find_by_national_id(session, key, who.hospital_id, _checked_national_id(query.national_id))
        audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "patient.searched",
                                               detail={"by": "national_id", "found": [p.id for p in found]}))
        await session.commit()
        return Page(found, 1, max(PAGE_SIZE, len(found)), len(found))
    where = [Patient.hospital_id == who.hospital_id]
    if query.name:
        where.append(col(Patient.name).ilike(like_pattern(query.name), escape=LIKE_ESCAPE))
    total = (await session.exec(select(sa.func.count()).select_from(Patient).where(*where))).one()
    rows = (await session.exec(select(Patient).where(*where).order_by(col(Patient.name), col(Patient.id))
                               .offset(offset(query.page, PAGE_SIZE)).limit(PAGE_SIZE))).all()
    return Page(list(rows), query.page, PAGE_SIZE, total)


async def view(session: AsyncSession, who: Principal, patient_id: int, *, via: str) -> Patient:
    """One patient's record, to those who may see it (``may_view``); every view goes into the audit trail,
    saying where it was shown (``via``)."""
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(N_("There is no such patient."))
    require(await may_view(session, who, patient), N_("This patient's record is not yours to see."))
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "patient.viewed", subject=f"patient:{patient.id}",
                                           detail={"via": via}))
    await session.commit()
    return patient
