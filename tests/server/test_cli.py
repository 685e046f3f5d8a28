"""The telemed command as a user runs it: a real process on a free port, and the admin subcommands."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from server.audit import trail as audit
from server.db import Database
from server.devprocs import TelemedNode
from server.models import AuditEvent

TELEMED = [sys.executable, "-m", "server.cli"]
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, data_dir: Path, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TELEMED, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "TELEMED_DATA_DIR": str(data_dir), **(env or {})})


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[str, str]]:
    """Start ``telemed serve --demo --port 0``; yield its URL and what it printed up to the logins."""
    node = TelemedNode(data_dir).start()
    try:
        yield node.url, node.printed
    finally:
        assert node.stop() == 0, "a SIGTERM is a clean shutdown"


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_demo_answers_health_and_login_and_prints_the_logins(tmp_path: Path) -> None:
    """``telemed serve --demo`` on a free port answers /healthz and the login page (in English when asked), prints the
    demo accounts' usernames and their password, keeps its SQLite database in the data directory, and ends cleanly on
    SIGTERM."""
    with serving(tmp_path / "var") as (url, printed):
        assert get(f"{url}/healthz") == (200, '{"status": "ok"}')
        status, page = get(f"{url}/login", {"Accept-Language": "en"})
        assert status == 200 and "<h1>Log in</h1>" in page
        for username in ("dr.li", "dr.wang", "coord.zhao", "admin", "auditor"):
            assert username in printed
        assert "telemed-demo" in printed
    assert (tmp_path / "var" / "telemed.db").exists()


def test_a_restart_does_not_log_anyone_out(tmp_path: Path) -> None:
    """A token issued by one run of ``telemed serve`` is still accepted by the next on the same data directory: a
    restart or a deploy logs nobody out."""
    with serving(tmp_path / "var") as (url, _):
        token = post_json(f"{url}/api/auth/login", {"username": "dr.li", "password": "telemed-demo"})["access_token"]
    with serving(tmp_path / "var") as (url, _):
        status, body = get(f"{url}/api/me", {"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(body)["username"] == "dr.li"


def test_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    """A malformed setting (TELEMED_PORT=http) stops ``telemed serve`` with exit status 2 and a message naming the
    variable, not a traceback."""
    result = run("serve", data_dir=tmp_path, env={"TELEMED_PORT": "http"})
    assert result.returncode == 2
    assert "TELEMED_PORT" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_a_shared_database_that_is_behind(tmp_path: Path, postgres_url: str) -> None:
    """``telemed serve`` on a PostgreSQL database whose schema is behind (here, empty) refuses to start, exit status 2,
    and tells the operator to run ``telemed db upgrade``."""
    result = run("serve", "--port", "0", data_dir=tmp_path, env={"TELEMED_DATABASE_URL": postgres_url})
    assert result.returncode == 2
    assert "telemed db upgrade" in result.stderr


def test_db_upgrade_then_demo_then_user_create(tmp_path: Path, postgres_url: str) -> None:
    """An operator's first steps on a shared PostgreSQL database: ``db upgrade`` reaches the head revision, ``demo``
    seeds and the second time says it is already there, and ``user create`` makes an account (a Chinese display name,
    the hospital by name, the password on stdin); a taken username, a password under 10 characters and an unknown
    hospital are each refused with exit status 2 and the reason."""
    env = {"TELEMED_DATABASE_URL": postgres_url}
    upgraded = run("db", "upgrade", data_dir=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {Database.head_revision()}" in upgraded.stdout
    assert "added" in run("demo", data_dir=tmp_path, env=env).stdout
    assert "already there" in run("demo", data_dir=tmp_path, env=env).stdout

    created = run("user", "create", "--username", "dr.sun", "--display-name", "孙涛", "--role", "specialist",
                  "--hospital", "江南省人民医院 Jiangnan Provincial People's Hospital", "--password-stdin",
                  data_dir=tmp_path, env=env, stdin="a long enough password\n")
    assert created.returncode == 0, created.stderr
    assert "Created specialist 'dr.sun'" in created.stdout

    taken = run("user", "create", "--username", "dr.sun", "--role", "specialist", "--hospital", "1",
                "--password-stdin", data_dir=tmp_path, env=env, stdin="another long password\n")
    assert taken.returncode == 2 and "taken" in taken.stderr
    weak = run("user", "create", "--username", "x", "--role", "admin", "--hospital", "1", "--password-stdin",
               data_dir=tmp_path, env=env, stdin="short\n")
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    nowhere = run("user", "create", "--username", "y", "--role", "admin", "--hospital", "Nowhere",
                  "--password-stdin", data_dir=tmp_path, env=env, stdin="a long enough password\n")
    assert nowhere.returncode == 2 and "no hospital 'Nowhere'" in nowhere.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Telemedicine video consultations"),
        (["serve"], "--demo"),
        (["db", "upgrade"], "schema migrations"),
        (["demo"], "demo medical partnership"),
        (["user", "create"], "--password-stdin"),
    ],
)
def test_help_says_what_each_command_does(tmp_path: Path, args: list[str], says: str) -> None:
    """Each row: ``--help`` of a command (the top level, serve, db upgrade, demo, user create) exits 0 and says what
    that command does or offers."""
    result = run(*args, "--help", data_dir=tmp_path)
    assert result.returncode == 0
    assert says in result.stdout


def test_console_script_is_installed() -> None:
    """Installing the package puts a ``telemed`` command beside the interpreter."""
    assert shutil.which("telemed", path=str(Path(sys.executable).parent)), "pip install should create `telemed`"


async def test_sigterm_closes_signaling_sockets_with_1001_and_exits_promptly(tmp_path: Path) -> None:
    """A rolling deploy: browsers are told 'going away' at once and reconnect elsewhere."""
    import time

    import aiohttp

    from ..support.signaling_client import bearer, connect, expect

    node = TelemedNode(tmp_path / "var").start()
    async with aiohttp.ClientSession() as http:
        headers = await bearer(http, node.url, "dr.li")
        token = (await (await http.post(f"{node.url}/api/consultations/1/room-token", headers=headers)).json())
        ws = await connect(http, token["token"], url=f"{node.url.replace('http', 'ws')}{token['signaling_path']}")
        await expect(ws, "joined")
        started = time.monotonic()
        node.process.send_signal(signal.SIGTERM)
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        assert await asyncio.to_thread(node.process.wait, 20) == 0
        assert time.monotonic() - started < 10


def test_audit_verify_reports_the_first_altered_removed_or_inserted_entry(tmp_path: Path) -> None:
    """``telemed audit verify`` passes an untouched trail and counts its entries (exit 0); an entry altered in the
    database is named (entry 2: altered, exit 1), and, that undone, with entry 3 deleted, entry 4 is named as one before
    which an entry was removed or inserted; it still is once a forged entry, linked to entry 2 and hashed right, is
    inserted in the gap. (The unique ``prev_hash`` refuses an entry linked to entry 2 while entry 3 stands.)"""
    assert run("demo", data_dir=tmp_path).returncode == 0
    database_file = tmp_path / "telemed.db"

    async def append() -> None:
        database = Database(f"sqlite+aiosqlite:///{database_file}")
        for n in range(5):
            await audit.record(database, actor=f"user:{n}", action="patient.viewed", subject="patient:1")
        await database.close()
    with sqlite3.connect(database_file) as db:
        seeded = db.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # the demo referrals' entries
    asyncio.run(append())
    holds = run("audit", "verify", data_dir=tmp_path)
    assert holds.returncode == 0 and f"{seeded + 5} entries" in holds.stdout, holds.stderr

    with sqlite3.connect(database_file) as db:
        db.execute("UPDATE audit_event SET actor = 'user:999' WHERE id = 2")
    altered = run("audit", "verify", data_dir=tmp_path)
    assert altered.returncode == 1 and "entry 2: altered" in altered.stderr
    with sqlite3.connect(database_file) as db:
        db.execute("UPDATE audit_event SET actor = 'user:1' WHERE id = 2")
        db.execute("DELETE FROM audit_event WHERE id = 3")
    removed = run("audit", "verify", data_dir=tmp_path)
    assert removed.returncode == 1 and "entry 4: an entry before it was removed or inserted" in removed.stderr

    async def insert() -> None:
        database = Database(f"sqlite+aiosqlite:///{database_file}")
        async with database.session() as session:
            second = await session.get(AuditEvent, 2)
            assert second is not None
            forged = audit.Entry("user:999", "patient.viewed", subject="patient:1").after(second.hash)
            forged.id = 3
            session.add(forged)
            await session.commit()
        await database.close()
    asyncio.run(insert())
    with sqlite3.connect(database_file) as db:
        assert db.execute("SELECT actor FROM audit_event WHERE id = 3").fetchone() == ("user:999",)
    inserted = run("audit", "verify", data_dir=tmp_path)
    assert inserted.returncode == 1 and "entry 4: an entry before it was removed or inserted" in inserted.stderr
