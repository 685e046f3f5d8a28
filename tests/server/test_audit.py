"""The audit trail is a hash chain: entries appended in order verify, and any change to one is found."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from server import audit
from server.db import Database
from server.models import AuditEvent


async def test_chain_verifies_and_shows_where_it_was_altered(database_url: str) -> None:
    database = Database(database_url)
    await database.upgrade()
    try:
        await asyncio.gather(*(audit.record(database, actor=f"user:{n}", action="recording.viewed",
                                            consultation_id=1, subject="recording:1", detail={"n": n})
                               for n in range(6)))  # concurrent writers still make one chain
        events = await audit.trail(database)
        assert len(events) == 6 and audit.verify(events) is None
        assert len({e.prev_hash for e in events}) == 6

        async with database.session() as session:
            await session.exec(sa.update(AuditEvent).where(AuditEvent.id == events[3].id)
                               .values(actor="user:999"))  # type: ignore[call-overload]
            await session.commit()
        assert audit.verify(await audit.trail(database)) == events[3].id
    finally:
        await database.close()
