"""The database: an async SQLAlchemy engine, sessions, readiness, outages and Alembic migrations."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from . import models  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CONNECT_SECONDS = 5.0  # to open a connection to PostgreSQL
POOL_WAIT_SECONDS = 10.0  # for a free connection from the pool
log = logging.getLogger(__name__)

# SQLSTATEs of a PostgreSQL that cannot serve now, whatever was asked: class 08 (the connection failed or
# broke), the server shutting down, crashed or starting up, and no connection slot left.
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite's answers when another writer held the database past busy_timeout: nothing was done; a retry works.
_SQLITE_BUSY = ("database is locked", "database table is locked")
# Where a connection is made: an OSError raised through these frames is the database's, not a file's.
_DRIVER_MODULES = ("sqlalchemy.pool", "sqlalchemy.engine", "sqlalchemy.connectors", "asyncpg", "aiosqlite")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached right now (an outage: a retry later may work), as
    opposed to a fault of ours or a statement the database refused (a bug: a retry would fail the same way).

    Outages: a connection refused, reset, timed out or unresolvable while the pool connects (the drivers raise
    these as bare OSErrors); a connection SQLAlchemy saw break mid-statement (``connection_invalidated``); a
    PostgreSQL that is shutting down, starting up or out of connection slots; the pool's own timeout (every
    connection busy); SQLite locked by another writer past busy_timeout. Not outages: a constraint or a
    syntax error, a missing table (an OperationalError too, on SQLite), an OSError from anything but the
    database's connection (a file that cannot be written)."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return _driver_outage(exc.orig) or _driver_outage(exc.orig.__cause__ if exc.orig else None)
    if isinstance(exc, sa.exc.TimeoutError):  # QueuePool: no connection free within pool_timeout
        return True
    if isinstance(exc, OSError):  # TimeoutError and socket.gaierror included
        return any(frame.f_globals.get("__name__", "").startswith(_DRIVER_MODULES)
                   for frame, _ in traceback.walk_tb(exc.__traceback__))
    return _driver_outage(exc)


def _driver_outage(exc: BaseException | None) -> bool:
    """A driver's own exception (asyncpg's raised bare while connecting, or the one under a DBAPIError)."""
    if exc is None:
        return False
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES):
        return True
    return type(exc).__name__ == "OperationalError" and str(exc).startswith(_SQLITE_BUSY)


@dataclass
class Outage:
    """Whether the database is down, and what to log about it: one warning when an outage starts, at most one
    more every ``remind_seconds`` while it lasts (with the number of failures meanwhile), one info line when a
    connection works again. A database that flaps logs no more than that: an outage starting within
    ``remind_seconds`` of the last warning is counted, and told in the next line, instead of warned anew.

    Pure: each method takes the time and returns the line to log, or None."""

    remind_seconds: float = 60.0
    down_since: float | None = None
    warned_at: float | None = None
    warned_this_time: bool = False
    failures: int = 0  # since the last line

    def failed(self, exc: BaseException, now: float) -> str | None:
        self.failures += 1
        starting = self.down_since is None
        if starting:
            self.down_since = now
        if self.warned_at is not None and now - self.warned_at < self.remind_seconds:
            return None
        assert self.down_since is not None
        said = str(exc).strip().splitlines()
        cause = type(exc).__name__ + (f": {said[0][:200]}" if said else "")
        if starting:
            line = f"database unreachable ({cause}); answering 503 until it is back"
        elif self.warned_this_time:
            line = f"database still unreachable after {now - self.down_since:.0f} s ({cause})"
        else:  # an outage that began too soon after the last one's warning to be warned of then
            line = f"database unreachable for {now - self.down_since:.0f} s ({cause}); answering 503 until it is back"
        if self.failures > 1:
            line += f"; {self.failures} failures since the last warning"
        self.warned_at, self.warned_this_time, self.failures = now, True, 0
        return line

    def answered(self, now: float) -> str | None:
        if self.down_since is None:
            return None
        line = None
        if self.warned_this_time:
            line = f"database reachable again after {now - self.down_since:.1f} s"
            if self.failures:
                line += f" ({self.failures} more failures meanwhile)"
            self.failures = 0
        self.down_since, self.warned_this_time = None, False
        return line


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _on_sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # SQLite ignores foreign keys unless asked, and WAL lets pages be read while a write is under way.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class SyncSession(Session):
    """The session under each AsyncSession. server/audit/trail.py hooks its commits, to write audit entries in
    the same transaction as the change they record."""


class Database:
    """Owns the engine; hands out sessions; knows whether the schema is current."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A PostgreSQL that hangs rather than refusing must become a 503 within seconds, not asyncpg's minute.
        connect_args = {"timeout": CONNECT_SECONDS} if url.startswith("postgresql") else {}
        # hide_parameters: a failed statement's error (and so its logged traceback) must not carry the values
        # bound to it, which are patients' names, tokens' hashes and chat lines.
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args,
                                                       pool_timeout=POOL_WAIT_SECONDS, hide_parameters=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine.sync_engine, "connect", _on_sqlite_connect)
        # Copied into each new session's ``info``: what the app asks its sessions to carry (the audit trail's
        # listener for appends, server/audit/trail.py).
        self.session_info: dict[str, Any] = {}
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, sync_session_class=SyncSession,
                                            expire_on_commit=False, info=self.session_info)
        self.outage = Outage()
        self.clock: Callable[[], float] = time.monotonic
        # A connection handed out has passed its pre-ping: the database answers again.
        sa.event.listen(self.engine.sync_engine, "checkout", self._checked_out)

    def down(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the database cannot be reached (``unreachable``); if so it counts toward the
        outage, which is logged once (``Outage``), so the caller answers or retries without a traceback."""
        if not unreachable(exc):
            return False
        if line := self.outage.failed(exc, self.clock()):
            log.warning(line)
        return True

    def _checked_out(self, *_: object) -> None:
        if self.outage.down_since is not None and (line := self.outage.answered(self.clock())):
            log.info(line)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` on this database."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self._run_upgrade, revision)

    def _run_upgrade(self, connection: sa.Connection, revision: str) -> None:
        config = alembic_config(self.url)
        # env.py uses this connection instead of opening its own (Alembic's cookbook pattern),
        # which is what lets an upgrade run inside an already running event loop.
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    async def close(self) -> None:
        await self.engine.dispose()
