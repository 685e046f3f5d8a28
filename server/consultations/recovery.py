"""Finishing recordings a crash cut off, so that what was flushed before it becomes a playable, sealed file:
a node's own at its next start (and when one of its relay workers dies), and those of a node that is lost
by a node still up, without waiting for the lost one to start again.

Exactly one process finishes a recording: it holds the lock of the file it finishes from (the segment's live
file, which its writer holds while it writes, or the finished file a writer killed before recording it left),
then takes the row over by a conditional update (still ``recording``, still naming the node it was read
with); whoever loses either race leaves it alone. A node killed while it finishes one is lost in turn, and its
successor takes the recording over from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from media.recorder import Finished, examine, finalize
from media.sealed import take_over

from .. import storage
from ..audit import trail as audit
from ..db import Database
from ..models import Recording, RecordingStatus, utcnow
from .recordings import keep_finished, key_of, segment_file

log = logging.getLogger(__name__)


async def recover_interrupted(database: Database, directory: Path, key: bytes, *, node: str | None = None) -> int:
    """Finish every recording still ``recording`` whose file no process holds (at a node's start, or when one
    of its relay workers died). One another node is still writing (the recordings directory is shared) is
    left to it. ``node``: this node's run, which takes each one over. Returns how many were finished."""
    async with database.session() as session:
        rows = (await session.exec(select(Recording).where(Recording.status == RecordingStatus.RECORDING))).all()
    return sum([await _finish(database, directory, key, row, node) for row in rows])


async def recover_lost(database: Database, directory: Path, key: bytes, *, node: str,
                       gone: Callable[[str], Awaitable[bool]]) -> int:
    """Finish the recordings that nodes now ``gone`` (their presence ran out: killed, or cut off) were writing,
    as this node (``node``). Nothing is done while the storage cannot be used (unmounted, unreachable): a file
    missing then is not a file lost. Returns how many were finished."""
    async with database.session() as session:
        rows = (await session.exec(select(Recording).where(
            Recording.status == RecordingStatus.RECORDING, col(Recording.node).is_not(None),
            Recording.node != node))).all()
    if not rows or await storage.check(directory) is not None:
        return 0
    verdicts: dict[str, bool] = {}
    finished = 0
    for row in rows:
        assert row.node is not None
        if row.node not in verdicts:
            verdicts[row.node] = await gone(row.node)
        if verdicts[row.node]:
            finished += await _finish(database, directory, key, row, node)
    return finished


async def watch_lost(database: Database, directory: Path, key: bytes, *, node: str,
                     gone: Callable[[str], Awaitable[bool]], wake: asyncio.Event, every: float) -> None:
    """Until cancelled: ``recover_lost`` every ``every`` seconds, and at once when ``wake`` is set (this node
    has just declared a node lost). A database or storage that fails only skips a round."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), every)
        wake.clear()
        try:
            if finished := await recover_lost(database, directory, key, node=node, gone=gone):
                log.warning("finished %d recording(s) that a lost node was writing", finished)
        except (OSError, SQLAlchemyError) as exc:
            log.warning("could not look for a lost node's recordings (%s); will try again", type(exc).__name__)


async def _finish(database: Database, directory: Path, key: bytes, row: Recording, node: str | None) -> bool:
    """Finish one recording if this process gets it (see the module's docstring); whether it did."""
    file = segment_file(directory, row)
    held, finished_already = await asyncio.to_thread(_hold, file.live_path, file.final_path)
    if held is None:
        return False
    try:
        async with database.session() as session:
            taken = await session.exec(  # type: ignore[call-overload]
                sa.update(Recording).where(col(Recording.id) == row.id,
                                           col(Recording.status) == RecordingStatus.RECORDING,
                                           col(Recording.node).is_(None) if row.node is None
                                           else col(Recording.node) == row.node).values(node=node))
            await session.commit()
        if taken.rowcount != 1:
            return False  # another node took it first, or its writer finished it
        finished: Finished | None
        try:
            async with database.session() as session:
                own = await key_of(session, row, key)
            if finished_already:
                finished = await asyncio.to_thread(examine, file.final_path, own)
            else:
                finished = await asyncio.to_thread(_refinish, file.live_path, file.final_path, own, held)
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
                keep_finished(fresh, finished, status)
                fresh.tracks = json.dumps(finished.streams)  # whose track is whose died with the process
            session.add(fresh)
            audit.with_commit(session, audit.Entry("system", "recording.recovered", row.consultation_id,
                                                   f"recording:{row.id}", {"status": status.value}))
            await session.commit()
        return True
    finally:
        held.close()


def _hold(live: Path, final: Path) -> tuple[BinaryIO | None, bool]:
    """The file to finish the recording from, locked: its live file if it is there, else the finished file a
    writer killed before it recorded it left (then True). (None, _) when a process holds it, or neither is
    here (on another node's own disk, or nothing was ever flushed)."""
    try:
        return take_over(live), False
    except FileNotFoundError:
        pass
    try:
        return take_over(final), True
    except FileNotFoundError:
        return None, False


def _refinish(live: Path, final: Path, key: bytes, held: BinaryIO) -> Finished:
    """``finalize`` the live file (locked: ``held``). A finished file already there is what a finish cut off by
    the crash left, half written, unless a process still writes it (then this one is not ours to finish)."""
    try:
        half = take_over(final)
    except FileNotFoundError:
        half = None
    else:
        if half is None:
            raise RuntimeError(f"{final.name} is being written by another process")
        final.unlink()
        half.close()
    return finalize(live, final, key, held=held)
