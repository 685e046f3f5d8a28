"""The recordings directory, where recordings, attachments and reports' PDFs are kept sealed: on a local
disk for one node, on storage every node mounts at the same path for several. Whether it can be reached now,
so a file out of reach answers "temporarily unavailable" (503), never "missing" (404).

A marker file tells the directory the deployment writes to from an empty mount point whose storage is not
mounted (where every file would otherwise look deleted). It is written once, by the first node of a new
deployment (one whose database knows no stored file); a node of a deployment that has stored files never
writes it, so an empty mount point stays "unmounted" until the storage is mounted. It names the recording
key's fingerprint (never the key), so a node given another key than the files here are sealed under says so
instead of writing files the other nodes cannot open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import logging
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from .db import Database
from .errors import NotFound, StorageUnavailable
from .models import Attachment, ConsultationReport, Recording

log = logging.getLogger(__name__)

MARKER = ".telemed-storage"
MARKER_TEXT = "The recordings, attachments and reports of a telemed deployment. Do not delete this file.\n"
FINGERPRINT_LINE = "recording key fingerprint: "
FINGERPRINT_INFO = b"telemed: recording key fingerprint v1"
# A storage server that hangs (NFS) must not hold a probe or a request for long.
PROBE_SECONDS = 2.0


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it: an HMAC under the key of a fixed text."""
    return hmac.new(key, FINGERPRINT_INFO, hashlib.sha256).hexdigest()[:32]


async def knows_files(session: AsyncSession) -> bool:
    """Whether the database knows a file in the recordings directory (a recording, an attachment or a
    report): then the deployment is not new, and its directory must have its marker already."""
    for table in (Recording, Attachment, ConsultationReport):
        if (await session.exec(sa.select(sa.literal(1)).select_from(table).limit(1))).first() is not None:  # type: ignore[call-overload]
            return True
    return False


def mark(directory: Path, key: bytes) -> None:
    """Create the directory and its marker, naming ``key``'s fingerprint, unless the marker is there. The
    marker appears whole or not at all (written aside, then linked into place), and two nodes starting at
    once write it once."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    marker = directory / MARKER
    if marker.exists():
        return
    text = f"{MARKER_TEXT}{FINGERPRINT_LINE}{fingerprint(key)}\n"
    fd, aside = tempfile.mkstemp(prefix=f"{MARKER}.", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(aside, marker)
        except FileExistsError:
            pass  # another node wrote it first
        except OSError:  # a file system without hard links: created exclusively, written at once
            with contextlib.suppress(FileExistsError), open(marker, "x") as f:
                f.write(text)
    finally:
        os.unlink(aside)


def prepare(directory: Path, key: bytes, *, new: bool) -> None:
    """At a node's start: for a ``new`` deployment (its database knows no stored file), create the directory
    and its marker (``mark``). For one that has stored files, write nothing: a marker missing there means
    the storage is not mounted (an empty mount point), and the node says so (``problem``) rather than take
    the empty directory for the storage. A directory that cannot be prepared, or whose files are sealed under
    another key, is logged and shows in /readyz; it does not stop the node starting."""
    marker = directory / MARKER
    try:
        if new:
            mark(directory, key)
        elif not marker.is_file():
            log.warning("the recordings directory has no %s marker, though the database knows stored files: its "
                        "storage is not mounted (files there answer 503 until it is)", MARKER)
            return
        if (wrong := _other_key(marker, key)) is not None:
            log.warning(wrong)
    except OSError as exc:
        log.warning("the recordings directory cannot be prepared: %s", errno.errorcode.get(exc.errno or 0, "error"))


def _other_key(marker: Path, key: bytes) -> str | None:
    for line in marker.read_text().splitlines():
        if line.startswith(FINGERPRINT_LINE) and line.removeprefix(FINGERPRINT_LINE).strip() != fingerprint(key):
            return ("the recordings directory's files are sealed under another recording key than this node's "
                    "(fingerprints differ): give every node the same TELEMED_RECORDING_KEY")
    return None


@dataclass(frozen=True)
class Problem:
    """What keeps the directory from being used: ``check`` as /readyz names it (``unmounted``: the directory
    or its marker is missing, so its storage is not mounted there; ``unavailable``: anything else), and
    ``words`` that name no path."""

    check: Literal["unmounted", "unavailable"]
    words: str

    def __str__(self) -> str:
        return self.words


def problem(directory: Path, *, writable: bool = False, key: bytes | None = None) -> Problem | None:
    """What keeps the directory from being used now; None if it can be. Given ``key``, the files here must be
    sealed under it (as the marker says)."""
    try:
        if not directory.is_dir():
            if not directory.exists():
                return Problem("unmounted", "the recordings directory is missing (is its storage mounted?)")
            return Problem("unavailable", "the recordings directory is not a directory")
        marker = directory / MARKER
        if not marker.is_file():
            return Problem("unmounted", f"the recordings directory has no {MARKER} marker (is its storage mounted?)")
        if key is not None and (wrong := _other_key(marker, key)) is not None:
            return Problem("unavailable", wrong)
        os.listdir(directory)  # readable, and its storage answers
        if writable:
            fd, probe = tempfile.mkstemp(prefix=".readyz-", dir=directory)
            os.close(fd)
            os.unlink(probe)
    except PermissionError:
        return Problem("unavailable", "the recordings directory cannot be read or written by this node (permissions)")
    except OSError as exc:
        return Problem("unavailable",
                       f"the recordings directory cannot be used ({errno.errorcode.get(exc.errno or 0, 'error')})")
    return None


def _timed_out() -> Problem:
    return Problem("unavailable", f"the recordings directory did not answer within {PROBE_SECONDS:g} s")


async def check(directory: Path) -> Problem | None:
    """``problem`` off the event loop, given up after PROBE_SECONDS (a hung mount is a problem too)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(problem, directory), PROBE_SECONDS)
    except TimeoutError:
        return _timed_out()


class Probe:
    """Readiness probes of the directory, in a thread of their own and one at a time: while one hangs (a
    storage server that does not answer) the next says so at once, rather than piling up threads in the
    default executor, which the event loop also needs (name lookups for Redis, sealed files' reads)."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory, self.key = directory, key
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="storage-probe")
        self._running: Future[Problem | None] | None = None
        self._started = 0.0

    async def check(self) -> Problem | None:
        """``problem`` (writable, under this node's key), or why there is no answer within PROBE_SECONDS. A
        probe already under way is waited for (for what is left of its time), not doubled."""
        now = time.monotonic()
        if self._running is None or self._running.done():
            self._running = self._thread.submit(partial(problem, self.directory, writable=True, key=self.key))
            self._started = now
        left = self._started + PROBE_SECONDS - now
        try:
            if left <= 0:
                raise TimeoutError
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._running)), left)
        except TimeoutError:
            return _timed_out()

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


async def ensure_usable(directory: Path) -> None:
    """Refuse (503 ``storage-unavailable``) to write a new file while the directory cannot be used: an empty
    mount point whose storage is not mounted would take it, out of every other node's sight."""
    if (found := await check(directory)) is not None:
        log.warning("not writing a file to the recordings directory: %s", found)
        raise StorageUnavailable()


async def unreadable(directory: Path, exc: OSError, missing: str) -> StorageUnavailable | NotFound:
    """The refusal for a file under ``directory`` that could not be opened (``exc``): 503 when the storage
    cannot be reached or read, 404 with ``missing`` only when it can, and the file is not there."""
    if isinstance(exc, FileNotFoundError) and await check(directory) is None:
        return NotFound(missing)
    log.warning("a stored file is out of reach: %s", errno.errorcode.get(exc.errno or 0, type(exc).__name__))
    return StorageUnavailable()


async def settle(database: Database, directory: Path, key: bytes) -> None:
    """``prepare`` the directory at a node's start, asking the database whether the deployment is new. Raises
    what the database raises when it cannot answer: then nothing is written, and the caller asks again later."""
    async with database.session() as session:
        new = not await knows_files(session)
    await asyncio.to_thread(prepare, directory, key, new=new)
