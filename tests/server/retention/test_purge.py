"""The purge, with the clock moved forward: expired recordings and attachments go for good (file and key, so a
backup copy cannot be read), held ones stay, each purge is one audit entry in a chain that still holds, and a
second run, or a run cut off half-way and run again, does no harm."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from media.errors import TamperedRecording
from media.sealed import SealedReader, SealedWriter
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.audit import trail as audit
from server.consultations import recordings
from server.consultations.recordings import DatabaseRecordingStore
from server.errors import NotFound
from server.models import (
    Attachment,
    AuditEvent,
    Consultation,
    DataKey,
    Recording,
    RecordingStatus,
    User,
    utcnow,
)
from server.permissions import Principal
from server.retention import holds, purge
from server.retention.holds import PlaceHold, ReleaseHold
from server.settings import Settings
from signaling.grants import room_id_for
from signaling.room import Room

from ...conftest import _start, login
from ..api.test_attachments import PDF, _upload
from ..api.test_referrals import create, ids
from ..consultations.test_recordings import stored_recording

MEDIA = bytes(range(256)) * 40
PERIODS = purge.periods_of(3 * 365, 15 * 365)
LATER = timedelta(days=3 * 365 + 1)  # the clock moved past a recording's three years


async def who(client: TestClient, username: str) -> Principal:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def recorded(client: TestClient, consultation_id: int) -> Recording:
    """A finished recording made through the relay's store: sealed under a data key of its own."""
    root: Path = client.app[SETTINGS].recordings_dir
    store = DatabaseRecordingStore(client.app[DATABASE], root, client.app[RECORDING_KEY])
    segment = await store.begin(Room(room_id_for(consultation_id), max_participants=8))
    assert segment.key is not None and segment.key != client.app[RECORDING_KEY]
    segment.final_path.parent.mkdir(parents=True, exist_ok=True)
    writer = SealedWriter(segment.final_path, segment.key)
    writer.write(MEDIA)
    writer.close()
    async with client.app[DATABASE].session() as session:
        row = await session.get(Recording, segment.recording_id)
        assert row is not None
        row.status, row.ended_at, row.size = RecordingStatus.READY, utcnow(), len(MEDIA)
        row.tracks = json.dumps([{"codec": "VP8"}])
        session.add(row)
        await session.commit()
    return row


async def second_consultation(client: TestClient) -> int:
    """Another consultation of the demo patient's hospital, without a patient."""
    async with client.app[DATABASE].session() as session:
        first = await session.get(Consultation, 1)
        assert first is not None
        other = Consultation(title="Second", hospital_id=first.hospital_id, planned_start=first.planned_start,
                             created_by=first.created_by)
        session.add(other)
        await session.commit()
        assert other.id is not None
        return other.id


async def row_of(client: TestClient, model: type, row_id: int):  # type: ignore[no-untyped-def]
    async with client.app[DATABASE].session() as session:
        return await session.get(model, row_id)


async def purges(client: TestClient) -> list[AuditEvent]:
    async with client.app[DATABASE].session() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == "retention.purged")
                                        .order_by(col(AuditEvent.id)))).all())


async def run(client: TestClient, later: timedelta = LATER, **kwargs) -> purge.Outcome:  # type: ignore[no-untyped-def]
    return await purge.run(client.app[DATABASE], client.app[SETTINGS].recordings_dir, PERIODS,
                           now=utcnow() + later, **kwargs)


async def test_an_expired_recording_goes_for_good_and_a_held_one_stays(client: TestClient) -> None:
    """Three years on: the recording's file and its key row are gone, a backup copy taken before cannot be
    decrypted with the deployment's key (nor with anything left in the database), the recording held by a
    legal hold plays as before, the purge is one audit entry naming what and why, the chain still verifies,
    and a second run does nothing."""
    database, root, master = client.app[DATABASE], client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY]
    expired = await recorded(client, 1)
    held_consultation = await second_consultation(client)
    kept = await recorded(client, held_consultation)
    auditor = await who(client, "auditor")
    async with database.session() as session:
        await holds.place(session, auditor, PlaceHold(consultation_id=held_consultation, reason="Complaint 2026-17"))
    backup = root.parent / "backup.rec"
    shutil.copy(root / expired.file, backup)
    assert SealedReader(backup, (await _own_key(client, expired))).read_all() == MEDIA, "the copy was readable"

    assert (await run(client, timedelta(days=3 * 365 - 2))).purged == [], "not a day early"
    outcome = await run(client)

    assert [(p["kind"], p["id"]) for p in outcome.purged] == [("recording", expired.id)]
    assert [(p["kind"], p["id"]) for p in outcome.held] == [("recording", kept.id)]
    gone = await row_of(client, Recording, expired.id)
    assert gone.purged_at is not None and gone.data_key_id is None
    assert await row_of(client, DataKey, expired.data_key_id) is None, "its key row is deleted"
    assert not (root / expired.file).exists()
    with pytest.raises(TamperedRecording):
        SealedReader(backup, master).read_all()
    async with database.session() as session:
        for key in (await session.exec(select(DataKey))).all():  # whatever key is left opens nothing of it
            with pytest.raises(TamperedRecording):
                SealedReader(backup, recordings.data_keys.unwrap(master, key.wrapped)).read_all()
    with pytest.raises(NotFound):
        await recordings.play(database, auditor, expired.id, root=root, key=master, span=lambda n: (0, n),
                              download=False)

    still = await recordings.play(database, auditor, kept.id, root=root, key=master, span=lambda n: (0, n),
                                  download=False)
    assert still.reader.read_all() == MEDIA and (await row_of(client, Recording, kept.id)).purged_at is None

    entries = await purges(client)
    assert len(entries) == 1 and entries[0].subject == f"recording:{expired.id}" and entries[0].consultation_id == 1
    detail = json.loads(entries[0].detail)
    assert detail["reason"] == "retention period ended" and detail["key"] == "own key deleted"
    assert detail["file"] == expired.file and detail["period_days"] == 3 * 365
    assert audit.check(await audit.trail(database)) is None

    again = await run(client)
    assert again.purged == [] and again.files_removed == 0 and len(await purges(client)) == 1


async def _own_key(client: TestClient, row: Recording) -> bytes:
    async with client.app[DATABASE].session() as session:
        return await recordings.key_of(session, row, client.app[RECORDING_KEY])


async def test_a_released_hold_lets_the_next_run_purge_and_a_patient_hold_keeps_every_consultation(
        client: TestClient) -> None:
    """A hold on the patient keeps the recordings of their consultation; once released, the next run purges."""
    database = client.app[DATABASE]
    row = await recorded(client, 1)
    admin = await who(client, "admin")
    async with database.session() as session:
        hold = await holds.place(session, admin, PlaceHold(patient_id=1, reason="Lawsuit"))
    assert (await run(client)).purged == []
    async with database.session() as session:
        await holds.release(session, admin, hold.id, ReleaseHold(reason="Settled"))
    assert [p["id"] for p in (await run(client)).purged] == [row.id]


async def test_an_attachment_goes_after_fifteen_years_with_its_key(client: TestClient) -> None:
    """An attachment is kept with the consultation's records for 15 years (not the recordings' 3), sealed under
    its own key; then its file and key go, and its download answers 404."""
    referral = await create(client, await ids(client))
    status, attached = await _upload(client, referral["id"], PDF, "ecg.pdf")
    assert status == 201, attached
    row = await row_of(client, Attachment, attached["id"])
    assert row.data_key_id is not None, "sealed under a key of its own"
    root = client.app[SETTINGS].recordings_dir

    assert (await run(client, LATER)).purged == []
    outcome = await run(client, timedelta(days=15 * 365 + 1))
    assert [(p["kind"], p["id"]) for p in outcome.purged] == [("attachment", row.id)]
    assert not (root / row.file).exists() and await row_of(client, DataKey, row.data_key_id) is None
    entry = (await purges(client))[-1]
    assert entry.subject == f"referral:{referral['id']}" and json.loads(entry.detail)["id"] == row.id
    gone = await client.get(attached["url"], headers=await login(client, "dr.li"))
    assert gone.status == 404


async def test_a_file_from_before_per_file_keys_still_plays_and_is_purged_with_a_warning(client: TestClient) -> None:
    """A recording sealed under the deployment's key (no data key row) reads as before; its purge deletes the
    file and says in the audit trail that a backup of it stays readable."""
    legacy = await stored_recording(client)
    assert legacy.data_key_id is None
    auditor = await who(client, "auditor")
    root, master = client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY]
    playback = await recordings.play(client.app[DATABASE], auditor, legacy.id, root=root, key=master,
                                     span=lambda n: (0, n), download=False)
    assert playback.reader.read_all() == MEDIA
    await run(client)
    assert not (root / legacy.file).exists()
    assert json.loads((await purges(client))[-1].detail)["key"] == "deployment key (backups stay readable)"


async def test_a_run_cut_off_after_the_commit_is_finished_by_the_next(client: TestClient,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between deleting the key and removing the file: the file is already unreadable, and the next run
    removes it without a second audit entry."""
    row = await recorded(client, 1)
    root = client.app[SETTINGS].recordings_dir
    real_remove = purge._remove

    def crash(_paths: list[Path]) -> int:
        raise OSError("killed")

    monkeypatch.setattr(purge, "_remove", crash)
    with pytest.raises(OSError):
        await run(client)
    assert (root / row.file).exists() and (await row_of(client, Recording, row.id)).purged_at is not None
    assert await row_of(client, DataKey, row.data_key_id) is None
    monkeypatch.setattr(purge, "_remove", real_remove)
    outcome = await run(client)
    assert outcome.purged == [] and outcome.files_removed == 1 and not (root / row.file).exists()
    assert len(await purges(client)) == 1


async def test_a_dry_run_changes_nothing(client: TestClient) -> None:
    """A dry run lists the expired recording as one it would purge, and leaves the recording unpurged, its key row
    and its file in place, and no purge entry in the audit trail."""
    row = await recorded(client, 1)
    outcome = await run(client, dry_run=True)
    assert [p["id"] for p in outcome.purged] == [row.id] and outcome.dry_run
    fresh = await row_of(client, Recording, row.id)
    assert fresh.purged_at is None and await row_of(client, DataKey, row.data_key_id) is not None
    assert (client.app[SETTINGS].recordings_dir / row.file).exists() and await purges(client) == []


async def test_a_server_purges_on_its_schedule(tmp_path: Path) -> None:
    """A node started with a short TELEMED_RETENTION_INTERVAL runs the purge by itself: a recording that ended
    four years ago (its end moved back, the clock's move the other way) is purged without anyone asking."""
    settings = Settings.load(environ={"TELEMED_RETENTION_INTERVAL": "1"}, data_dir=tmp_path / "var", port=0)
    client = await _start(settings)
    try:
        row = await recorded(client, 1)
        async with client.app[DATABASE].session() as session:
            old = await session.get(Recording, row.id)
            assert old is not None
            old.started_at = old.ended_at = utcnow() - timedelta(days=4 * 365)
            session.add(old)
            await session.commit()
        for _ in range(100):
            if (await row_of(client, Recording, row.id)).purged_at is not None:
                break
            await asyncio.sleep(0.1)
        assert (await row_of(client, Recording, row.id)).purged_at is not None
        assert [e.subject for e in await purges(client)] == [f"recording:{row.id}"]
    finally:
        await client.close()
