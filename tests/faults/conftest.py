"""Fault tests' fixtures: three real nodes on one Redis with short timers, and the recovery times measured,
collected into one JSON file (``TELEMED_FAULT_TIMES``, else ``fault-recovery.json`` in pytest's base
temporary directory) and printed at the end of the run, for docs/."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.devprocs import RedisServer

from ..support.cluster import Cluster

PRESENCE_TTL = 3.0  # a killed node is declared lost within this; short, so each test stays short
DRAIN_SECONDS = 5.0  # a stopping node exits by then
RECONNECT_GRACE = 10.0

_FIGURES: dict[str, dict[str, float]] = {}
_WRITTEN: list[Path] = []


@pytest.fixture
def start_cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Callable[..., Cluster]]:
    """``start_cluster(presence_ttl=..., media=..., env_of=...)``: nodes a, b and c (and the media nodes named
    in ``media``; ``env_of``: a node's own settings) sharing one data directory and one Redis, with short
    timers; their logs in ``tmp_path/logs``. Stopped at the end of the test."""
    started: list[Cluster] = []

    def start(presence_ttl: float = PRESENCE_TTL, *, media: tuple[str, ...] = (),
              env_of: dict[str, dict[str, str]] | None = None) -> Cluster:
        env = {"TELEMED_REDIS_URL": redis_server.url, "TELEMED_PRESENCE_TTL": str(presence_ttl),
               "TELEMED_DRAIN_SECONDS": str(DRAIN_SECONDS), "TELEMED_RECONNECT_GRACE": str(RECONNECT_GRACE)}
        logs = tmp_path / "logs"
        logs.mkdir()
        print(f"node logs: {logs}")
        cluster = Cluster(tmp_path / "var", env, logs=logs, media=media, env_of=env_of)
        started.append(cluster)
        return cluster.start()

    try:
        yield start
    finally:
        for cluster in started:
            cluster.close()


@pytest.fixture
def cluster(start_cluster: Callable[..., Cluster]) -> Cluster:
    """Nodes a, b and c with a presence TTL of PRESENCE_TTL."""
    return start_cluster()


@pytest.fixture
def recovery(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, float], None]:
    """``recovery(what, seconds)``: keep one measured time under this test's name, and write them all out."""
    path = Path(os.environ.get("TELEMED_FAULT_TIMES") or tmp_path_factory.getbasetemp() / "fault-recovery.json")

    def record(what: str, seconds: float) -> None:
        _FIGURES.setdefault(request.node.name, {})[what] = round(seconds, 3)
        print(f"{request.node.name}: {what} = {seconds:.2f} s")
        path.write_text(json.dumps(_FIGURES, indent=2) + "\n")
        if path not in _WRITTEN:
            _WRITTEN.append(path)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("fault recovery times (seconds)")
    for test, figures in _FIGURES.items():
        for what, seconds in figures.items():
            terminalreporter.write_line(f"{test}: {what} = {seconds:.2f}")
    for path in _WRITTEN:
        terminalreporter.write_line(f"written to {path}")
