"""What a referral form offers to choose from: the referring hospital's patients, the specialties, and the
partnership's hospitals and specialists (where a referral may go, or be redirected)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..consultations.service import partner_hospital_ids
from ..errors import N_
from ..models import Hospital, Patient, Role, Specialty, User
from ..permissions import Principal, can_refer, require


async def partners(session: AsyncSession, hospital_id: int, *,
                   besides_itself: bool = False) -> tuple[Sequence[Hospital], Sequence[User]]:
    """The hospitals of ``hospital_id``'s partnerships (without it, if ``besides_itself``), and their
    specialists."""
    ids = await partner_hospital_ids(session, hospital_id)
    if besides_itself:
        ids -= {hospital_id}
    hospitals = (await session.exec(select(Hospital).where(col(Hospital.id).in_(ids)).order_by(col(Hospital.id)))).all()
    specialists = (await session.exec(select(User).where(User.role == Role.SPECIALIST, col(User.hospital_id).in_(ids),
                                                         col(User.is_active).is_(True))  # disabled: not offered
                                      .order_by(col(User.id)))).all()
    return hospitals, specialists


async def for_new_referral(session: AsyncSession, who: Principal) -> dict[str, Sequence]:
    """The choices of the new-referral form for this county doctor (403 for anyone who does not refer)."""
    require(can_refer(who), N_("Only county doctors refer patients."))
    hospitals, specialists = await partners(session, who.hospital_id, besides_itself=True)
    return {
        "patients": (await session.exec(select(Patient).where(Patient.hospital_id == who.hospital_id)
                                        .order_by(col(Patient.name)))).all(),
        "specialties": (await session.exec(select(Specialty).order_by(col(Specialty.id)))).all(),
        "hospitals": hospitals, "specialists": specialists,
    }
