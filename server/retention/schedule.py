"""The purge on a schedule, by one node at a time, however many nodes run.

Two leases in the database (``lease.py``): ``retention.schedule`` is taken for a whole interval by the node
whose turn it is, so runs are an interval apart whichever node makes them; ``retention.run`` is held only while
a purge runs (by a node or by ``telemed retention run``), so two never run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ..db import Database
from . import lease, purge
from .policy import Periods

log = logging.getLogger(__name__)

SCHEDULE_LEASE = "retention.schedule"
RUN_LEASE = "retention.run"
RUN_TTL = timedelta(minutes=10)  # a node that dies mid-run frees the purge for another after this long
RENEW_EVERY = RUN_TTL / 3  # a long purge keeps its lease by renewing it well before it expires
CHECK_SECONDS = 300.0  # how often a node asks whether it is its turn (at most every interval)


def holder_name(node: str = "") -> str:
    return f"{node or socket.gethostname()}:{os.getpid()}"


class LeaseLost(Exception):
    """A job's lease was taken by another holder while the job ran."""


async def run_exclusive(database: Database, root: Path, periods: Periods, holder: str, *,
                        now: datetime | None = None, renew_every: timedelta = RENEW_EVERY) -> purge.Outcome | None:
    """One purge, unless another is running (None then).

    The lease is renewed while the purge runs, however long it takes; if a renewal finds the lease gone (this
    node was cut off from the database for longer than ``RUN_TTL`` and another took it), the purge stops, so
    two never run at once. What it purged until then stays purged: each item is its own transaction."""
    if not await lease.acquire(database, RUN_LEASE, holder, RUN_TTL):
        return None
    running = asyncio.ensure_future(purge.run(database, root, periods, now=now))
    try:
        while True:
            done, _ = await asyncio.wait({running}, timeout=renew_every.total_seconds())
            if done:
                return running.result()
            try:
                kept = await lease.acquire(database, RUN_LEASE, holder, RUN_TTL)
            except (OSError, SQLAlchemyError):
                continue  # the purge itself will fail or go on; the lease has time left until RUN_TTL
            if not kept:
                log.error("the purge's lease was taken by another holder; stopping this purge")
                running.cancel()
                raise LeaseLost(RUN_LEASE)
    finally:
        if not running.done():
            running.cancel()
            # let it stop (a commit or a file removal under way ends first) before another may take the lease
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running
        await lease.release(database, RUN_LEASE, holder)


async def loop(database: Database, root: Path, periods: Periods, holder: str, *, interval: float,
               check_every: float | None = None) -> None:
    """Forever: every ``check_every`` seconds, purge if no node has in the last ``interval`` seconds. A
    database that is down, or any other failure of one run, skips a turn; the next check tries again."""
    check = min(interval, CHECK_SECONDS) if check_every is None else check_every
    while True:
        await asyncio.sleep(check)
        try:
            if await lease.acquire(database, SCHEDULE_LEASE, holder, timedelta(seconds=interval),
                                   renew=False):
                await run_exclusive(database, root, periods, holder)
        except Exception:  # the loop must outlive any one run's failure: a dead loop would purge nothing, silently
            log.exception("the scheduled purge could not run; will try at the next check")
