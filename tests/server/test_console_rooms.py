"""The console telling live calls itself where the nodes share a Redis: `telemed user disable`, `reset-password`
and `licence` reach a call at once, with the nodes' account sweep an hour away; a room nobody opened gets no
log; a bus that does not answer leaves the change to the sweep, and the change itself is made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlmodel import select

from server.appkeys import DATABASE
from server.console_rooms import ConsoleRooms
from server.devprocs import free_port
from server.models import User
from server.settings import Settings
from signaling.events import Expelling
from signaling.grants import room_id_for

from ..conftest import _start
from ..support.signaling_client import connect, expect, expect_closed, room_token
from .identity.test_redis_throttle import fresh_prefix
from .test_cli import run

NO_SWEEP = "3600"  # the nodes' account sweep: an hour away, so only the console's telling can reach the call


def _node(tmp_path: Path, redis_url: str) -> tuple[Settings, dict[str, str]]:
    """A node's settings on the Redis bus, keys under a prefix of this test's own (the Redis may be a shared
    one, TELEMED_TEST_REDIS_URL), and the shell's environment to reach the same rooms."""
    bus = {"TELEMED_REDIS_URL": redis_url, "TELEMED_REDIS_PREFIX": fresh_prefix()}
    return Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": NO_SWEEP, **bus}, data_dir=tmp_path / "var",
                         port=0), bus


@pytest.mark.parametrize(("command", "reason"), [(["disable"], "not-a-participant"),
                                                 (["reset-password", "--generate"], "session-ended")])
async def test_a_clinician_disabled_or_reset_at_the_shell_leaves_the_call_at_once(
        tmp_path: Path, redis_url: str, command: list[str], reason: str) -> None:
    """Guards the console telling the room itself on a Redis bus: with no sweep for an hour, dr.wang is sent out
    (`removed`, 4403) as soon as `telemed user disable` or `reset-password` returns, dr.li sees why he left and
    stays; the shell says the room was told."""
    settings, bus = _node(tmp_path, redis_url)
    async with await _start(settings) as client:
        li = await connect(client, await room_token(client, "dr.li"))
        await expect(li, "joined")
        wang = await connect(client, await room_token(client, "dr.wang"))
        await expect(wang, "joined")
        await expect(li, "participant-joined")
        done = await asyncio.to_thread(run, "user", command[0], "dr.wang", *command[1:], data_dir=settings.data_dir,
                                       env=bus)
        assert done.returncode == 0, done.stderr
        assert "Told the 1 open room(s)" in done.stderr
        assert (await expect(wang, "removed"))["message"]
        await expect_closed(wang, 4403)
        assert (await expect(li, "participant-left"))["reason"] == reason
        await li.close()


async def test_a_licence_changed_at_the_shell_reaches_the_seat_at_once(tmp_path: Path, redis_url: str) -> None:
    """Guards `telemed user licence` on a Redis bus: dr.wang, a host in the call, gets `grants` without admit
    as soon as his licence number is changed at the shell, with no sweep for an hour; `--verify` gives them
    back the same way."""
    settings, bus = _node(tmp_path, redis_url)
    async with await _start(settings) as client:
        wang = await connect(client, await room_token(client, "dr.wang"))
        await expect(wang, "joined")
        shell = {"data_dir": settings.data_dir, "env": bus}
        done = await asyncio.to_thread(run, "user", "licence", "dr.wang", "--number", "110320000601234", **shell)
        assert done.returncode == 0, done.stderr
        assert (await expect(wang, "grants"))["grants"]["admit"] is False
        done = await asyncio.to_thread(run, "user", "licence", "dr.wang", "--verify", **shell)
        assert done.returncode == 0, done.stderr
        assert "Told the 1 open room(s)" in done.stderr, "one room, however many changes it was told"
        assert (await expect(wang, "grants"))["grants"]["admit"] is True
        await wang.close()


async def test_a_room_nobody_opened_is_not_started_by_the_console(tmp_path: Path, redis_url: str) -> None:
    """Guards appending only to a room's existing log: disabling dr.wang at the shell while no call is open
    writes no room log to Redis (an expulsion alone would start a room without its members) and says no room
    was told."""
    settings, bus = _node(tmp_path, redis_url)
    async with await _start(settings):
        done = await asyncio.to_thread(run, "user", "disable", "dr.wang", data_dir=settings.data_dir, env=bus)
        assert done.returncode == 0, done.stderr
        assert "Told no room" in done.stderr
    redis = Redis.from_url(redis_url)
    try:
        assert await redis.keys(f"{settings.redis_prefix}:room:*") == []
    finally:
        await redis.aclose()


async def test_a_bus_that_does_not_answer_leaves_the_call_to_the_sweep(tmp_path: Path) -> None:
    """Guards the console when Redis is away: `telemed user disable` still disables the account (exit 0), within
    a bounded wait, and says that the room it could not reach follows at the nodes' next account sweep."""
    settings = Settings.load(environ={}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        started = time.monotonic()
        done = await asyncio.to_thread(run, "user", "disable", "dr.wang", data_dir=settings.data_dir,
                                       env={"TELEMED_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
        assert done.returncode == 0, done.stderr
        assert "did not answer for 1 room(s)" in done.stderr and "account sweep" in done.stderr
        assert time.monotonic() - started < 30, "the console waits for the bus a bounded time"
        async with client.app[DATABASE].session() as session:
            wang = (await session.exec(select(User).where(User.username == "dr.wang"))).one()
        assert wang.is_active is False


async def test_told_and_missed_are_counted_per_room(redis_url: str) -> None:
    """Guards the counts the shell reports: a room with a log is told (its log grows by the event), one without
    is neither told nor missed, and a Redis that refuses connections counts each room as missed, at once."""
    prefix = fresh_prefix()
    rooms = ConsoleRooms(redis_url, prefix=prefix)
    redis = Redis.from_url(redis_url)
    try:
        await redis.xadd(f"{prefix}:room:{room_id_for(7)}:log", {"e": b"{}"})
        event = Expelling(identity="user:2", reason="not-a-participant")
        await rooms.tell(7, event)
        await rooms.tell(8, event)
        await rooms.tell(7, event)  # (a licence changed and verified tells a room twice: one room told)
        assert (rooms.told, rooms.missed) == ({7}, set())
        assert await redis.xlen(f"{prefix}:room:{room_id_for(7)}:log") == 3
        assert await redis.exists(f"{prefix}:room:{room_id_for(8)}:log") == 0
    finally:
        await redis.aclose()
        await rooms.close()
    away = ConsoleRooms(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix)
    try:
        await away.tell(7, event)
        assert (away.told, away.missed) == (set(), {7})
    finally:
        await away.close()
