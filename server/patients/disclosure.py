"""What of a patient's records another hospital may see: the one rule every view of patient data asks.

A referral's clinical content (the patient's identity, the reason, the summary, and what was derived from
them, such as the title of the consultation booked for it) reaches the receiving hospital only while the
patient's consent to sharing their records stands. The referring hospital always sees its own records.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Consent, ConsentPurpose, Referral
from ..permissions import Principal


async def shared_referrals(session: AsyncSession, who: Principal, referrals: Iterable[Referral]) -> set[int]:
    """The ids of those ``referrals`` whose patient records the caller may see (one query for them all)."""
    shared, asked = set(), set()
    for referral in referrals:
        assert referral.id is not None
        (shared if who.hospital_id == referral.referring_hospital_id else asked).add(referral.id)
    if asked:
        consented = await session.exec(select(Consent.referral_id).where(
            Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.withdrawn_at).is_(None),
            col(Consent.referral_id).in_(asked)))
        shared |= {r for r in consented.all() if r is not None}
    return shared


async def shared_with(session: AsyncSession, who: Principal, referral: Referral) -> bool:
    return bool(await shared_referrals(session, who, [referral]))


def shared_condition(who: Principal) -> sa.ColumnElement[bool]:
    """``shared_referrals`` as a condition on the referral table, for a query that filters or orders by what
    only a shared referral shows (a search by the patient's name must not find a withheld one). EXISTS, not a
    join: a referral with several consents is still one row."""
    standing = sa.exists().where(col(Consent.referral_id) == col(Referral.id),
                                 Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.withdrawn_at).is_(None))
    return sa.or_(col(Referral.referring_hospital_id) == who.hospital_id, standing)
