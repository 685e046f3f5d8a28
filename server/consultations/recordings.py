"""Recordings' metadata and consent on record: what the media relay writes through, and what people may
list, play and consent to.

Files live under the recordings directory, sealed (media/sealed.py); the database keeps who was in each
recording, on which consents it relied, its duration and SHA-256. Every start, end and access goes into
the audit trail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydantic
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from media.errors import TamperedRecording
from media.recorder import Finished, SegmentResult, container_format
from media.sealed import SealedReader
from media.session import SegmentFile
from signaling.grants import consultation_of_room
from signaling.room import Room

from .. import storage
from ..audit import trail as audit
from ..consent import records as consents
from ..consent.records import Consenter, How, Scope
from ..db import Database
from ..errors import N_, Forbidden, NotFound, Unavailable
from ..models import Consent, ConsentPurpose, ConsentSubject, Recording, RecordingStatus, User, utcnow
from ..parsing import Id
from ..permissions import Principal, can_access_recordings, can_join_consultation
from ..retention import data_keys
from .room_notifier import RoomNotifier
from .service import ConsultationView, visible

log = logging.getLogger(__name__)


async def consent_on_record(session: AsyncSession, consultation_id: int, identity: str) -> int | None:
    """The id of the identity's standing recording consent in this consultation, or None."""
    found = await consents.standing(session, ConsentPurpose.RECORDING, identity=identity,
                                    consultation_id=consultation_id)
    return found.id if found is not None else None


LIVE, FINAL = ".live", ".rec"


def segment_file(directory: Path, row: Recording, key: bytes | None = None) -> SegmentFile:
    """Where a recording's segment is written (live) and kept (final), and the key it is sealed under."""
    assert row.id is not None
    stem = row.file.removesuffix(FINAL)
    return SegmentFile(row.id, directory / f"{stem}{LIVE}", directory / row.file, key)


def live_path(directory: Path, row: Recording) -> Path:
    return directory / f"{row.file.removesuffix(FINAL)}{LIVE}"


async def key_of(session: AsyncSession, row: Recording, master: bytes) -> bytes:
    """The key a recording's file is sealed under (404 once the purge has deleted it)."""
    if row.purged_at is not None:
        raise NotFound(N_("This recording was deleted when its retention period ended."))
    try:
        return await data_keys.key_of(session, master, row.data_key_id)
    except data_keys.KeyShredded:
        raise NotFound(N_("This recording was deleted when its retention period ended.")) from None


def keep_finished(row: Recording, finished: Finished, status: RecordingStatus) -> None:
    row.status, row.ended_at = status, utcnow()
    row.duration, row.size, row.sha256 = finished.duration, finished.size, finished.sha256


class DatabaseRecordingStore:
    """The relay's RecordingStore: a row per segment, its file under ``directory``, sealed under a data key
    of its own when the store is given the deployment's ``key`` to keep it under."""

    def __init__(self, database: Database, directory: Path, key: bytes | None = None, *,
                 node: str | None = None) -> None:
        """``node``: this node's run (the hub's node id), named on each recording it writes, so that if it is
        lost another node finishes them (recovery.py)."""
        self.database, self.directory, self.key, self.node = database, directory, key, node
        # What this node is recording now and has kept so far, for its metrics (read at each scrape).
        self.in_progress: set[int] = set()  # ids of the segments begun here and not finished yet
        self.bytes_kept = 0  # bytes of the finished segments' files kept since start-up

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
                consent_ids=json.dumps(room.relied_on()), node=self.node)
            own = data_keys.new_key() if self.key is not None else None
            if own is not None and self.key is not None:
                row.data_key_id = await data_keys.keep(session, self.key, own)
            session.add(row)
            audit.with_commit(session, lambda: audit.Entry(row.started_by, "recording.started", consultation_id,
                                                           f"recording:{row.id}",
                                                           {"consents": json.loads(row.consent_ids)}))
            await session.commit()
            await session.refresh(row)
        assert row.id is not None
        self.in_progress.add(row.id)
        return segment_file(self.directory, row, own)

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None:
        self.in_progress.discard(segment.recording_id)
        if finished is not None and result.tracks:
            self.bytes_kept += finished.size
        async with self.database.session() as session:
            row = await session.get(Recording, segment.recording_id)
            if row is None or row.status is not RecordingStatus.RECORDING or row.node != self.node:
                return  # another node took it for lost, and finished it (recovery.py)
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
                keep_finished(row, finished,
                              RecordingStatus.READY if finished.complete else RecordingStatus.INTERRUPTED)
            session.add(row)
            audit.with_commit(session, audit.Entry("system", "recording.finished", row.consultation_id,
                                                   f"recording:{segment.recording_id}",
                                                   {"status": row.status.value,
                                                    "sha256": finished.sha256 if finished else None}))
            await session.commit()


# ---- what people do with recordings: consent, list, play ----


class ConsentAnswer(pydantic.BaseModel):
    """Yes or no to being recorded in one consultation."""

    model_config = pydantic.ConfigDict(extra="forbid")

    given: pydantic.StrictBool  # a consent is a record: "yes" or 1 is not an answer
    template_id: Id | None = None  # the text shown; the current one if left out


async def answer_consent(database: Database, rooms: RoomNotifier | None, consultation_id: int, consenter: Consenter,
                         answer: ConsentAnswer, *, locale: str, how: How) -> Consent | None:
    """Give or withdraw ``consenter``'s own recording consent in this consultation (the room is told at
    once). Returns the consent given, or the one withdrawn, or None when there was none to withdraw. The
    caller has established who ``consenter`` is: a clinician through ``clinician_consent``, a patient
    through their invitation link."""
    scope = Scope(consultation_id=consultation_id)
    if answer.given:
        consent, _ = await consents.give_clicked(database, rooms, ConsentPurpose.RECORDING, consenter, scope,
                                                 answer.template_id, locale=locale, how=how)
        return consent
    return await consents.withdraw_own(database, rooms, ConsentPurpose.RECORDING, consenter, scope)


async def clinician_consent(database: Database, rooms: RoomNotifier | None, who: Principal, consultation_id: int,
                            answer: ConsentAnswer, *, locale: str, how: How) -> Consent | None:
    """A clinician who may join the consultation gives or withdraws consent to being recorded in it."""
    async with database.session() as session:
        await visible(session, who, consultation_id, can_join_consultation)
        user = await session.get(User, who.user_id)
    assert user is not None
    consenter = Consenter(ConsentSubject.PARTICIPANT, f"user:{who.user_id}", user.display_name, user_id=who.user_id)
    return await answer_consent(database, rooms, consultation_id, consenter, answer, locale=locale, how=how)


def media_type(row: Recording) -> tuple[str, str]:
    """(Content-Type, file extension): WebM for VP8 rooms, Matroska when a track is H.264."""
    codecs = {str(track.get("codec", "")).lower() for track in json.loads(row.tracks)}
    if container_format(codecs) == "matroska":
        return "video/x-matroska", "mkv"
    return "video/webm", "webm"


async def recordings_visible(session: AsyncSession, who: Principal, consultation_id: int) -> ConsultationView:
    """The consultation, if the caller may access its recordings (403 or 404 otherwise): its participants and
    auditors, and on another hospital than the patient's only while the patient's consent to sharing their
    records stands (403 ``records-withheld``): a recording is the patient's record, their face and voice."""
    view = await visible(session, who, consultation_id, can_access_recordings)
    if view.withheld:
        raise Forbidden(N_("The patient has not consented to sharing their records with your hospital."),
                        code="records-withheld")
    return view


async def list_for(database: Database, who: Principal, consultation_id: int) -> list[Recording]:
    """A consultation's recordings, oldest first, to those who may access them (``recordings_visible``)."""
    async with database.session() as session:
        await recordings_visible(session, who, consultation_id)
        return list((await session.exec(select(Recording).where(Recording.consultation_id == consultation_id)
                                        .order_by(col(Recording.id)))).all())


@dataclass(frozen=True)
class Playback:
    """A recording opened for one viewer: its decrypting reader and the bytes to send, already audited."""

    recording: Recording
    reader: SealedReader
    start: int
    end: int  # exclusive
    media_type: str
    extension: str


async def play(database: Database, who: Principal, recording_id: int, *, root: Path, key: bytes,
               span: Callable[[int], tuple[int, int]], download: bool) -> Playback:
    """Open a finished recording for those who may access it, and audit the access (viewed or
    downloaded, with the byte range) before a byte is sent. ``span`` says which bytes are asked for,
    given the recording's size (raising if none can be sent); nothing is audited if it refuses."""
    async with database.session() as session:
        row = await session.get(Recording, recording_id)
        if row is None:
            raise NotFound(N_("No such recording."))
        await recordings_visible(session, who, row.consultation_id)
        own = await key_of(session, row, key)
    if row.status not in (RecordingStatus.READY, RecordingStatus.INTERRUPTED):
        raise Unavailable(N_("This recording is not finished yet."), code="recording-not-ready")
    try:
        reader = await asyncio.to_thread(SealedReader, root / row.file, own)
    except OSError as exc:
        raise await storage.unreadable(root, exc, N_("The recording's file is missing on this server.")) from None
    except TamperedRecording:
        raise Unavailable(N_("The recording failed its integrity check."), code="recording-tampered") from None
    start, end = span(reader.size)
    await audit.record(database, actor=f"user:{who.user_id}",
                       action="recording.downloaded" if download else "recording.viewed",
                       consultation_id=row.consultation_id, subject=f"recording:{row.id}",
                       detail={"range": [start, end]})
    return Playback(row, reader, start, end, *media_type(row))
