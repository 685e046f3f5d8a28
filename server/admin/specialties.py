"""Specialties, platform-wide: the code referrals and slot searches name them by, their names in both
languages, and how long one appointment lasts. Each change is audited with it."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Conflict, NotFound
from ..models import Specialty
from ..outputs import Out
from ..permissions import Principal
from . import actor, commit, require_administrator
from .inputs import SpecialtyInput


class SpecialtyRecord(Out):
    """A specialty as the console keeps it: ``slot_minutes`` is how long one appointment lasts."""

    id: int
    code: str
    name_zh: str
    name_en: str
    slot_minutes: int


class SpecialtyList(Out):
    specialties: list[SpecialtyRecord]


def shown(specialty: Specialty) -> SpecialtyRecord:
    assert specialty.id is not None
    return SpecialtyRecord(id=specialty.id, code=specialty.code, name_zh=specialty.name_zh, name_en=specialty.name_en,
                        slot_minutes=specialty.slot_minutes)


async def list_all(session: AsyncSession, who: Principal) -> list[Specialty]:
    require_administrator(who)
    return list((await session.exec(select(Specialty).order_by(col(Specialty.code)))).all())


async def _code_free(session: AsyncSession, code: str, besides: int | None = None) -> None:
    found = (await session.exec(select(Specialty.id).where(Specialty.code == code))).first()
    if found is not None and found != besides:
        raise Conflict(N_("A specialty with this code already exists."))


async def create(session: AsyncSession, who: Principal, body: SpecialtyInput) -> Specialty:
    require_administrator(who)
    await _code_free(session, body.code)
    specialty = Specialty(**body.model_dump())
    session.add(specialty)
    audit.with_commit(session, lambda: audit.Entry(actor(who), "specialty.created", subject=f"specialty:{specialty.id}",
                                                   detail=body.model_dump()))
    await commit(session)
    return specialty


async def update(session: AsyncSession, who: Principal, specialty_id: int, body: SpecialtyInput) -> Specialty:
    """Rename a specialty, change its code or its appointments' length (slots booked already keep theirs)."""
    require_administrator(who)
    specialty = await session.get(Specialty, specialty_id)
    if specialty is None:
        raise NotFound(N_("There is no such specialty."))
    await _code_free(session, body.code, besides=specialty_id)
    after = body.model_dump()
    changes = {name: [getattr(specialty, name), value] for name, value in after.items()
               if getattr(specialty, name) != value}
    if changes:
        for name in changes:
            setattr(specialty, name, after[name])
        session.add(specialty)
        audit.with_commit(session, audit.Entry(actor(who), "specialty.updated", subject=f"specialty:{specialty_id}",
                                               detail={"changes": changes}))
        await commit(session)
    return specialty
