"""The admin services on a seeded database, on SQLite and on PostgreSQL, with the demo's principals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from server.db import Database
from server.demo import seed_demo
from server.models import User
from server.permissions import Principal


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.upgrade()
    await seed_demo(db)
    yield db
    await db.close()


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


@pytest.fixture
async def admin(database: Database) -> Principal:
    return await principal(database, "admin")
