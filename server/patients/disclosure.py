"""What of a patient's records another hospital may see: the one rule every view of patient data asks.

A referral's clinical content (the patient's identity, the reason, the summary, and what was derived from
them, such as the title of the consultation booked for it) reaches the receiving hospital only while the
patient's consent to sharing their records stands. A consultation set up without a referral shows its
patient (and its title, which names them as often as not) to clinicians and coordinators of another
hospital only while the patient's consent to sharing, given for that consultation, stands. The hospital
that holds the records always sees its own.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Consent, ConsentPurpose, Consultation, Referral
from ..permissions import Principal


async def shared_referrals(session: AsyncSession, who: Principal, referrals: Iterable[Referral]) -> set[int]:
    """The ids of those ``referrals`` whose patient records the caller may see (one query for them all)."""
    return (await shared_records(session, who, referrals, ()))[0]


async def shared_records(session: AsyncSession, who: Principal, referrals: Iterable[Referral],
                         consultations: Iterable[Consultation]) -> tuple[set[int], set[int]]:
    """The ids of those ``referrals``, and of those ``consultations`` (set up without a referral), whose
    patient records the caller may see: one query for them all."""
    shared, asked = set(), set()
    for referral in referrals:
        assert referral.id is not None
        (shared if who.hospital_id == referral.referring_hospital_id else asked).add(referral.id)
    shown, unsure = set(), set()
    for consultation in consultations:
        assert consultation.id is not None
        own = consultation.patient_id is None or who.hospital_id == consultation.hospital_id
        (shown if own else unsure).add(consultation.id)
    if asked or unsure:
        covers = [col(Consent.referral_id).in_(asked),
                  sa.and_(col(Consent.referral_id).is_(None), col(Consent.consultation_id).in_(unsure))]
        consented = await session.exec(select(Consent.referral_id, Consent.consultation_id).where(
            Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.withdrawn_at).is_(None), sa.or_(*covers)))
        for referral_id, consultation_id in consented.all():
            if referral_id is not None:
                shared.add(referral_id)
            elif consultation_id is not None:
                shown.add(consultation_id)
    return shared, shown


async def shared_with(session: AsyncSession, who: Principal, referral: Referral) -> bool:
    return bool(await shared_referrals(session, who, [referral]))


def shared_condition(who: Principal) -> sa.ColumnElement[bool]:
    """``shared_referrals`` as a condition on the referral table, for a query that filters or orders by what
    only a shared referral shows (a search by the patient's name must not find a withheld one). EXISTS, not a
    join: a referral with several consents is still one row."""
    standing = sa.exists().where(col(Consent.referral_id) == col(Referral.id),
                                 Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.withdrawn_at).is_(None))
    return sa.or_(col(Referral.referring_hospital_id) == who.hospital_id, standing)


def consultation_shared_condition(who: Principal) -> sa.ColumnElement[bool]:
    """``shared_records`` for a consultation set up without a referral, as a condition on the consultation
    table."""
    standing = sa.exists().where(col(Consent.consultation_id) == col(Consultation.id),
                                 col(Consent.referral_id).is_(None), Consent.purpose == ConsentPurpose.RECORD_SHARING,
                                 col(Consent.withdrawn_at).is_(None))
    return sa.or_(col(Consultation.patient_id).is_(None), col(Consultation.hospital_id) == who.hospital_id, standing)
