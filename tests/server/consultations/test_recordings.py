"""Recordings as services: listing, playback and recording consent refuse those the rules refuse, every
playback is audited before a byte leaves, and the REST face still streams what the service opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from media.sealed import SealedWriter
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.consent.records import How
from server.consultations import recordings
from server.consultations.recordings import ConsentAnswer
from server.db import Database
from server.errors import Forbidden, RangeNotSatisfiable, Unavailable
from server.models import AuditEvent, ConsentMethod, Recording, RecordingStatus, User
from server.permissions import Principal

from ...conftest import login

MEDIA = bytes(range(256)) * 40  # stands in for a WebM file: playback only decrypts and slices it
CLICKED = How(ConsentMethod.CLICKED, None, "127.0.0.1", "test")


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def audit_tail(database: Database) -> list[AuditEvent]:
    async with database.session() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def stored_recording(client: TestClient, status: RecordingStatus = RecordingStatus.READY) -> Recording:
    """A finished recording of the demo consultation (1), sealed under the server's key."""
    root: Path = client.app[SETTINGS].recordings_dir
    (root / "1").mkdir(parents=True, exist_ok=True)
    name = f"1/test-{status.value}.rec"
    writer = SealedWriter(root / name, client.app[RECORDING_KEY])
    writer.write(MEDIA)
    writer.close()
    async with client.app[DATABASE].session() as session:
        row = Recording(consultation_id=1, file=name, status=status, started_by="user:1", size=len(MEDIA),
                        tracks=json.dumps([{"codec": "VP8"}]))
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


def whole(size: int) -> tuple[int, int]:
    return 0, size


@pytest.mark.parametrize("username", ["dr.chen", "coord.zhao", "dr.zhou", "admin"])
async def test_only_participants_and_auditors_list_or_play_recordings(client: TestClient, username: str) -> None:
    """Refused callers see no list and open nothing, and leave no audit entry."""
    database = client.app[DATABASE]
    row = await stored_recording(client)
    assert row.id is not None
    who = await principal(database, username)
    before = await audit_tail(database)
    with pytest.raises(Forbidden):
        await recordings.list_for(database, who, 1)
    with pytest.raises(Forbidden):
        await recordings.play(database, who, row.id, root=client.app[SETTINGS].recordings_dir,
                              key=client.app[RECORDING_KEY], span=whole, download=False)
    assert await audit_tail(database) == before


@pytest.mark.parametrize(("username", "download", "action"), [("dr.wang", False, "recording.viewed"),
                                                             ("auditor", True, "recording.downloaded")])
async def test_every_playback_is_audited_with_its_range(client: TestClient, username: str, download: bool,
                                                        action: str) -> None:
    """Each row: a participating specialist watching, or an auditor downloading, sees the recording listed and gets the
    range asked for, decrypted; the audit entry names them, the consultation, the recording and the byte range, as
    viewed or as downloaded."""
    database = client.app[DATABASE]
    row = await stored_recording(client)
    assert row.id is not None
    who = await principal(database, username)
    assert [r.id for r in await recordings.list_for(database, who, 1)] == [row.id]
    playback = await recordings.play(database, who, row.id, root=client.app[SETTINGS].recordings_dir,
                                     key=client.app[RECORDING_KEY], span=lambda size: (10, size), download=download)
    assert (playback.start, playback.end, playback.media_type) == (10, len(MEDIA), "video/webm")
    assert b"".join(playback.reader.read_range(playback.start, playback.end)) == MEDIA[10:]
    entry = (await audit_tail(database))[-1]
    assert (entry.actor, entry.action, entry.consultation_id, entry.subject, json.loads(entry.detail)) == (
        f"user:{who.user_id}", action, 1, f"recording:{row.id}", {"range": [10, len(MEDIA)]})


async def test_nothing_is_audited_when_the_recording_cannot_be_played(client: TestClient) -> None:
    """An unfinished recording, or a range outside it, opens nothing and is not an access."""
    database = client.app[DATABASE]
    wang = await principal(database, "dr.wang")
    ready, live = await stored_recording(client), await stored_recording(client, RecordingStatus.RECORDING)
    assert ready.id is not None and live.id is not None
    before = await audit_tail(database)

    def outside(size: int) -> tuple[int, int]:
        raise RangeNotSatisfiable("outside", size=size)

    with pytest.raises(Unavailable):
        await recordings.play(database, wang, live.id, root=client.app[SETTINGS].recordings_dir,
                              key=client.app[RECORDING_KEY], span=whole, download=False)
    with pytest.raises(RangeNotSatisfiable):
        await recordings.play(database, wang, ready.id, root=client.app[SETTINGS].recordings_dir,
                              key=client.app[RECORDING_KEY], span=outside, download=False)
    assert await audit_tail(database) == before


async def test_the_api_streams_the_range_the_service_opened(client: TestClient) -> None:
    """The REST face only streams: a byte range answers 206 with the bytes asked for, a download names
    the file."""
    row = await stored_recording(client)
    headers = {**await login(client, "auditor"), "Range": "bytes=100-199"}
    response = await client.get(f"/api/recordings/{row.id}/media?download=1", headers=headers)
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(MEDIA)}"
    assert response.headers["Content-Disposition"] == f'attachment; filename="consultation-1-recording-{row.id}.webm"'
    assert await response.read() == MEDIA[100:200]
    listed = await client.get("/api/consultations/1/recordings", headers=await login(client, "dr.wang"))
    assert (await listed.json())["recordings"][0]["media_type"] == "video/webm"


@pytest.mark.parametrize("username", ["dr.chen", "coord.zhao", "auditor"])
async def test_only_a_clinician_of_the_consultation_consents_to_being_recorded(client: TestClient,
                                                                               username: str) -> None:
    """Each row: a doctor outside the consultation, a coordinator or an auditor is forbidden to give a clinician's
    consent to being recorded, and nothing is audited."""
    database = client.app[DATABASE]
    before = await audit_tail(database)
    with pytest.raises(Forbidden):
        await recordings.clinician_consent(database, None, await principal(database, username), 1,
                                           ConsentAnswer(given=True), locale="en", how=CLICKED)
    assert await audit_tail(database) == before


async def test_a_clinicians_recording_consent_and_its_withdrawal_are_audited(client: TestClient) -> None:
    """A participating doctor's consent to being recorded is stored under their identity and audited as given;
    withdrawing it marks the same record withdrawn and is audited; withdrawing again, with nothing standing, returns
    nothing."""
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    given = await recordings.clinician_consent(database, None, li, 1, ConsentAnswer(given=True), locale="en",
                                               how=CLICKED)
    assert given is not None and given.identity == f"user:{li.user_id}"
    entry = (await audit_tail(database))[-1]
    assert (entry.actor, entry.action, entry.subject) == (f"user:{li.user_id}", "consent.given", f"consent:{given.id}")
    withdrawn = await recordings.clinician_consent(database, None, li, 1, ConsentAnswer(given=False), locale="en",
                                                   how=CLICKED)
    assert withdrawn is not None and withdrawn.id == given.id and withdrawn.withdrawn_at is not None
    assert (await audit_tail(database))[-1].action == "consent.withdrawn"
    assert await recordings.clinician_consent(database, None, li, 1, ConsentAnswer(given=False), locale="en",
                                              how=CLICKED) is None, "nothing stood"
