"""The purge: deletes the recordings, attachments and signed reports' PDFs whose retention has run out, for
good, never one under a legal hold, and says what it deleted in the audit trail.

Each item goes in its own transaction: the row is marked purged, its data key row deleted and one
``retention.purged`` entry appended, together or not at all; only then are its files removed. A run cut off
anywhere leaves either an item untouched (the next run purges it) or an item whose key is already gone (its
file unreadable; the next run removes the file). A row another runner purged first is skipped, so two runs at
once purge each item once, and a second run finds nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..db import Database
from ..models import (
    Attachment,
    Consultation,
    ConsultationReport,
    DataKey,
    LegalHold,
    Patient,
    Recording,
    Referral,
    ReportRendition,
    utcnow,
)
from . import policy
from .policy import Holds, Item, Kind, Periods, Verdict

log = logging.getLogger(__name__)

ACTOR = "system"
STREAMS_DIR = "streams/v1"  # the players' per-participant copies of a recording (consultations/playback.py)


@dataclass
class Outcome:
    """What one run did (or, dry, would do)."""

    now: datetime
    dry_run: bool
    purged: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    files_removed: int = 0


async def active_holds(session: AsyncSession) -> Holds:
    rows = (await session.exec(select(LegalHold).where(col(LegalHold.released_at).is_(None)))).all()
    return Holds(frozenset(r.patient_id for r in rows if r.patient_id is not None),
                 frozenset(r.consultation_id for r in rows if r.consultation_id is not None))


async def candidates(session: AsyncSession, periods: Periods, now: datetime) -> list[Item]:
    """Unpurged items old enough that their period may have run out (the policy decides exactly)."""
    items: list[Item] = []
    recordings = await session.exec(
        select(Recording, Consultation.patient_id).join(Consultation, col(Consultation.id) == Recording.consultation_id)
        .where(col(Recording.purged_at).is_(None), Recording.started_at <= now - periods.recordings)
        .order_by(col(Recording.id)))
    for row, patient_id in recordings.all():
        assert row.id is not None
        items.append(Item(Kind.RECORDING, row.id, row.ended_at or row.started_at, patient_id, row.consultation_id))
    attachments = await session.exec(
        select(Attachment, Referral).join(Referral, col(Referral.id) == Attachment.referral_id)
        .where(col(Attachment.purged_at).is_(None), Attachment.uploaded_at <= now - periods.records)
        .order_by(col(Attachment.id)))
    for row, referral in attachments.all():
        assert row.id is not None
        items.append(Item(Kind.ATTACHMENT, row.id, max(row.uploaded_at, referral.updated_at), referral.patient_id,
                          referral.consultation_id))
    reports = await session.exec(
        select(ConsultationReport, Referral).join(Referral, col(Referral.id) == ConsultationReport.referral_id)
        .where(col(ConsultationReport.purged_at).is_(None), ConsultationReport.created_at <= now - periods.records)
        .order_by(col(ConsultationReport.id)))
    for report, referral in reports.all():
        assert report.id is not None
        items.append(Item(Kind.REPORT, report.id, max(report.created_at, referral.updated_at), referral.patient_id,
                          referral.consultation_id))
    return items


Row = Recording | Attachment | ConsultationReport
MODELS: dict[Kind, type[Row]] = {Kind.RECORDING: Recording, Kind.ATTACHMENT: Attachment,
                                 Kind.REPORT: ConsultationReport}


async def lock_subjects(session: AsyncSession, patient_id: int | None, consultation_id: int | None) -> None:
    """Lock the patient's and the consultation's rows (in that order) until the transaction ends, as placing a
    hold does: a hold placed while an item is being purged either is seen by the purge or waits for it. (On
    PostgreSQL; SQLite has one writer at a time, and a purge whose read of the holds went stale fails to write.)"""
    if patient_id is not None:
        await session.exec(select(Patient.id).where(Patient.id == patient_id).with_for_update())
    if consultation_id is not None:
        await session.exec(select(Consultation.id).where(Consultation.id == consultation_id).with_for_update())


def _describe(item: Item, periods: Periods) -> dict[str, Any]:
    return {"kind": item.kind.value, "id": item.id, "patient_id": item.patient_id,
            "consultation_id": item.consultation_id, "anchor": item.anchor.isoformat(),
            "expired_at": policy.expires_at(item, periods).isoformat(),
            "period_days": periods.of(item.kind).days}


def files_of(root: Path, kind: Kind, row: Row, others: list[str] = []) -> list[Path]:  # noqa: B006 (never changed)
    """Every file an item keeps on disk: a recording's segment (final, and live if a crash left one) and its
    players' copies; an attachment's file; a report version's record copy and ``others`` (its renditions')."""
    if kind is Kind.ATTACHMENT:
        return [root / row.file]
    if kind is Kind.REPORT:
        return [root / row.file, *(root / file for file in others)]
    stem = row.file.removesuffix(".rec")
    return [root / row.file, root / f"{stem}.live", root / STREAMS_DIR / str(row.id)]


def _remove(paths: list[Path]) -> int:
    removed = 0
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        elif path.exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def _purge_one(database: Database, root: Path, item: Item, periods: Periods, now: datetime) -> int | None:
    """Purge one item in its own transaction, then remove its files (how many); None if it was not ours to purge
    (another runner did it first, or a hold was placed on it since it was listed)."""
    model = MODELS[item.kind]
    async with database.session() as session:
        row = await session.get(model, item.id)
        if row is None or row.purged_at is not None:
            return None
        await lock_subjects(session, item.patient_id, item.consultation_id)
        if (await active_holds(session)).cover(item):
            return None
        key_id = row.data_key_id
        table = model.__table__  # type: ignore[attr-defined]
        marked = await session.exec(  # type: ignore[call-overload]
            sa.update(table).where(table.c.id == item.id, table.c.purged_at.is_(None))
            .values(purged_at=now, data_key_id=None))
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            return None
        if key_id is not None:
            await session.exec(sa.delete(DataKey).where(col(DataKey.id) == key_id))  # type: ignore[call-overload]
        others = await _renditions(session, item)
        sha256 = row.pdf_sha256 if isinstance(row, ConsultationReport) else row.sha256
        detail = _describe(item, periods) | {
            "file": row.file, "sha256": sha256, "reason": "retention period ended",
            # A file from before per-file keys is sealed under the deployment's key: a backup of it stays readable.
            "key": "own key deleted" if key_id is not None else "deployment key (backups stay readable)"}
        if item.kind is Kind.RECORDING:
            entry = audit.Entry(ACTOR, "retention.purged", item.consultation_id, f"recording:{item.id}", detail)
        elif item.kind is Kind.REPORT:
            entry = audit.Entry(ACTOR, "retention.purged", item.consultation_id, f"report:{item.id}", detail)
        else:
            entry = audit.Entry(ACTOR, "retention.purged", None, f"referral:{row.referral_id}", detail)  # type: ignore[union-attr]
        audit.with_commit(session, entry)
        await session.commit()
    return await asyncio.to_thread(_remove, files_of(root, item.kind, row, others))


async def _renditions(session: AsyncSession, item: Item) -> list[str]:
    """A report version's files in its other languages (nothing for other kinds)."""
    if item.kind is not Kind.REPORT:
        return []
    return list((await session.exec(select(ReportRendition.file).where(ReportRendition.report_id == item.id))).all())


async def _sweep(database: Database, root: Path) -> int:
    """Remove the files of items already purged whose removal a cut-off run did not reach."""
    removed = 0
    async with database.session() as session:
        recordings = (await session.exec(select(Recording).where(col(Recording.purged_at).is_not(None)))).all()
        attachments = (await session.exec(select(Attachment).where(col(Attachment.purged_at).is_not(None)))).all()
        reports = (await session.exec(select(ConsultationReport)
                                      .where(col(ConsultationReport.purged_at).is_not(None)))).all()
        others = {r.id: await _renditions(session, Item(Kind.REPORT, r.id, r.created_at, None, None))
                  for r in reports if r.id is not None}
    kinds: list[tuple[Kind, Sequence[Row]]] = [(Kind.RECORDING, recordings), (Kind.ATTACHMENT, attachments),
                                               (Kind.REPORT, reports)]
    for kind, rows in kinds:
        for row in rows:
            removed += await asyncio.to_thread(_remove, files_of(root, kind, row, others.get(row.id or 0, [])
                                                                  if kind is Kind.REPORT else []))
    return removed


async def run(database: Database, root: Path, periods: Periods, *, now: datetime | None = None,
              dry_run: bool = False) -> Outcome:
    """One purge at ``now`` (the real clock unless given): what expired and is not held goes; held items are
    reported, never touched. A dry run changes nothing and reports what a real one would purge."""
    now = now or utcnow()
    outcome = Outcome(now, dry_run)
    async with database.session() as session:
        items = await candidates(session, periods, now)
        holds = await active_holds(session)
    verdicts = policy.sort(items, periods, holds, now)
    outcome.held = [_describe(i, periods) for i in verdicts[Verdict.HELD]]
    for item in verdicts[Verdict.PURGE]:
        if dry_run:
            outcome.purged.append(_describe(item, periods))
        elif (removed := await _purge_one(database, root, item, periods, now)) is not None:
            outcome.purged.append(_describe(item, periods))
            outcome.files_removed += removed
    if not dry_run:
        outcome.files_removed += await _sweep(database, root)
    if outcome.purged or outcome.held:
        log.info("retention %s: %d purged, %d held", "dry run" if dry_run else "run", len(outcome.purged),
                 len(outcome.held))
    return outcome


def periods_of(recordings_days: int, records_days: int) -> Periods:
    return Periods(timedelta(days=recordings_days), timedelta(days=records_days))
