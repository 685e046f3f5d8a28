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


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor looks for: every field narrows, none widens."""

    actor: str | None = None  # exact identity, e.g. user:4 or patient:1
    action: str | None = None  # exact, or a prefix ending in "." (consent. → consent.given, consent.withdrawn)
    consultation_id: int | None = None
    subject: str | None = None  # exact, e.g. referral:3
    since: datetime | None = None
    until: datetime | None = None

    def as_detail(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items() if v is not None}


async def search(database: Database, wanted: AuditFilter, *, limit: int | None = None,
                 before_id: int | None = None) -> list[AuditEvent]:
    """Entries matching ``wanted``, newest first; ``before_id`` pages back through older ones."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc())
    if wanted.actor:
        query = query.where(AuditEvent.actor == wanted.actor)
    if wanted.action:
        query = query.where(col(AuditEvent.action).startswith(wanted.action) if wanted.action.endswith(".")
                            else AuditEvent.action == wanted.action)
    if wanted.consultation_id is not None:
        query = query.where(AuditEvent.consultation_id == wanted.consultation_id)
    if wanted.subject:
        query = query.where(AuditEvent.subject == wanted.subject)
    if wanted.since is not None:
        query = query.where(AuditEvent.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEvent.at < wanted.until)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if limit is not None:
        query = query.limit(limit)
    async with database.session() as session:
        return list((await session.exec(query)).all())


def to_json(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.id, "at": event.at.isoformat(), "actor": event.actor, "action": event.action,
            "consultation_id": event.consultation_id, "subject": event.subject, "detail": json.loads(event.detail),
            "prev_hash": event.prev_hash, "hash": event.hash}
