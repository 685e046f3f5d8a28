"""telemed backup and telemed restore: a deployment with accounts, an audit trail, a recording and an
attachment, backed up and restored into a fresh data directory and database (SQLite and PostgreSQL), where
the audit trail holds, the files open with their hashes and people log in; never the keys in the archive; and
the refusals (wrong or missing key, data already there, a damaged archive)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from media.sealed import SealedReader
from server import backup as backups
from server import storage
from server.app import create_app, prepare_database
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.audit import trail as audit
from server.consultations.recordings import key_of
from server.db import Database
from server.demo import seed_demo
from server.identity.signing_keys import KEY_FILE, RECORDING_KEY_FILE
from server.models import Attachment, Recording
from server.retention import data_keys
from server.settings import Settings

from ..conftest import POSTGRES_ADMIN_URL, _admin, _run, login
from ..support.recorded_call import stored_call
from .api.test_attachments import PDF, _upload
from .api.test_referrals import create, ids

ROOT = Path(__file__).resolve().parents[2]


def telemed(*args: str, data_dir: Path, database_url: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """The telemed command as an operator runs it, with this deployment's settings in its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**clean, "TELEMED_DATA_DIR": str(data_dir),
                                         "TELEMED_DATABASE_URL": database_url, **(env or {})})


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as ``database_url``: where the backup is restored."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'telemed.db'}"
        return
    name = f"telemed_test_{secrets.token_hex(6)}"
    _run(_admin(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _serving(settings: Settings, *, seed: bool) -> TestClient:
    database = Database(settings.database_url)
    if seed:
        await database.upgrade()  # a new deployment; a restored one must be current without it
    await prepare_database(database, settings)
    if seed:
        await seed_demo(database)
    client = TestClient(TestServer(create_app(settings, database=database), host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def test_a_backup_restored_into_a_fresh_deployment_holds_its_trail_files_and_logins(
        tmp_path: Path, database_url: str, fresh_url: str) -> None:
    """The whole round trip an operator relies on, on both databases: what was there before the backup is
    there after the restore, checked by its own hashes, and nothing the keys guard is in the archive."""
    old = Settings.load(environ={}, data_dir=tmp_path / "old", database_url=database_url, port=0)
    client = await _serving(old, seed=True)
    try:
        referral = await create(client, await ids(client))
        status, attached = await _upload(client, referral["id"], PDF, "ECG.pdf")
        assert status == 201, attached
        recording = await stored_call(client.app, seconds=1.5)
        key = client.app[RECORDING_KEY]
        trail_before = await audit.trail(client.app[DATABASE])
    finally:
        await client.close()
        await client.app[DATABASE].close()
    assert (old.data_dir / RECORDING_KEY_FILE).exists(), "the development key the files are sealed under"

    archive = tmp_path / "backup.tar"
    made = await asyncio.to_thread(telemed, "backup", str(archive), data_dir=old.data_dir, database_url=database_url)
    assert made.returncode == 0, made.stderr
    assert archive.stat().st_mode & 0o777 == 0o600, "patients' records: readable by the owner alone"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = backups.read_manifest(tar)
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert f"files/{recording.file}" in names and "files/attachments/" in " ".join(names)
    assert not any("keys/" in n or KEY_FILE in n for n in names), names
    for secret in (key, key.hex().encode(), (old.data_dir / KEY_FILE).read_bytes().strip()):
        assert secret not in contents, "a key in the backup"
    assert manifest["database"]["kind"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert manifest["database"]["schema_revision"] == Database.head_revision()
    assert manifest["keys"]["recording_key"]["fingerprint"] == backups.fingerprint(key)
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed[f"files/{recording.file}"] == hashlib.sha256((old.recordings_dir / recording.file).read_bytes()
                                                              ).hexdigest()

    new_dir = tmp_path / "restored"
    refused = await asyncio.to_thread(telemed, "restore", str(archive), data_dir=new_dir, database_url=fresh_url)
    assert refused.returncode == 2 and backups.fingerprint(key) in refused.stderr, refused.stderr
    assert "TELEMED_RECORDING_KEY" in refused.stderr and not (new_dir / "recordings").exists()

    # The operator brings the key back from where it is kept apart from the backups.
    (new_dir / "keys").mkdir(parents=True)
    shutil.copy(old.data_dir / RECORDING_KEY_FILE, new_dir / RECORDING_KEY_FILE)
    restored = await asyncio.to_thread(telemed, "restore", str(archive), data_dir=new_dir, database_url=fresh_url)
    assert restored.returncode == 0, restored.stderr
    assert f"Audit trail holds: {len(trail_before)} entries" in restored.stdout

    again = await asyncio.to_thread(telemed, "restore", str(archive), data_dir=new_dir, database_url=fresh_url)
    assert again.returncode == 2 and "--force" in again.stderr, "never over data that is there"
    forced = await asyncio.to_thread(telemed, "restore", "--force", str(archive), data_dir=new_dir,
                                     database_url=fresh_url)
    assert forced.returncode == 0, forced.stderr  # what follows checks this second restore, over the first

    new = Settings.load(environ={}, data_dir=new_dir, database_url=fresh_url, port=0)
    client = await _serving(new, seed=False)
    try:
        database = client.app[DATABASE]
        trail_after = await audit.trail(database)
        assert audit.check(trail_after) is None
        assert [e.hash for e in trail_after] == [e.hash for e in trail_before]
        async with database.session() as session:
            rows = (await session.exec(select(Recording))).all()
            assert [r.id for r in rows] == [recording.id]
            own = await key_of(session, rows[0], client.app[RECORDING_KEY])
            attachment = (await session.exec(select(Attachment))).one()
            assert attachment.data_key_id is not None
            await data_keys.key_of(session, client.app[RECORDING_KEY], attachment.data_key_id)
        assert SealedReader(new.recordings_dir / rows[0].file, own).sha256() == rows[0].sha256, \
            "the recording reads back to the hash it was kept with"
        download = await client.get(attached["url"], headers=await login(client, "dr.li"))
        assert download.status == 200 and await download.read() == PDF
        assert hashlib.sha256(PDF).hexdigest() == attachment.sha256
        assert client.app[SETTINGS].recordings_dir == new.recordings_dir
        assert (await client.get("/readyz")).status == 200, "the restored files are under this node's key"
    finally:
        await client.close()
        await client.app[DATABASE].close()


@pytest.fixture
def small_backup(tmp_path: Path) -> tuple[Settings, Path]:
    """A seeded SQLite deployment with one sealed-looking file, backed up (in-process)."""
    old = Settings.load(environ={}, data_dir=tmp_path / "old", port=0)

    async def seed() -> None:
        database = Database(old.database_url)
        try:
            await prepare_database(database, old)
            await seed_demo(database)
            for action in ("user.login", "recording.viewed"):
                await audit.record(database, actor="user:1", action=action)
        finally:
            await database.close()

    asyncio.run(seed())
    (old.data_dir / "keys").mkdir()
    (old.data_dir / RECORDING_KEY_FILE).write_text(secrets.token_hex(32))
    storage.mark(old.recordings_dir, bytes.fromhex((old.data_dir / RECORDING_KEY_FILE).read_text()))  # as a new node
    (old.recordings_dir / "7").mkdir(parents=True)
    (old.recordings_dir / "7" / "a.rec").write_bytes(b"sealed bytes")
    (old.recordings_dir / "streams" / "v1").mkdir(parents=True)
    (old.recordings_dir / "streams" / "v1" / "derived.webm").write_bytes(b"rebuilt when played")
    archive = tmp_path / "small.tar.gz"
    done = backups.backup(old, archive)
    assert done.files == 2, "the marker and the recording; the players' derived copies are not backed up"
    return old, archive


def _fresh(tmp_path: Path, old: Settings) -> Settings:
    new = Settings.load(environ={}, data_dir=tmp_path / "new", port=0)
    (new.data_dir / "keys").mkdir(parents=True)
    shutil.copy(old.data_dir / RECORDING_KEY_FILE, new.data_dir / RECORDING_KEY_FILE)
    return new


def test_a_damaged_archive_restores_nothing(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """A file whose bytes differ from the manifest's SHA-256 stops the restore before the data directory or
    the database is written."""
    old, archive = small_backup
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "files/7/a.rec":
                data = b"SEALED BYTES"
            member.size = len(data)
            target.addfile(member, _reader(data))
    new = _fresh(tmp_path, old)
    with pytest.raises(backups.ArchiveDamaged, match="files/7/a.rec"):
        backups.restore(new, damaged)
    assert not new.recordings_dir.exists() and not (new.data_dir / "telemed.db").exists()
    assert [p.name for p in new.data_dir.iterdir()] == ["keys"], "the staging directory is gone"


def _reader(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def test_force_replaces_what_is_there(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """Without --force a restore over files refuses and names them; with it, the old files go."""
    old, archive = small_backup
    new = _fresh(tmp_path, old)
    storage.mark(new.recordings_dir, bytes.fromhex((new.data_dir / RECORDING_KEY_FILE).read_text()))
    assert backups.restore(new, archive).files == 2, "a node started once before the restore is still empty"
    (new.recordings_dir / "9").mkdir(parents=True)
    (new.recordings_dir / "9" / "stray.rec").write_bytes(b"x")
    with pytest.raises(backups.NotEmpty, match="recordings directory"):
        backups.restore(new, archive)
    done = backups.restore(new, archive, force=True)
    assert done.audit_break is None and done.audit_entries >= 2
    assert sorted(str(p.relative_to(new.recordings_dir)) for p in new.recordings_dir.rglob("*") if p.is_file()) \
        == [storage.MARKER, "7/a.rec"]


def test_a_wrong_key_is_refused_by_fingerprint(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """A restore given another recording key names both fingerprints (never a key) and writes nothing."""
    old, archive = small_backup
    other = secrets.token_hex(32)
    new = Settings.load(environ={"TELEMED_RECORDING_KEY": other}, data_dir=tmp_path / "new", port=0)
    with pytest.raises(backups.WrongKey) as refused:
        backups.restore(new, archive)
    wanted = backups.fingerprint(bytes.fromhex((old.data_dir / RECORDING_KEY_FILE).read_text()))
    assert wanted in refused.value.message and backups.fingerprint(bytes.fromhex(other)) in refused.value.message
    assert other not in refused.value.message and not new.data_dir.exists()


def _with_manifest(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    """``source``'s members with its manifest changed by ``change``."""
    with tarfile.open(source) as tar, tarfile.open(target, "w") as out:
        manifest = backups.read_manifest(tar)
        change(manifest)
        for member in tar.getmembers():
            data = json.dumps(manifest).encode() if member.name == backups.MANIFEST \
                else tar.extractfile(member).read()  # type: ignore[union-attr]
            member.size = len(data)
            out.addfile(member, _reader(data))
    return target


def test_not_a_backup_is_refused(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """A tar without our manifest, one of a newer format, a malformed manifest, a member named to climb out
    of the data directory, and a missing file: each says so, and nothing is written."""
    old, archive = small_backup
    new = _fresh(tmp_path, old)
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("notes.txt")
        tar.addfile(info, _reader(b""))
    with pytest.raises(backups.ArchiveDamaged, match="no manifest"):
        backups.restore(new, plain)
    newer = tmp_path / "newer.tar"
    with tarfile.open(newer, "w") as tar:
        raw = json.dumps({"format": backups.FORMAT, "version": backups.VERSION + 1}).encode()
        info = tarfile.TarInfo(backups.MANIFEST)
        info.size = len(raw)
        tar.addfile(info, _reader(raw))
    with pytest.raises(backups.ArchiveDamaged, match="version 2"):
        backups.restore(new, newer)
    malformed = _with_manifest(archive, tmp_path / "malformed.tar", lambda m: m["files"][0].pop("sha256"))
    with pytest.raises(backups.ArchiveDamaged, match="at files/0/sha256"):
        backups.restore(new, malformed)

    def climb(manifest: dict) -> None:
        manifest["files"][-1]["path"] = "files/../../outside"

    with pytest.raises(backups.ArchiveDamaged, match="unsafe name"):
        backups.restore(new, _with_manifest(archive, tmp_path / "unsafe.tar", climb))
    assert not (tmp_path / "outside").exists() and not new.recordings_dir.exists()
    with pytest.raises(backups.BackupError, match="no backup file"):
        backups.restore(new, tmp_path / "missing.tar")


def test_no_backup_without_the_files(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """A backup taken while the recordings' storage is not mounted (an empty mount point) would hold the
    database and none of the files: it is refused, saying why, and no archive is left."""
    old, _ = small_backup
    old.recordings_dir.rename(tmp_path / "aside")
    old.recordings_dir.mkdir()
    with pytest.raises(backups.BackupError, match="is its storage mounted"):
        backups.backup(old, tmp_path / "empty.tar")
    assert not (tmp_path / "empty.tar").exists()


def test_a_restore_leaves_the_storage_marked(tmp_path: Path, small_backup: tuple[Settings, Path]) -> None:
    """A restored deployment's database knows stored files, so no node will write the storage's marker
    (server/storage.py): the restore must leave it there, the backup's own, or, from an archive without one,
    written under the configured key. Otherwise the restored deployment would start "unmounted"."""
    old, archive = small_backup
    key = bytes.fromhex((old.data_dir / RECORDING_KEY_FILE).read_text())

    def without_marker(manifest: dict) -> None:
        manifest["files"] = [f for f in manifest["files"] if f["path"] != f"files/{storage.MARKER}"]

    for source in (archive, _with_manifest(archive, tmp_path / "unmarked.tar", without_marker)):
        new = _fresh(tmp_path, old)
        backups.restore(new, source)
        assert storage.problem(new.recordings_dir, writable=True, key=key) is None
        assert storage.fingerprint(key) in (new.recordings_dir / storage.MARKER).read_text()
        shutil.rmtree(new.data_dir)
