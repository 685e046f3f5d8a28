"""The audit trail: who did what to which consultation, in a hash chain that shows any later change.

Each entry's hash covers its fields and the previous entry's hash; ``check`` walks the chain.

An entry is written in the same transaction as the change it records (``with_commit``), so the two
land together or not at all: a crash can lose neither one alone. Appending holds the chain's lock
(a transaction-scoped advisory lock on PostgreSQL, the database's write lock on SQLite) from reading
the chain's end until the commit, so concurrent writers extend it one after another; the unique
``prev_hash`` column is the backstop if anything ever bypassed that lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database, SyncSession
from ..models import AuditEvent, utcnow
from ..outputs import Instant, Out

log = logging.getLogger(__name__)

GENESIS = "0" * 64
PENDING = "audit.pending"  # session.info key: entries the next commit writes
APPENDED = "audit.appended"  # session.info key: how many entries the transaction under way appended
ON_APPENDED = "audit.on_appended"  # session.info key: told how many entries each commit appended
CHAIN_LOCK = 0x7E1E_A0D1  # PostgreSQL advisory lock key for appending to the chain


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, consultation_id: int | None, subject: str,
               detail: str) -> str:
    fields = [prev_hash, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action, consultation_id,
              subject, detail]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """What one audit entry says, before it has a place in the chain."""

    actor: str
    action: str
    consultation_id: int | None = None
    subject: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def after(self, prev: str) -> AuditEvent:
        """This entry as the chain's next link, after the entry whose hash is ``prev``."""
        text = json.dumps(self.detail, sort_keys=True, ensure_ascii=False)
        at = utcnow()
        return AuditEvent(at=at, actor=self.actor, action=self.action, consultation_id=self.consultation_id,
                          subject=self.subject, detail=text, prev_hash=prev,
                          hash=entry_hash(prev, at, self.actor, self.action, self.consultation_id, self.subject, text))


def with_commit(session: AsyncSession, entry: Entry | Callable[[], Entry]) -> None:
    """Have the session's next commit write ``entry`` at the end of the chain, in the same transaction.

    Pass a callable to name what only exists once the change is flushed (a new row's id): it is called
    at commit time, after the flush. If the transaction rolls back, the entry goes with it."""
    if not session.in_transaction():
        session.sync_session.begin()  # so that a rollback, even before any SQL, takes the entry with it
    session.info.setdefault(PENDING, []).append(entry)


def count_appends(database: Database, listener: Callable[[int], None]) -> None:
    """Tell ``listener`` how many entries each commit through ``database`` appended to the chain (the server's
    metrics count them): only commits that landed, never a transaction rolled back. One listener per
    database: an app sharing another's Database takes the counting over."""
    database.session_info[ON_APPENDED] = listener


async def record(database: Database, *, actor: str, action: str, consultation_id: int | None = None,
                 subject: str = "", detail: dict[str, Any] | None = None) -> None:
    """Append one entry on its own: for what changes nothing else (a view, an export, a login)."""
    async with database.session() as session:
        with_commit(session, Entry(actor, action, consultation_id, subject, detail or {}))
        await session.commit()


class Batcher:
    """Appends entries that change nothing else, many to a transaction, beside the caller.

    For what happens in crowds, such as each admission to a room: a transaction per entry queues every
    writer on the chain's lock and the connection pool (2000 joins held 2000 tasks, each with a session
    waiting its turn, for seconds after the joins were served). ``add`` only queues the entry; one task
    writes whatever is queued in a single transaction, in the order added, then whatever came meanwhile.
    A failed write is retried; entries still not written after the last try are logged, one line each.
    ``close`` (at shutdown, before the database closes) writes what is left."""

    MAX_BATCH = 100
    RETRY_SECONDS = (0.2, 1.0, 3.0)

    def __init__(self, database: Database) -> None:
        self.database = database
        self._queued: list[Entry] = []
        self._writer: asyncio.Task[None] | None = None

    def add(self, entry: Entry) -> None:
        self._queued.append(entry)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def flush(self) -> None:
        """Until every entry added so far is written (or given up on)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    close = flush

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:self.MAX_BATCH], self._queued[self.MAX_BATCH:]
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[Entry]) -> None:
        for attempt, pause in enumerate((*self.RETRY_SECONDS, None)):
            try:
                async with self.database.session() as session:
                    for entry in batch:
                        with_commit(session, entry)
                    await session.commit()
                return
            except Exception as exc:  # noqa: BLE001  (the database's errors vary by driver; all are retried)
                if pause is None:
                    for entry in batch:
                        log.error("audit entry not written after %d tries (%r): %s %s %s %s %s", attempt + 1, exc,
                                  entry.actor, entry.action, entry.consultation_id, entry.subject,
                                  json.dumps(entry.detail, sort_keys=True))
                    return
                await asyncio.sleep(pause)


def _write_pending(session: Session) -> None:
    """Before a commit: the pending entries, appended under the chain's lock."""
    pending: list[Entry | Callable[[], Entry]] = session.info.pop(PENDING, [])
    if not pending:
        return
    session.flush()  # the change first, so all its row locks are held before the chain's lock is asked for
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    else:  # SQLite: any write takes the database's write lock; this one changes nothing
        session.execute(sa.text("UPDATE audit_event SET id = id WHERE 0 = 1"))
    prev = session.execute(sa.select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)).scalar()
    prev = prev or GENESIS
    for item in pending:
        event = (item() if callable(item) else item).after(prev)
        session.add(event)
        prev = event.hash
    session.info[APPENDED] = session.info.get(APPENDED, 0) + len(pending)


def _tell_appended(session: Session) -> None:
    appended = session.info.pop(APPENDED, 0)
    if appended and (listener := session.info.get(ON_APPENDED)) is not None:
        listener(appended)


def _forget_pending(session: Session, _transaction: object) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(APPENDED, None)


sa.event.listen(SyncSession, "before_commit", _write_pending)
sa.event.listen(SyncSession, "after_commit", _tell_appended)
sa.event.listen(SyncSession, "after_soft_rollback", _forget_pending)


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


class AuditEntry(Out):
    """One entry of the audit trail: who (``actor``) did what (``action``) to what (``subject``), when, with
    the action's own facts (``detail``, an object whose keys depend on the action), and its place in the
    hash chain."""

    id: int
    at: Instant
    actor: str
    action: str
    consultation_id: int | None
    subject: str
    detail: Any
    prev_hash: str
    hash: str


def shown(event: AuditEvent) -> AuditEntry:
    assert event.id is not None
    return AuditEntry(id=event.id, at=event.at, actor=event.actor, action=event.action,
                      consultation_id=event.consultation_id, subject=event.subject, detail=json.loads(event.detail),
                      prev_hash=event.prev_hash, hash=event.hash)


def to_json(event: AuditEvent) -> dict[str, Any]:
    return shown(event).model_dump(mode="json")
