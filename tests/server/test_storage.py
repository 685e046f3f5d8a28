"""Recordings, attachments and reports live in the recordings directory, on a local disk or on storage every
node mounts: when that storage cannot be reached (not mounted, gone, an empty mount point) a file shows as
temporarily unavailable (503 ``storage-unavailable``, the translated error page on pages), never as missing
(404), which stays the answer for a file that is really not there."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server import storage
from server.api.health import Readiness
from server.app import create_app, prepare_database
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.consultations.recordings import live_path
from server.consultations.recovery import recover_interrupted
from server.db import Database
from server.models import Recording, RecordingStatus
from server.settings import Settings

from ..conftest import _start, login
from .api.test_attachments import PDF, _upload
from .api.test_referrals import booked_referral, create, ids
from .api.test_reports import BODY as REPORT
from .consultations.test_recordings import stored_recording

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def storage_gone(directory: Path, how: str) -> Iterator[None]:
    """The recordings directory out of reach: moved away (the mount is gone), or an empty directory in its
    place (a mount point whose storage is not mounted); put back afterwards."""
    aside = directory.with_name("aside")
    directory.rename(aside)
    if how == "empty mount point":
        directory.mkdir()
    try:
        yield
    finally:
        if directory.exists():
            directory.rmdir()
        aside.rename(directory)


async def _refused(response, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code


@pytest.mark.parametrize("how", ["gone", "empty mount point"])
async def test_a_recording_and_an_attachment_out_of_reach_are_unavailable_not_missing(client: TestClient,
                                                                                      how: str) -> None:
    """The API answers 503 storage-unavailable with Retry-After while the storage is out of reach, and the
    same requests work again once it is back."""
    doctor = await login(client, "dr.li")
    recording = await stored_recording(client)
    referral = await create(client, await ids(client))
    status, attached = await _upload(client, referral["id"], PDF, "ECG.pdf")
    assert status == 201
    media, viewing = f"/api/recordings/{recording.id}/media", f"/api/recordings/{recording.id}/viewings"
    with storage_gone(client.app[SETTINGS].recordings_dir, how):
        for response in (await client.get(media, headers=doctor), await client.post(viewing, headers=doctor),
                         await client.get(attached["url"], headers=doctor)):
            await _refused(response, "storage-unavailable", 503)
            assert response.headers["Retry-After"] == str(storage.StorageUnavailable.RETRY_AFTER)
    assert (await client.get(media, headers=doctor)).status == 200
    assert await (await client.get(attached["url"], headers=doctor)).read() == PDF


async def _started_again(settings: Settings) -> TestClient:
    """A node of the same deployment started again (its database as it is, not seeded again)."""
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    client = TestClient(TestServer(create_app(settings, database=database), host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def _storage_check(client: TestClient) -> tuple[str, str]:
    response = await client.get("/readyz")
    ready = Readiness.model_validate(await response.json())
    assert response.status == (200 if ready.status == "ready" else 503)
    return ready.checks["storage"], ready.problems.get("storage", "")


@pytest.mark.parametrize("how", ["gone", "empty mount point"])
async def test_a_node_started_without_the_storage_mounted_does_not_take_the_mount_point_for_it(
        settings: Settings, how: str) -> None:
    """Guards the marker's meaning: a node of a deployment whose database knows stored files, started while the
    storage is not mounted (an empty mount point, or no directory at all), writes no marker there: /readyz says
    ``unmounted``, files answer 503 storage-unavailable, new ones (an attachment, a signed report) are refused
    the same way rather than written where no other node sees them, and nothing is created in its place; once
    the operator mounts the storage the same node serves them, with no restart."""
    client = await _start(settings)
    try:
        recording = await stored_recording(client)
        booked, _ = await booked_referral(client)
    finally:
        await client.close()
    root = settings.recordings_dir
    with storage_gone(root, how):
        client = await _started_again(settings)
        try:
            assert not (root / storage.MARKER).exists() and (how == "gone") == (not root.exists()), \
                "nothing written where the storage should be"
            check, words = await _storage_check(client)
            assert check == "unmounted" and "mounted" in words and str(root) not in words
            doctor = await login(client, "dr.li")
            media = f"/api/recordings/{recording.id}/media"
            await _refused(await client.get(media, headers=doctor), "storage-unavailable", 503)
            status, refused = await _upload(client, booked["id"], PDF, "ECG.pdf")
            assert (status, refused["error"]["code"]) == (503, "storage-unavailable"), refused
            await _refused(await client.post(f"/api/referrals/{booked['id']}/reports", json=REPORT,
                                             headers=await login(client, "dr.wang")), "storage-unavailable", 503)
            assert not root.exists() or list(root.iterdir()) == [], "nothing written where the storage should be"
        except BaseException:
            await client.close()
            raise
    try:
        assert await _storage_check(client) == ("ok", "")
        assert (await client.get(media, headers=doctor)).status == 200
    finally:
        await client.close()


async def test_a_new_deployment_marks_its_storage_and_one_with_files_keeps_its_marker(settings: Settings) -> None:
    """Guards the other side: the first start of a new deployment (no stored file in its database) writes the
    marker, naming the key's fingerprint; a later start with files leaves that marker as it is (a marker
    with another key's fingerprint stays refused, not rewritten)."""
    client = await _start(settings)
    marker = settings.recordings_dir / storage.MARKER
    try:
        key = client.app[RECORDING_KEY]
        assert storage.fingerprint(key) in marker.read_text()
        await stored_recording(client)
    finally:
        await client.close()
    other = storage.MARKER_TEXT + storage.FINGERPRINT_LINE + storage.fingerprint(b"\x02" * 32) + "\n"
    marker.write_text(other)
    client = await _started_again(settings)
    try:
        check, words = await _storage_check(client)
        assert check == "unavailable" and "TELEMED_RECORDING_KEY" in words
        assert marker.read_text() == other
    finally:
        await client.close()


async def test_a_file_really_missing_is_still_404(client: TestClient) -> None:
    """With the storage reachable, a recording or attachment whose file is not there is missing (404)."""
    doctor = await login(client, "dr.li")
    recording = await stored_recording(client)
    referral = await create(client, await ids(client))
    _, attached = await _upload(client, referral["id"], PDF, "ECG.pdf")
    root = client.app[SETTINGS].recordings_dir
    (root / recording.file).unlink()
    for path in (root / "attachments").rglob("*"):
        if path.is_file():
            path.unlink()
    await _refused(await client.get(f"/api/recordings/{recording.id}/media", headers=doctor), "not-found", 404)
    await _refused(await client.get(attached["url"], headers=doctor), "not-found", 404)


@pytest.mark.parametrize(("language", "words"), [
    ("zh-CN", "此文件暂时无法访问"), ("en", "This file is temporarily unavailable"),
])
async def test_the_player_page_says_temporarily_unavailable_in_the_readers_language(
        client: TestClient, language: str, words: str) -> None:
    """A page that opens a recording out of reach is the translated error page with 503, not a 404."""
    recording = await stored_recording(client)
    headers = {**await login(client, "dr.li"), "Accept-Language": language}
    with storage_gone(client.app[SETTINGS].recordings_dir, "gone"):
        page = await client.get(f"/recordings/{recording.id}", headers=headers)
        assert page.status == 503 and page.content_type == "text/html"
        assert words in await page.text()


WRITER = """
import sys
from pathlib import Path
from media.sealed import SealedWriter
writer = SealedWriter(Path(sys.argv[1]), bytes.fromhex(sys.argv[2]))
writer.write(b"frames")
writer.flush()
print("writing", flush=True)
sys.stdin.read()  # until the test lets go, as a node records until the call ends
"""


async def test_a_node_starting_leaves_a_recording_another_node_writes_alone(client: TestClient) -> None:
    """On shared storage a node's start-up recovery sees another node's live recording: it must not finish
    it while that node (another process, holding its file) still writes; once the writer is gone (killed),
    it is recovered as before."""
    root = client.app[SETTINGS].recordings_dir
    row = await stored_recording(client, RecordingStatus.RECORDING)
    live = live_path(root, row)
    (root / row.file).unlink()
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(live), client.app[RECORDING_KEY].hex(), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(writer.stdout.readline(), 30) == b"writing\n"  # type: ignore[union-attr]
        assert await recover_interrupted(client.app[DATABASE], root, client.app[RECORDING_KEY]) == 0
        assert live.exists()
        async with client.app[DATABASE].session() as session:
            assert (await session.get(Recording, row.id)).status == RecordingStatus.RECORDING  # type: ignore[union-attr]
    finally:
        writer.kill()
        await writer.wait()
    assert await recover_interrupted(client.app[DATABASE], root, client.app[RECORDING_KEY]) == 1
    async with client.app[DATABASE].session() as session:
        assert (await session.get(Recording, row.id)).status != RecordingStatus.RECORDING  # type: ignore[union-attr]


async def test_a_signed_report_out_of_reach_is_unavailable_not_missing(client: TestClient) -> None:
    """A signed report's PDF and its verification, with the storage gone, are 503 storage-unavailable; a
    report whose file is really gone stays 404."""
    booked, _ = await booked_referral(client)
    signed = await client.post(f"/api/referrals/{booked['id']}/reports", json=REPORT,
                               headers=await login(client, "dr.wang"))
    assert signed.status == 201, await signed.text()
    report = await signed.json()
    doctor = await login(client, "dr.li")
    root = client.app[SETTINGS].recordings_dir
    with storage_gone(root, "empty mount point"):
        for url in (report["url"], report["verification_url"]):
            await _refused(await client.get(url, headers=doctor), "storage-unavailable", 503)
    assert (await client.get(report["url"], headers=doctor)).status == 200
    for path in (root / "reports").rglob("*"):
        if path.is_file():
            path.unlink()
    await _refused(await client.get(report["url"], headers=doctor), "not-found", 404)
