"""What the new-consultation form offers: the caller's hospital (whose clock its start is read on), its
patients, and the specialists of it and its partner hospitals who may be invited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import N_
from ..models import Hospital, Patient, Role, Specialty, User
from ..permissions import Principal, can_add_participant, can_create_consultation, joins_what_they_plan, require
from .service import partner_hospital_ids


@dataclass(frozen=True)
class Invitable:
    specialist: User
    hospital: Hospital
    specialty: Specialty | None


@dataclass(frozen=True)
class NewConsultationChoices:
    hospital: Hospital
    patients: list[Patient]
    specialists: list[Invitable]  # by hospital, then name
    joins: bool  # the caller takes part, so may invite the patient at once


async def for_new_consultation(session: AsyncSession, who: Principal) -> NewConsultationChoices:
    """The choices of the new-consultation form, to those who may set one up."""
    require(can_create_consultation(who), N_("Only doctors, specialists and coordinators create consultations."))
    hospital = await session.get(Hospital, who.hospital_id)
    assert hospital is not None
    partners = await partner_hospital_ids(session, who.hospital_id)
    candidates = (await session.exec(select(User).where(
        User.role == Role.SPECIALIST, User.is_active == True,  # noqa: E712
        col(User.hospital_id).in_(partners | {who.hospital_id}), User.id != who.user_id))).all()
    hospitals = {h.id: h for h in (await session.exec(select(Hospital).where(
        col(Hospital.id).in_({u.hospital_id for u in candidates})))).all()}
    specialties = {s.id: s for s in (await session.exec(select(Specialty))).all()}
    invitable = [Invitable(u, hospitals[u.hospital_id], specialties.get(u.specialty_id)) for u in candidates
                 if can_add_participant(who, u.role, u.hospital_id, partners)]
    invitable.sort(key=lambda i: (i.hospital.id != who.hospital_id, i.hospital.name, i.specialist.display_name))
    patients = (await session.exec(select(Patient).where(Patient.hospital_id == who.hospital_id)
                                   .order_by(col(Patient.name)))).all()
    return NewConsultationChoices(hospital, list(patients), invitable, joins_what_they_plan(who))
