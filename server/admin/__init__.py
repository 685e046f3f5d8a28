"""The administrator's console: accounts, hospitals and their departments, specialties, and partnerships.

Every operation here takes the session, the principal and a validated input (``inputs.py``), checks
``permissions.can_administer``, and audits its change in the same transaction. Administrators are the
platform's, not a hospital's: they act across every hospital.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import N_, Conflict
from ..models import Role
from ..permissions import Principal, can_administer, require

SHELL = Principal(user_id=0, role=Role.ADMIN, hospital_id=0)
"""Whoever runs ``telemed user ...`` on the server: they hold the machine, database and keys, so they have every
power an administrator has. Id 0 names no account (ids start at 1), and the audit trail names them ``shell``."""


def actor(who: Principal) -> str:
    """The identity the audit trail names for this principal."""
    return "shell" if who == SHELL else f"user:{who.user_id}"


def require_administrator(who: Principal) -> None:
    require(can_administer(who), N_("Only administrators manage accounts, hospitals and partnerships."))


async def commit(session: AsyncSession) -> None:
    """Commit the change and its audit entry. A unique name that someone took since it was checked is a 409,
    not a 500."""
    try:
        await session.commit()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise Conflict(N_("That name was taken a moment ago; choose another.")) from None
