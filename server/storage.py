"""The recordings directory, where recordings, attachments and reports' PDFs are kept sealed: on a local
disk for one node, on storage every node mounts at the same path for several. Whether it can be reached now,
so a file out of reach answers "temporarily unavailable" (503), never "missing" (404).

A marker file, written when the node starts, tells the directory the deployment writes to from an empty
mount point whose storage is not mounted (where every file would otherwise look deleted).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import tempfile
from pathlib import Path

from .errors import NotFound, StorageUnavailable

log = logging.getLogger(__name__)

MARKER = ".telemed-storage"
MARKER_TEXT = "The recordings, attachments and reports of a telemed deployment. Do not delete this file.\n"
# A storage server that hangs (NFS) must not hold a probe or a request for long.
PROBE_SECONDS = 2.0


def prepare(directory: Path) -> None:
    """Create the directory and its marker if they are not there (a new deployment); a directory that
    cannot be created is logged and shows in /readyz, it does not stop the node starting."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = directory / MARKER
        if not marker.exists():
            marker.write_text(MARKER_TEXT)
    except OSError as exc:
        log.warning("the recordings directory cannot be prepared: %s", errno.errorcode.get(exc.errno or 0, "error"))


def problem(directory: Path, *, writable: bool = False) -> str | None:
    """What keeps the directory from being used now, in words that name no path; None if it can be."""
    try:
        if not directory.is_dir():
            return "the recordings directory is missing (is its storage mounted?)" if not directory.exists() \
                else "the recordings directory is not a directory"
        if not (directory / MARKER).is_file():
            return f"the recordings directory has no {MARKER} marker (is its storage mounted?)"
        os.listdir(directory)  # readable, and its storage answers
        if writable:
            fd, probe = tempfile.mkstemp(prefix=".readyz-", dir=directory)
            os.close(fd)
            os.unlink(probe)
    except PermissionError:
        return "the recordings directory cannot be read or written by this node (permissions)"
    except OSError as exc:
        return f"the recordings directory cannot be used ({errno.errorcode.get(exc.errno or 0, 'error')})"
    return None


async def check(directory: Path, *, writable: bool = False) -> str | None:
    """``problem`` off the event loop, given up after PROBE_SECONDS (a hung mount is a problem too)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(problem, directory, writable=writable), PROBE_SECONDS)
    except TimeoutError:
        return f"the recordings directory did not answer within {PROBE_SECONDS:g} s"


async def unreadable(directory: Path, exc: OSError, missing: str) -> StorageUnavailable | NotFound:
    """The refusal for a file under ``directory`` that could not be opened (``exc``): 503 when the storage
    cannot be reached or read, 404 with ``missing`` only when it can, and the file is not there."""
    if isinstance(exc, FileNotFoundError) and await check(directory) is None:
        return NotFound(missing)
    log.warning("a stored file is out of reach: %s", errno.errorcode.get(exc.errno or 0, type(exc).__name__))
    return StorageUnavailable()
