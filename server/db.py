"""The database: an async SQLAlchemy engine, sessions, readiness and Alembic migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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
        self.engine: AsyncEngine = create_async_engine(url, echo=echo, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine.sync_engine, "connect", _on_sqlite_connect)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, sync_session_class=SyncSession,
                                            expire_on_commit=False)

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
