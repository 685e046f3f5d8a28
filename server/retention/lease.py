"""A lease in the database: which node runs a job now, until when. One statement takes it, on SQLite and
PostgreSQL alike, so of two nodes that try at once exactly one gets it; a node that dies holding it loses
it when it expires."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from ..db import Database
from ..models import JobLease, utcnow


async def acquire(database: Database, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None,
                  renew: bool = True) -> bool:
    """Take the lease ``name`` for ``holder`` until ``now + ttl`` (or, with ``renew``, extend it if ``holder``
    has it already); False if it is held."""
    now = now or utcnow()
    table = JobLease.__table__  # type: ignore[attr-defined]
    free = table.c.expires_at <= now
    async with database.session() as session:
        taken = await session.exec(  # type: ignore[call-overload]
            sa.update(table).where(table.c.name == name, sa.or_(free, table.c.holder == holder) if renew else free)
            .values(holder=holder, expires_at=now + ttl))
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            await session.commit()
            return True
        try:
            # Nobody ever held it: the primary key lets one insert through, the other gets an IntegrityError.
            await session.exec(sa.insert(table).values(  # type: ignore[call-overload]
                name=name, holder=holder, expires_at=now + ttl))
            await session.commit()
            return True
        except sa.exc.IntegrityError:
            await session.rollback()
            return False


async def release(database: Database, name: str, holder: str) -> None:
    """Give the lease up at once (if ``holder`` still has it), so the next run need not wait for it to expire."""
    table = JobLease.__table__  # type: ignore[attr-defined]
    async with database.session() as session:
        await session.exec(sa.update(table).where(  # type: ignore[call-overload]
            table.c.name == name, table.c.holder == holder).values(expires_at=utcnow()))
        await session.commit()
