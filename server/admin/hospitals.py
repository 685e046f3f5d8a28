"""Hospitals and their departments, as an administrator keeps them: name, level, region and time zone (every
local time the platform shows for a hospital is in its zone), and departments with the specialty each
practises. Each change is audited with it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Conflict, NotFound, ValidationFailed
from ..models import Department, Hospital, HospitalLevel, Specialty, User
from ..outputs import Out
from ..permissions import Principal
from . import actor, commit, require_administrator
from .inputs import DepartmentInput, HospitalInput


class HospitalShown(Out):
    id: int
    name: str
    level: HospitalLevel
    region: str
    timezone: str  # IANA


class DepartmentShown(Out):
    id: int
    hospital_id: int
    name: str
    specialty_id: int | None


class HospitalDetail(HospitalShown):
    """A hospital with how many accounts work there and its departments."""

    accounts: int
    departments: list[DepartmentShown]


class HospitalList(Out):
    hospitals: list[HospitalDetail]


@dataclass(frozen=True)
class HospitalView:
    """A hospital with its departments and how many accounts work there."""

    hospital: Hospital
    departments: list[Department]
    accounts: int

    def shown(self) -> HospitalDetail:
        return HospitalDetail(**hospital_shown(self.hospital).model_dump(), accounts=self.accounts,
                              departments=[department_shown(d) for d in self.departments])


def hospital_shown(hospital: Hospital) -> HospitalShown:
    assert hospital.id is not None
    return HospitalShown(id=hospital.id, name=hospital.name, level=hospital.level, region=hospital.region,
                         timezone=hospital.timezone)


def department_shown(department: Department) -> DepartmentShown:
    assert department.id is not None
    return DepartmentShown(id=department.id, hospital_id=department.hospital_id, name=department.name,
                           specialty_id=department.specialty_id)


async def list_all(session: AsyncSession, who: Principal) -> list[HospitalView]:
    """Every hospital, by name, with its departments and number of accounts (three queries in all)."""
    require_administrator(who)
    hospitals = (await session.exec(select(Hospital).order_by(col(Hospital.name)))).all()
    departments = (await session.exec(select(Department).order_by(col(Department.name)))).all()
    counts = dict((await session.exec(select(User.hospital_id, func.count()).group_by(col(User.hospital_id)))).all())
    return [HospitalView(h, [d for d in departments if d.hospital_id == h.id], counts.get(h.id, 0))
            for h in hospitals]


async def _hospital(session: AsyncSession, hospital_id: int) -> Hospital:
    hospital = await session.get(Hospital, hospital_id)
    if hospital is None:
        raise NotFound(N_("There is no such hospital."))
    return hospital


async def get(session: AsyncSession, who: Principal, hospital_id: int) -> HospitalView:
    require_administrator(who)
    hospital = await _hospital(session, hospital_id)
    departments = (await session.exec(select(Department).where(Department.hospital_id == hospital_id)
                                      .order_by(col(Department.name)))).all()
    accounts = (await session.exec(select(func.count()).select_from(User)
                                   .where(User.hospital_id == hospital_id))).one()
    return HospitalView(hospital, list(departments), accounts)


async def _name_free(session: AsyncSession, name: str, besides: int | None = None) -> None:
    found = (await session.exec(select(Hospital.id).where(Hospital.name == name))).first()
    if found is not None and found != besides:
        raise Conflict(N_("A hospital of this name already exists."))


async def create(session: AsyncSession, who: Principal, body: HospitalInput) -> Hospital:
    require_administrator(who)
    await _name_free(session, body.name)
    hospital = Hospital(**body.model_dump())
    session.add(hospital)
    audit.with_commit(session, lambda: audit.Entry(actor(who), "hospital.created", subject=f"hospital:{hospital.id}",
                                                   detail=body.model_dump(mode="json")))
    await commit(session)
    return hospital


async def update(session: AsyncSession, who: Principal, hospital_id: int, body: HospitalInput) -> Hospital:
    """Rename a hospital, or change its level, region or time zone. A new zone changes how every time of the
    hospital is shown from now on; what is booked stays at the same instant."""
    require_administrator(who)
    hospital = await _hospital(session, hospital_id)
    await _name_free(session, body.name, besides=hospital_id)
    after = body.model_dump()
    changes = {name: [_plain(getattr(hospital, name)), _plain(value)] for name, value in after.items()
               if getattr(hospital, name) != value}
    if changes:
        for name in changes:
            setattr(hospital, name, after[name])
        session.add(hospital)
        audit.with_commit(session, audit.Entry(actor(who), "hospital.updated", subject=f"hospital:{hospital_id}",
                                               detail={"changes": changes}))
        await commit(session)
    return hospital


def _plain(value: object) -> object:
    return getattr(value, "value", value)


async def _specialty_exists(session: AsyncSession, specialty_id: int | None) -> None:
    if specialty_id is not None and await session.get(Specialty, specialty_id) is None:
        raise ValidationFailed({"specialty_id": N_("There is no such specialty.")})


async def _department_name_free(session: AsyncSession, hospital_id: int, name: str, besides: int | None = None) -> None:
    found = (await session.exec(select(Department.id).where(Department.hospital_id == hospital_id,
                                                            Department.name == name))).first()
    if found is not None and found != besides:
        raise Conflict(N_("This hospital already has a department of this name."))


async def add_department(session: AsyncSession, who: Principal, hospital_id: int, body: DepartmentInput) -> Department:
    require_administrator(who)
    await _hospital(session, hospital_id)
    await _specialty_exists(session, body.specialty_id)
    await _department_name_free(session, hospital_id, body.name)
    department = Department(hospital_id=hospital_id, name=body.name, specialty_id=body.specialty_id)
    session.add(department)
    audit.with_commit(session, lambda: audit.Entry(
        actor(who), "department.created", subject=f"department:{department.id}",
        detail={"hospital_id": hospital_id, "name": body.name, "specialty_id": body.specialty_id}))
    await commit(session)
    return department


async def update_department(session: AsyncSession, who: Principal, department_id: int,
                            body: DepartmentInput) -> Department:
    """Rename a department or change its specialty. The accounts in it keep the specialty they have: a
    specialist's specialty is theirs, set on their account."""
    require_administrator(who)
    department = await session.get(Department, department_id)
    if department is None:
        raise NotFound(N_("There is no such department."))
    await _specialty_exists(session, body.specialty_id)
    await _department_name_free(session, department.hospital_id, body.name, besides=department_id)
    changes = {name: [getattr(department, name), value] for name, value in body.model_dump().items()
               if getattr(department, name) != value}
    if changes:
        department.name, department.specialty_id = body.name, body.specialty_id
        session.add(department)
        audit.with_commit(session, audit.Entry(actor(who), "department.updated", subject=f"department:{department_id}",
                                               detail={"changes": changes}))
        await commit(session)
    return department
