"""The audit trail: who did what to which consultation, in a hash chain that shows any later change.

Each entry's hash covers its fields and the previous entry's hash; ``verify`` walks the chain. The
unique ``prev_hash`` column means two writers racing for the same place cannot both succeed: the loser
reads the new end of the chain and tries again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from .db import Database
from .models import AuditEvent, utcnow

GENESIS = "0" * 64
ATTEMPTS = 20


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, consultation_id: int | None, subject: str,
               detail: str) -> str:
    fields = [prev_hash, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action, consultation_id,
              subject, detail]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


async def record(database: Database, *, actor: str, action: str, consultation_id: int | None = None,
                 subject: str = "", detail: dict[str, Any] | None = None) -> AuditEvent:
    """Append one entry at the end of the chain."""
    text = json.dumps(detail or {}, sort_keys=True, ensure_ascii=False)
    for _ in range(ATTEMPTS):
        async with database.session() as session:
            last = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1))).first()
            prev = last.hash if last else GENESIS
            at = utcnow()
            event = AuditEvent(at=at, actor=actor, action=action, consultation_id=consultation_id, subject=subject,
                               detail=text, prev_hash=prev,
                               hash=entry_hash(prev, at, actor, action, consultation_id, subject, text))
            session.add(event)
            try:
                await session.commit()
            except sa.exc.IntegrityError:
                await session.rollback()
                continue
            await session.refresh(event)
            return event
    raise RuntimeError("could not append to the audit trail: too many concurrent writers")


@dataclass(frozen=True)
class Break:
    """Where the chain stops holding: the entry, and what happened to it or just before it."""

    id: int | None
    problem: str  # "altered", or "an entry before it was removed or inserted"

    def __str__(self) -> str:
        return f"entry {self.id}: {self.problem}"


def check(events: Sequence[AuditEvent]) -> Break | None:
    """The first place the chain does not hold, or None. An entry whose own hash no longer matches its
    fields was altered; one whose link to the entry before is wrong had a neighbour removed or inserted.
    (Removing the newest entries leaves a shorter chain that holds: keep the latest hash elsewhere, as
    `telemed audit verify` prints it, to notice that.)"""
    prev = GENESIS
    for event in events:
        own = entry_hash(event.prev_hash, event.at, event.actor, event.action, event.consultation_id, event.subject,
                         event.detail)
        if event.hash != own:
            return Break(event.id, "altered")
        if event.prev_hash != prev:
            return Break(event.id, "an entry before it was removed or inserted")
        prev = event.hash
    return None


def verify(events: Sequence[AuditEvent]) -> int | None:
    """The id of the first entry that does not follow from the one before it, or None if the chain holds."""
    found = check(events)
    return found.id if found else None


async def trail(database: Database, consultation_id: int | None = None) -> list[AuditEvent]:
    async with database.session() as session:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if consultation_id is not None:
            query = query.where(AuditEvent.consultation_id == consultation_id)
        return list((await session.exec(query)).all())
