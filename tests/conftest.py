"""Shared fixtures: settings in a temporary data directory, real servers on port 0, real PostgreSQL."""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import os
import secrets
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import aiohttp.web_app
import aiortc.rtcrtpreceiver as aiortc_receiver
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from server.app import create_app, prepare_database
from server.db import Database
from server.demo import DEMO_PASSWORD, seed_demo
from server.devprocs import RedisServer, TelemedNode
from server.settings import Settings

from .support.nodes import PRESENCE_TTL

T = TypeVar("T")
POSTGRES_ADMIN_URL = os.environ.get(
    "TELEMED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(environ={}, data_dir=tmp_path / "var", port=0)


async def _start(settings: Settings) -> TestClient:
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    await seed_demo(database)
    client = TestClient(TestServer(create_app(settings, database=database), host="127.0.0.1", port=0))
    await client.start_server()
    return client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    """A real server on a free port, seeded with the demo partnership."""
    client = await _start(settings)
    yield client
    await client.close()


async def login(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Log in through the JSON API; returns the Authorization header to send."""
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


def base_url(client: TestClient) -> URL:
    return client.make_url("/")


# ---- PostgreSQL ----

_postgres_problem: list[str | None] = []


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run admin work on its own loop in a thread: sync fixtures may be set up while a test's loop runs."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_ADMIN_URL.replace("+asyncpg", "")), 5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_unreachable() -> str | None:
    if not _postgres_problem:
        try:
            _run(_admin("SELECT 1"))
            _postgres_problem.append(None)
        except Exception as exc:
            where = URL(POSTGRES_ADMIN_URL)
            _postgres_problem.append(f"PostgreSQL at {where.host}:{where.port} is not reachable "
                                     f"({type(exc).__name__}: {exc}); set TELEMED_TEST_POSTGRES_URL")
    return _postgres_problem[0]


def uses_postgres(item: pytest.Item) -> bool:
    """Whether a collected test gets a real PostgreSQL database: it asks for ``postgres_url``, or it is the
    postgres variant of ``database_url`` (which asks for ``postgres_url`` only once it runs)."""
    names = getattr(item, "fixturenames", ())
    if "postgres_url" in names:
        return True
    callspec = getattr(item, "callspec", None)
    return "database_url" in names and callspec is not None and callspec.params.get("database_url") == "postgres"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
class _DaemonThreads:
    """``threading`` as aiortc's receivers see it in tests: their decoder threads are daemons."""

    Thread = functools.partial(threading.Thread, daemon=True)
    Event = threading.Event


def pytest_configure(config: pytest.Config) -> None:
    """aiortc's receivers decode in threads that are not daemons and end only when the receiver stops. The
    tests' aiortc peers close connections mid-negotiation (a relay replaced, a node killed), and some receivers
    are then never stopped: their threads kept a whole run from exiting for a minute, one file of fault tests
    for good. In tests they are daemons, so the process exits when the tests are done."""
    aiortc_receiver.threading = _DaemonThreads  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _forget_finished_apps() -> Iterator[None]:
    """aiohttp memoizes each app's middleware chain in a module-level cache of 1024 entries
    (``aiohttp.web_app._cached_build_middleware``), whose closures hold the app: in a process that makes an
    app per test, the last 1024 apps, each with its routes and SQLAlchemy metadata, stayed alive. The whole
    run's heap grew to tens of millions of objects, every full collection walked them all, and the last one
    (pytest's own, after the summary) took over 30 s. A server makes one app; the tests forget theirs."""
    yield
    cache = getattr(aiohttp.web_app, "_cached_build_middleware", None)
    if cache is not None:
        cache.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Whole runs have taken about a minute to exit after their summary: if this one still has not exited
    30 s from now, print every thread's stack, to show what it waits for. (Not in an xdist worker: one that has
    run its share waits, rightly, for the others.)"""
    if hasattr(config, "workerinput"):
        return
    faulthandler.dump_traceback_later(30, exit=False, file=sys.__stderr__)


# Layers whose tests measure time or media on real peers, browsers and processes: `make test` runs them
# (marked ``alone``) after the others, with the machine to themselves; the others run two at a time.
ALONE_LAYERS = ("e2e", "faults", "deploy", "media")
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark exactly the tests that use PostgreSQL ``postgres``, so ``-m postgres`` runs that layer alone.
    The marker follows the fixtures, not the file: a module-wide mark would select SQLite variants too.

    Mark every test of ``ALONE_LAYERS`` ``alone``."""
    misplaced = []
    for item in items:
        if item.path.is_relative_to(TESTS) and item.path.relative_to(TESTS).parts[0] in ALONE_LAYERS:
            item.add_marker(pytest.mark.alone)
        if uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        elif item.get_closest_marker("postgres") is not None:
            misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError("marked postgres but never given a PostgreSQL database (tests/conftest.py marks "
                                "the tests that use one; drop the mark): " + ", ".join(misplaced))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if request.node.get_closest_marker("postgres") is None:
        pytest.fail(f"{request.node.nodeid} reaches PostgreSQL without the postgres marker: teach "
                    "uses_postgres() in tests/conftest.py how it gets its database")
    if problem := _postgres_unreachable():
        pytest.skip(problem)
    name = f"telemed_test_{secrets.token_hex(6)}"
    _run(_admin(f'CREATE DATABASE "{name}"'))
    yield str(URL(POSTGRES_ADMIN_URL).with_path(f"/{name}"))
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite database and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


# ---- Redis ----


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """TELEMED_TEST_REDIS_URL when set, else a redis-server the test starts itself."""
    return os.environ.get("TELEMED_TEST_REDIS_URL") or request.getfixturevalue("redis_server").url


@pytest.fixture
def nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[TelemedNode, TelemedNode]]:
    """Two real server processes, nodes a and b, sharing one data directory (database and signing key)
    and one Redis."""
    env = {"TELEMED_REDIS_URL": redis_server.url, "TELEMED_PRESENCE_TTL": str(PRESENCE_TTL),
           "TELEMED_RECONNECT_GRACE": "30"}
    data = tmp_path / "var"
    with TelemedNode(data, {**env, "TELEMED_NODE_ID": "node-a"}) as a:
        with TelemedNode(data, {**env, "TELEMED_NODE_ID": "node-b"}) as b:
            yield a, b


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
