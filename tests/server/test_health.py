"""Health probes: liveness always; readiness while the database, Redis (when configured) and the recordings
directory answer, each check named in the answer with what is wrong, and nothing that names a path or secret."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import threading
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server import storage
from server.api.health import Readiness
from server.app import create_app
from server.appkeys import RECORDING_KEY
from server.db import Database
from server.devprocs import RedisServer
from server.settings import Settings
from server.storage import MARKER

from ..conftest import _start


async def readiness(client: TestClient, status: int) -> Readiness:
    """The /readyz answer, which must have the status given and the documented shape."""
    response = await client.get("/readyz")
    assert response.status == status, await response.text()
    return Readiness.model_validate(await response.json())


async def test_healthz_and_readyz(client: TestClient) -> None:
    """A fresh node is ready: every check ok, no problem, no relay yet (and no limit on them)."""
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await readiness(client, 200)
    assert ready.status == "ready" and ready.problems == {}
    assert ready.checks == {"database": "ok", "storage": "ok", "relays": "ok"}
    assert ready.relays.model_dump() == {"rooms": 0, "streams": 0, "limit": None}


async def test_readyz_is_503_when_the_database_is_gone(settings: Settings) -> None:
    """With the database unreachable, /readyz is 503 not-ready, its database check unreachable and its problem saying
    the database does not answer without showing the database's URL; /healthz still answers 200, so the node is taken
    out of rotation, not restarted."""
    # Port 9 (discard) has nothing listening here: connections are refused at once.
    unreachable = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    client = TestClient(TestServer(create_app(settings, database=unreachable), host="127.0.0.1", port=0))
    await client.start_server()
    try:
        ready = await readiness(client, 503)
        assert ready.status == "not-ready" and ready.checks["database"] == "unreachable"
        assert ready.problems["database"].startswith("the database does not answer")
        assert "nobody" not in ready.problems["database"], "the database's URL is not shown"
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_readyz_follows_redis_down_and_back_up(settings: Settings, redis_server: RedisServer) -> None:
    """A node whose Redis goes away says so, and is ready again once Redis returns, with no restart."""
    client = await _start(dataclasses.replace(settings, redis_url=redis_server.url))
    try:
        assert (await readiness(client, 200)).checks["redis"] == "ok"
        redis_server.stop()
        down = await readiness(client, 503)
        assert down.checks["redis"] == "unreachable" and down.problems == {"redis": "Redis does not answer"}
        redis_server.start()
        assert (await client.get("/readyz")).status == 200
    finally:
        await client.close()


async def test_readyz_says_when_the_recordings_storage_is_gone(client: TestClient, settings: Settings) -> None:
    """Storage that is not mounted (the directory gone, or an empty mount point without the marker: check
    ``unmounted``) or unusable (``unavailable``) makes the node not ready, with the reason and without the
    directory's path; it is ready again once the storage is back."""
    directory = settings.recordings_dir
    moved = directory.with_name("elsewhere")
    directory.rename(moved)
    gone = await readiness(client, 503)
    assert gone.checks == {"database": "ok", "storage": "unmounted", "relays": "ok"}
    assert gone.problems == {"storage": "the recordings directory is missing (is its storage mounted?)"}
    assert str(directory) not in json.dumps(gone.model_dump()) and "var" not in gone.problems["storage"]

    directory.mkdir()  # an empty mount point: the storage is not mounted on it
    empty = await readiness(client, 503)
    assert empty.checks["storage"] == "unmounted" and "marker" in empty.problems["storage"]
    directory.rmdir()

    directory.write_bytes(b"")  # something else where the directory should be
    other = await readiness(client, 503)
    assert other.checks["storage"] == "unavailable"
    assert other.problems["storage"] == "the recordings directory is not a directory"
    directory.unlink()

    moved.rename(directory)
    assert (await readiness(client, 200)).checks["storage"] == "ok"


async def test_readyz_says_when_the_files_are_sealed_under_another_key(client: TestClient,
                                                                        settings: Settings) -> None:
    """A node given another recording key than the shared directory's files are sealed under (its marker
    names the key's fingerprint) is not ready, and says what to do without naming either key."""
    marker = settings.recordings_dir / MARKER
    assert storage.fingerprint(client.app[RECORDING_KEY]) in marker.read_text()
    other = storage.fingerprint(b"\x01" * 32)
    marker.write_text(storage.MARKER_TEXT + storage.FINGERPRINT_LINE + other + "\n")
    ready = await readiness(client, 503)
    assert "give every node the same TELEMED_RECORDING_KEY" in ready.problems["storage"]
    assert other not in ready.problems["storage"] and client.app[RECORDING_KEY].hex() not in json.dumps(
        ready.model_dump())


async def test_readyz_says_when_the_recordings_storage_hangs(client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage server that does not answer (a hung NFS mount) makes the node not ready within the probe's
    time; while that probe still hangs, the next answers at once instead of starting another stuck thread;
    once the storage answers again, so does the probe."""
    answered = threading.Event()
    real = storage.problem

    def hung(*args: Any, **kwargs: Any) -> str | None:
        answered.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(storage, "problem", hung)
    started = time.monotonic()
    first = await readiness(client, 503)
    assert first.problems == {"storage": "the recordings directory did not answer within 2 s"}
    assert storage.PROBE_SECONDS <= time.monotonic() - started < storage.PROBE_SECONDS + 2
    started = time.monotonic()
    assert (await readiness(client, 503)).problems == first.problems
    assert time.monotonic() - started < 1, "no second probe waits behind the hung one"
    answered.set()
    await asyncio.sleep(0.2)  # the hung probe returns
    assert (await readiness(client, 200)).checks["storage"] == "ok"


async def test_readyz_says_when_the_recordings_storage_is_read_only(client: TestClient, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage that reads but refuses writes (a read-only mount, a full disk) makes the node not ready: new
    recordings and attachments could not be kept. (The tests run as root, whom permissions do not stop, so
    the file system's refusal is what is simulated.)"""
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(storage.tempfile, "mkstemp", refuse)
    ready = await readiness(client, 503)
    assert ready.problems == {"storage": "the recordings directory cannot be used (EROFS)"}
    monkeypatch.undo()
    assert (await readiness(client, 200)).checks["storage"] == "ok"
    assert [p.name for p in settings.recordings_dir.iterdir()] == [MARKER], "the probe leaves nothing behind"
