"""Backups: the database and the sealed files (recordings, attachments, reports' PDFs) in one tar with a
manifest, never the keys; and their restore into an empty data directory and database.

The archive holds ``manifest.json`` (format, version, when, the database's kind and schema revision, every
member's size and SHA-256, and which keys a restore needs), ``database/`` (SQLite's online backup of the
file, or ``pg_dump``'s custom format) and ``files/`` (the recordings directory as it was, without the
players' derived copies). The files stay sealed; their per-file keys are in the database, wrapped under
the recording key, which is never in a backup: the manifest keeps only a fingerprint of it (an HMAC under
the key itself, from which the key cannot be found), so a restore refuses at once when it is not given the
same key, instead of restoring files nothing can open.

The database is dumped before the files are read, so every row in the dump has its file (a file written in
between is only an orphan).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

import pydantic
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .audit import trail as audit
from .db import Database, alembic_config
from .identity.signing_keys import KEY_FILE, RECORDING_KEY_FILE
from .settings import Settings
from .storage import MARKER, fingerprint, mark, problem

FORMAT = "telemed-backup"
VERSION = 1
MANIFEST = "manifest.json"
FILES = "files"
SQLITE_MEMBER = "database/telemed.db"
POSTGRES_MEMBER = "database/telemed.pgdump"
# Under the recordings directory, rebuilt from the recordings when played: not worth keeping twice.
DERIVED = ("streams",)
COPY_BYTES = 1024 * 1024


class BackupError(Exception):
    """Root of what stops a backup or a restore; the message says what to do, and is safe to print."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArchiveDamaged(BackupError):
    """The archive is not a backup of ours, or a member is missing or differs from its manifest."""


class WrongKey(BackupError):
    """The recording key this restore would use is missing, or is not the one the backup's files need."""


class NotEmpty(BackupError):
    """The data directory or database to restore into already holds data (and --force was not given)."""


class DatabaseToolFailed(BackupError):
    """pg_dump, pg_restore or the database itself refused."""


# ---- keys: what a backup needs, never the keys themselves ----


def configured_recording_key(settings: Settings) -> bytes | None:
    """The recording key as the server would find it, without generating one where there is none."""
    if settings.recording_key:
        return bytes.fromhex(settings.recording_key.reveal())
    path = settings.data_dir / RECORDING_KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        raise WrongKey(f"{path} does not hold 64 hex digits; restore the right key file or set "
                       "TELEMED_RECORDING_KEY.") from None


def _keys_needed(settings: Settings, key: bytes | None) -> dict[str, Any]:
    return {
        "recording_key": {
            "fingerprint": fingerprint(key) if key is not None else None,
            "source": "TELEMED_RECORDING_KEY" if settings.recording_key else RECORDING_KEY_FILE,
            "needed": "to open every recording, attachment and report PDF in this backup (their own keys are "
                      "in the database, sealed under it)",
        },
        "jwt_secret": {"source": "TELEMED_JWT_SECRET" if settings.jwt_secret else KEY_FILE,
                       "needed": "not to read data: without the same one, everyone logs in again"},
        "report_signing": {"source": "TELEMED_REPORT_SIGNING_CERT/KEY/DIR, else keys/report-signing-*.pem in the "
                                     "data directory",
                           "needed": "for reports signed before to verify as this deployment's, and to sign new "
                                     "ones with the same certificate"},
    }


# ---- archive members ----


class _Hashing:
    """A file object that hashes what is read through it, stopping at ``limit`` bytes (a recording still
    being written may grow while it is copied; the tar header already holds its size)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw, self.left, self.digest = raw, limit, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.raw.read(size)
        self.left -= len(data)
        self.digest.update(data)
        return data


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        info = tar.gettarinfo(arcname=arcname, fileobj=f)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        reader = _Hashing(f, info.size)
        tar.addfile(info, reader)  # type: ignore[arg-type]
    return {"path": arcname, "size": info.size, "sha256": reader.digest.hexdigest()}


def _stored_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, name in the archive) of every file to keep under the recordings directory, in a stable order."""
    if not root.is_dir():
        return
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        relative = here.relative_to(root)
        if relative == Path("."):
            subdirs[:] = [d for d in subdirs if d not in DERIVED]
        subdirs.sort()
        for name in sorted(names):
            yield here / name, str(PurePosixPath(FILES, *relative.parts, name))


def _member_name(name: str) -> PurePosixPath:
    """A member's name as a safe relative path: never absolute, never climbing out with ``..``."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArchiveDamaged(f"The archive holds a member with an unsafe name: {name!r}.")
    return path


# ---- the database ----


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def _libpq_env(url: str) -> dict[str, str]:
    """Connection parameters for pg_dump and pg_restore as libpq's variables: a password in a command line
    would show in the process list."""
    parsed = make_url(url)
    env = {**os.environ}
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[name] = str(value)
    return env


def _run_tool(argv: list[str], url: str) -> None:
    try:
        done = subprocess.run(argv, env=_libpq_env(url), capture_output=True, text=True, check=False)  # noqa: S603 - our own argv
    except FileNotFoundError:
        raise DatabaseToolFailed(f"{argv[0]} is not installed; install PostgreSQL's client tools "
                                 f"(Debian: postgresql-client) of the server's version or newer.") from None
    if done.returncode != 0:
        raise DatabaseToolFailed(f"{argv[0]} failed: {done.stderr.strip() or f'exit status {done.returncode}'}")


def _dump_database(url: str, into: Path) -> None:
    if _kind(url) == "sqlite":
        source = sqlite3.connect(f"file:{_sqlite_path(url)}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(into)
            with target:
                source.backup(target)  # a consistent copy while the server keeps writing
            target.close()
        finally:
            source.close()
    else:
        _run_tool(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={into}"], url)


async def _revision(url: str) -> str | None:
    database = Database(url)
    try:
        return await database.current_revision()
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseToolFailed(f"The database cannot be reached ({type(exc).__name__}); is it running, and "
                                 "is TELEMED_DATABASE_URL right?") from None
    finally:
        await database.close()


async def _postgres_tables(url: str) -> list[str]:
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            return await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseToolFailed(f"The database cannot be reached ({type(exc).__name__}); is it running, and "
                                 "is TELEMED_DATABASE_URL right?") from None
    finally:
        await database.close()


async def _empty_postgres(url: str) -> None:
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        await database.close()


# ---- backup ----


@dataclass(frozen=True)
class BackupDone:
    path: Path
    files: int
    bytes: int
    schema_revision: str | None


def backup(settings: Settings, destination: Path, *, now: datetime | None = None) -> BackupDone:
    """Write a backup of this deployment's database and sealed files to ``destination`` (a ``.tar``, or
    ``.tar.gz``): written aside and renamed into place, so a failed backup never leaves a half file there."""
    if destination.exists():
        raise BackupError(f"{destination} already exists; give a new file name.")
    key = configured_recording_key(settings)
    kind = _kind(settings.database_url)
    if unusable := problem(settings.recordings_dir):
        raise BackupError(f"Not backing up without the files: {unusable}. Mount it (or start the server once, "
                          "which creates it) and try again.")
    revision = asyncio.run(_revision(settings.database_url))
    if revision is None:
        raise BackupError("The database has no schema yet: there is nothing to back up.")
    mode = "w:gz" if destination.name.endswith((".tar.gz", ".tgz")) else "w"
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        # Readable by its owner only from its first byte: it holds patients' records in the clear.
        handle = os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        with handle, tempfile.TemporaryDirectory(prefix="telemed-backup-") as scratch, \
                tarfile.open(fileobj=handle, mode=mode, format=tarfile.PAX_FORMAT) as tar:
            dump = Path(scratch) / "database"
            _dump_database(settings.database_url, dump)
            member = SQLITE_MEMBER if kind == "sqlite" else POSTGRES_MEMBER
            database = {"kind": kind, "schema_revision": revision, **_add_file(tar, dump, member)}
            files = []
            for path, name in _stored_files(settings.recordings_dir):
                try:
                    files.append(_add_file(tar, path, name))
                except FileNotFoundError:
                    continue  # gone since it was listed: an upload's temporary file, a live segment finished
            manifest = {
                "format": FORMAT, "version": VERSION,
                "created_at": (now or datetime.now(UTC)).isoformat(),
                "database": database, "files": files, "keys": _keys_needed(settings, key),
            }
            raw = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(raw), int(datetime.now(UTC).timestamp()), 0o600
            tar.addfile(info, _Bytes(raw))
        os.chmod(partial, 0o600)  # it holds patients' records: readable by its owner only
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return BackupDone(destination, len(files), sum(f["size"] for f in files), revision)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.at + size
        chunk, self.at = self.data[self.at:end], min(end, len(self.data))
        return chunk


# ---- restore ----


class _Member(pydantic.BaseModel):
    path: str
    size: int = pydantic.Field(ge=0)
    sha256: str = pydantic.Field(pattern="^[0-9a-f]{64}$")


class _Database(_Member):
    kind: Literal["sqlite", "postgresql"]
    schema_revision: str


class _RecordingKey(pydantic.BaseModel):
    fingerprint: str | None


class _Keys(pydantic.BaseModel):
    recording_key: _RecordingKey


class _Manifest(pydantic.BaseModel):
    """What a restore reads of a manifest (it may say more), checked before anything is unpacked."""

    created_at: str
    database: _Database
    files: list[_Member]
    keys: _Keys


def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        raw = tar.extractfile(MANIFEST)
    except KeyError:
        raw = None
    if raw is None:
        raise ArchiveDamaged("This is not a telemed backup: it has no manifest.json.")
    try:
        manifest = json.loads(raw.read())
    except ValueError:
        raise ArchiveDamaged("The backup's manifest.json is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveDamaged("This is not a telemed backup (its manifest names another format).")
    if manifest.get("version") != VERSION:
        raise ArchiveDamaged(f"This backup is in version {manifest.get('version')} of the format; this telemed "
                             f"reads version {VERSION}. Restore it with the telemed that made it.")
    try:
        _Manifest.model_validate(manifest)
    except pydantic.ValidationError as exc:
        where = "/".join(str(p) for p in exc.errors()[0]["loc"])
        raise ArchiveDamaged(f"The backup's manifest.json is damaged (at {where}).") from None
    return manifest


def _check_key(settings: Settings, manifest: dict[str, Any]) -> None:
    wanted = manifest["keys"]["recording_key"]["fingerprint"]
    if wanted is None:
        return  # the deployment never had a recording key: nothing was sealed
    key = configured_recording_key(settings)
    where = (f"set TELEMED_RECORDING_KEY to it, or copy {RECORDING_KEY_FILE} from the old data directory to "
             f"{settings.data_dir / RECORDING_KEY_FILE}")
    if key is None:
        raise WrongKey(f"This backup's recordings and attachments are sealed under the recording key with "
                       f"fingerprint {wanted}, and no recording key is configured here: {where}, then run the "
                       "restore again. (Backups never hold the key.)")
    if fingerprint(key) != wanted:
        source = "TELEMED_RECORDING_KEY" if settings.recording_key else str(settings.data_dir / RECORDING_KEY_FILE)
        raise WrongKey(f"The recording key from {source} (fingerprint {fingerprint(key)}) is not the one this "
                       f"backup's files are sealed under (fingerprint {wanted}): {where}.")


def _check_revision(manifest: dict[str, Any]) -> None:
    revision = manifest["database"]["schema_revision"]
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known = scripts.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown or malformed id
        known = False
    if not known:
        raise BackupError(f"The backup's database is at schema revision {revision}, which this telemed does not "
                          "know (it was made by a newer version): restore it with that version.")


def _holds_files(directory: Path) -> bool:
    """Whether there is anything but the marker a node writes at its first start (server/storage.py)."""
    return directory.exists() and any((p.is_file() or p.is_symlink()) and p != directory / MARKER
                                      for p in directory.rglob("*"))


def _check_empty(settings: Settings, force: bool) -> None:
    """Refuse to restore over data, unless ``force``: then the old data is removed first."""
    problems = []
    if _holds_files(settings.recordings_dir):
        problems.append(f"the recordings directory {settings.recordings_dir} holds files")
    if _kind(settings.database_url) == "sqlite":
        path = _sqlite_path(settings.database_url)
        if path.exists() and path.stat().st_size > 0:
            problems.append(f"the database file {path} exists")
    elif asyncio.run(_postgres_tables(settings.database_url)):
        problems.append(f"the database {make_url(settings.database_url).database} has tables")
    if problems and not force:
        raise NotEmpty("Not restoring over data that is there: " + "; ".join(problems) + ". Restore into a fresh "
                       "data directory and an empty database, or give --force to delete what is there first.")


def _extract(tar: tarfile.TarFile, entry: dict[str, Any], target: Path) -> None:
    """One member to ``target``, checked against the manifest's size and SHA-256 as it is written."""
    name = _member_name(entry["path"])
    try:
        member = tar.getmember(str(name))
    except KeyError:
        raise ArchiveDamaged(f"The backup lacks {name}, which its manifest lists.") from None
    source = tar.extractfile(member) if member.isfile() else None
    if source is None:
        raise ArchiveDamaged(f"{name} in the backup is not a regular file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(target, "xb") as out:
        while chunk := source.read(COPY_BYTES):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise ArchiveDamaged(f"{name} in the backup is damaged: its SHA-256 is not the one in the manifest.")


@dataclass(frozen=True)
class RestoreDone:
    files: int
    schema_revision: str
    audit_entries: int
    audit_break: audit.Break | None


def restore(settings: Settings, source: Path, *, force: bool = False) -> RestoreDone:
    """Restore a backup into this deployment's data directory and database, which must be empty (``force``:
    what is there is deleted first). Everything in the archive is checked against the manifest before the
    data directory or the database is touched."""
    if not source.is_file():
        raise BackupError(f"There is no backup file {source}.")
    try:
        tar = tarfile.open(source, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise ArchiveDamaged(f"{source} cannot be read as a tar archive ({exc}).") from None
    with tar:
        manifest = read_manifest(tar)
        database = manifest["database"]
        kind = _kind(settings.database_url)
        if database["kind"] != kind:
            raise BackupError(f"This backup holds a {database['kind']} database; TELEMED_DATABASE_URL names a "
                              f"{kind} one. Point it at an empty database of the same kind.")
        _check_revision(manifest)
        _check_key(settings, manifest)
        _check_empty(settings, force)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Staged in the data directory and checked whole; only then put in place.
        stage = Path(tempfile.mkdtemp(prefix=".restore-", dir=settings.data_dir))
        try:
            dump = stage / "database"
            _extract(tar, database, dump)
            files = stage / "recordings"
            files.mkdir()
            for entry in manifest["files"]:
                name = _member_name(entry["path"])
                if len(name.parts) < 2 or name.parts[0] != FILES:
                    raise ArchiveDamaged(f"The backup lists {name} among the files, outside {FILES}/.")
                relative = name.relative_to(FILES)
                _extract(tar, entry, files.joinpath(*relative.parts))
            _put_database(settings, dump, force)
            _put_files(files, settings.recordings_dir)
            if (key := configured_recording_key(settings)) is not None:
                # The backup's own marker came back with its files; one made without a marker gets it now:
                # the restored database knows stored files, so no node would write it (server/storage.py).
                mark(settings.recordings_dir, key)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    events = asyncio.run(audit_trail(settings.database_url))
    return RestoreDone(len(manifest["files"]), database["schema_revision"], len(events), audit.check(events))


def _put_files(staged: Path, directory: Path) -> None:
    """The staged files into the recordings directory, whose own content goes first (only a marker, or
    --force said so). The directory itself stays: it may be the mount point of shared storage."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in directory.iterdir():
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for new in staged.iterdir():
        shutil.move(new, directory / new.name)


def _put_database(settings: Settings, dump: Path, force: bool) -> None:
    url = settings.database_url
    if _kind(url) == "sqlite":
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.move(dump, path)
        return
    if force:
        # Read the dump's table of contents first: a dump this pg_restore cannot read (a newer format) must
        # fail before the database there is emptied, not after.
        _run_tool(["pg_restore", "--list", str(dump)], url)
        asyncio.run(_empty_postgres(url))
    _run_tool(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
               f"--dbname={make_url(url).database}", str(dump)], url)


async def audit_trail(url: str) -> list[audit.AuditEvent]:
    database = Database(url)
    try:
        return await audit.trail(database)
    finally:
        await database.close()
