"""Patients' records: the minimum needed, a national ID kept only as a keyed hash for matching, and
who may see a record (every view is audited by the handlers).

The national ID (居民身份证号码, GB 11643-1999) is checked, then hashed with HMAC-SHA256 under a key
derived from the recordings' key: the same ID always gives the same hash, so a doctor can find a
patient by it, but the hash cannot be reversed by hashing every possible ID without the key. Only
its last four characters are kept in the clear, for people to tell two records apart.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..consent import records as consents
from ..models import ConsentPurpose, Patient, Referral
from ..permissions import Principal, can_handle_patients
from ..referrals.service import can_view, live_appointment

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_key(recording_key: bytes) -> bytes:
    """The national-ID hashing key, derived from the recordings' key (both must outlive every record)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"telemed national id").derive(recording_key)


def normalise_national_id(raw: str) -> str:
    """The ID in canonical form, or ValueError saying what is wrong with it."""
    value = raw.strip().replace(" ", "").upper()
    if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
        raise ValueError("a national ID is 17 digits and a check character (a digit or X)")
    expected = _CHECK[sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True)) % 11]
    if value[17] != expected:
        raise ValueError("the check character does not match: please check the number")
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


def describe(patient: Patient, *, own_hospital: bool) -> dict:
    """The record as shown. The phone number stays at the patient's own hospital (the minimum shared)."""
    shown = {"id": patient.id, "name": patient.name, "sex": patient.sex.value, "birth_year": patient.birth_year,
             "hospital_id": patient.hospital_id, "national_id_last4": patient.national_id_last4 or None}
    if own_hospital:
        shown["phone"] = patient.phone or None
    return shown
