"""Recordings' metadata and consent on record: what the media relay writes through, and what the API reads.

Files live under the recordings directory, sealed (media/sealed.py); the database keeps who was in each
recording, on which consents it relied, its duration and SHA-256. Every start, end and access goes into
the audit trail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from media.recorder import Finished, SegmentResult, finalize
from media.session import SegmentFile
from signaling.grants import consultation_of_room
from signaling.room import Room

from ..audit import trail as audit
from ..consent import records as consents
from ..db import Database
from ..models import ConsentPurpose, Recording, RecordingStatus, utcnow

log = logging.getLogger(__name__)


async def consent_on_record(session: AsyncSession, consultation_id: int, identity: str) -> int | None:
    """The id of the identity's standing recording consent in this consultation, or None."""
    found = await consents.standing(session, ConsentPurpose.RECORDING, identity=identity,
                                    consultation_id=consultation_id)
    return found.id if found is not None else None


LIVE, FINAL = ".live", ".rec"


def segment_file(directory: Path, row: Recording) -> SegmentFile:
    """Where a recording's segment is written (live) and kept (final)."""
    assert row.id is not None
    stem = row.file.removesuffix(FINAL)
    return SegmentFile(row.id, directory / f"{stem}{LIVE}", directory / row.file)


def _keep(row: Recording, finished: Finished, status: RecordingStatus) -> None:
    row.status, row.ended_at = status, utcnow()
    row.duration, row.size, row.sha256 = finished.duration, finished.size, finished.sha256


class DatabaseRecordingStore:
    """The relay's RecordingStore: a row per segment, its file under ``directory``."""

    def __init__(self, database: Database, directory: Path) -> None:
        self.database, self.directory = database, directory

    async def begin(self, room: Room) -> SegmentFile:
        consultation_id = consultation_of_room(room.room_id)
        starter = room.member(room.recording_by or "")
        seated = [m for m in room.members.values() if m.seated]
        name = f"{consultation_id}/{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        async with self.database.session() as session:
            row = Recording(
                consultation_id=consultation_id, file=f"{name}{FINAL}", started_by=starter.identity if starter else "",
                participants=json.dumps([{"participant_id": m.id, "identity": m.identity,
                                          "name": m.participant.name, "role": m.participant.role} for m in seated],
                                        ensure_ascii=False),
                consent_ids=json.dumps(room.relied_on()))
            session.add(row)
            audit.with_commit(session, lambda: audit.Entry(row.started_by, "recording.started", consultation_id,
                                                           f"recording:{row.id}",
                                                           {"consents": json.loads(row.consent_ids)}))
            await session.commit()
            await session.refresh(row)
        assert row.id is not None
        return segment_file(self.directory, row)

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None:
        async with self.database.session() as session:
            row = await session.get(Recording, segment.recording_id)
            if row is None:
                return
            if not result.tracks and result.error is None:
                # Nothing reached the file (everyone left, or stopped before media flowed): no recording.
                await session.delete(row)
                audit.with_commit(session, audit.Entry("system", "recording.discarded", row.consultation_id,
                                                       f"recording:{segment.recording_id}"))
                await session.commit()
                segment.live_path.unlink(missing_ok=True)
                return
            row.tracks = json.dumps([vars(t) for t in result.tracks])
            if finished is None:
                row.status, row.ended_at = RecordingStatus.FAILED, utcnow()
            else:
                _keep(row, finished, RecordingStatus.READY if finished.complete else RecordingStatus.INTERRUPTED)
            session.add(row)
            audit.with_commit(session, audit.Entry("system", "recording.finished", row.consultation_id,
                                                   f"recording:{segment.recording_id}",
                                                   {"status": row.status.value,
                                                    "sha256": finished.sha256 if finished else None}))
            await session.commit()


async def recover_interrupted(database: Database, directory: Path, key: bytes) -> int:
    """Finish recordings a crash cut off: what was flushed before it becomes a playable, seekable file."""
    recovered = 0
    async with database.session() as session:
        rows = (await session.exec(select(Recording).where(Recording.status == RecordingStatus.RECORDING))).all()
    for row in rows:
        file = segment_file(directory, row)
        if not file.live_path.exists():
            continue  # written by another node, or nothing was ever flushed
        try:
            finished = await asyncio.to_thread(finalize, file.live_path, file.final_path, key)
        except Exception:
            log.exception("recording %s could not be recovered", row.id)
            finished = None
        status = RecordingStatus.INTERRUPTED if finished is not None else RecordingStatus.FAILED
        async with database.session() as session:
            fresh = await session.get(Recording, row.id)
            assert fresh is not None
            if finished is None:
                fresh.status, fresh.ended_at = status, utcnow()
            else:
                _keep(fresh, finished, status)
                fresh.tracks = json.dumps(finished.streams)  # whose track is whose died with the process
            session.add(fresh)
            audit.with_commit(session, audit.Entry("system", "recording.recovered", row.consultation_id,
                                                   f"recording:{row.id}", {"status": status.value}))
            await session.commit()
        recovered += 1
    return recovered
