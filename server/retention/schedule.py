"""The purge on a schedule, by one node at a time, however many nodes run.

Two leases in the database (``lease.py``): ``retention.schedule`` is taken for a whole interval by the node
whose turn it is, so runs are an interval apart whichever node makes them; ``retention.run`` is held only while
a purge runs (by a node or by ``telemed retention run``), so two never run at once.
"""

from __future__ import annotations

import asyncio
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
RUN_TTL = timedelta(hours=1)  # a node that dies mid-run frees the purge for another after this long
CHECK_SECONDS = 300.0  # how often a node asks whether it is its turn (at most every interval)


def holder_name(node: str = "") -> str:
    return f"{node or socket.gethostname()}:{os.getpid()}"


async def run_exclusive(database: Database, root: Path, periods: Periods, holder: str, *,
                        now: datetime | None = None) -> purge.Outcome | None:
    """One purge, unless another is running (None then)."""
    if not await lease.acquire(database, RUN_LEASE, holder, RUN_TTL):
        return None
    try:
        return await purge.run(database, root, periods, now=now)
    finally:
        await lease.release(database, RUN_LEASE, holder)


async def loop(database: Database, root: Path, periods: Periods, holder: str, *, interval: float,
               check_every: float | None = None) -> None:
    """Forever: every ``check_every`` seconds, purge if no node has in the last ``interval`` seconds. A
    database that is down skips a turn; the next check tries again."""
    check = min(interval, CHECK_SECONDS) if check_every is None else check_every
    while True:
        await asyncio.sleep(check)
        try:
            if await lease.acquire(database, SCHEDULE_LEASE, holder, timedelta(seconds=interval),
                                   renew=False):
                await run_exclusive(database, root, periods, holder)
        except (OSError, SQLAlchemyError):
            log.exception("the scheduled purge could not run; will try at the next check")
