"""What the console's front page counts, and the administrator's own time zone for the times it shows."""

from __future__ import annotations

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import zones
from ..models import Department, Hospital, Partnership, Role, Specialty, User
from ..outputs import Out
from ..permissions import Principal
from ..settings import DEFAULT_TIMEZONE
from . import SHELL, require_administrator


class Overview(Out):
    """How many of each thing the console manages."""

    active_accounts: int
    disabled_accounts: int
    administrators: int  # active ones
    hospitals: int
    departments: int
    specialties: int
    partnerships: int


async def counts(session: AsyncSession, who: Principal) -> Overview:
    """How many of each thing the console manages: accounts (active, disabled, active administrators),
    hospitals, departments, specialties and partnerships."""
    require_administrator(who)

    async def count(model: type, *where: object) -> int:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()

    return Overview(
        active_accounts=await count(User, col(User.is_active).is_(True)),
        disabled_accounts=await count(User, col(User.is_active).is_(False)),
        administrators=await count(User, col(User.is_active).is_(True), User.role == Role.ADMIN),
        hospitals=await count(Hospital),
        departments=await count(Department),
        specialties=await count(Specialty),
        partnerships=await count(Partnership),
    )


async def home_zone(session: AsyncSession, who: Principal, fallback: str = DEFAULT_TIMEZONE) -> str:
    """The time zone of the administrator's hospital, which the console shows times in."""
    if who == SHELL:
        return fallback
    return await zones.reader_zone(session, who, fallback)
