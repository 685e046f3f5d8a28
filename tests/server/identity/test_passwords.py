"""Password hashing with scrypt, and checking passwords off the event loop."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import statistics
import sys
import threading
import time

import pytest
from aiohttp.test_utils import TestClient

from server.demo import DEMO_PASSWORD
from server.identity.passwords import ScryptParams, hash_password, needs_rehash, password_problem, verify_password

from ...conftest import login

FAST = ScryptParams(n=2**10, r=8, p=1)


def test_right_password_verifies_and_wrong_does_not() -> None:
    """The right password verifies against its stored hash; one differing only in a letter's case, or an empty one,
    does not."""
    stored = hash_password("correct horse battery", FAST)
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_same_password_hashes_differently_each_time() -> None:
    """Hashing the same password twice gives two different hashes (a fresh salt each time), so equal passwords cannot
    be spotted in a stolen table."""
    assert hash_password("same password", FAST) != hash_password("same password", FAST)


def test_hash_names_scheme_and_parameters_not_the_password() -> None:
    """A stored hash starts with its scheme and scrypt parameters, so they can be raised later, and does not contain
    the password's text."""
    stored = hash_password("a secret phrase", FAST)
    assert stored.startswith("scrypt$1024$8$1$")
    assert "secret" not in stored


def test_default_parameters_are_memory_hard() -> None:
    """16 MiB per hash: 128 * n * r bytes."""
    params = ScryptParams()
    assert 128 * params.n * params.r >= 16 * 1024 * 1024
    assert verify_password("default params", hash_password("default params"))


@pytest.mark.parametrize(
    "stored", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$1024$8$1$!!$AAAA"])
def test_malformed_hash_never_verifies(stored: str) -> None:
    """Each row: a damaged or foreign stored hash (empty, plain text, another scheme, a non-numeric parameter, bad
    base64) never verifies any password, and raises nothing."""
    assert not verify_password("anything", stored)


def test_weaker_hashes_ask_to_be_rehashed() -> None:
    """A hash made with weaker parameters than the defaults, or one that cannot be parsed, asks to be rehashed; one
    made with the current parameters does not."""
    assert needs_rehash(hash_password("pw for rehash", FAST))
    assert not needs_rehash("scrypt$16384$8$1$AAAA$AAAA")
    assert needs_rehash("garbage")


@pytest.mark.parametrize(("password", "problem"), [("short", True), ("long enough!", False)])
def test_new_password_length(password: str, problem: bool) -> None:
    """Each row: a new password shorter than the minimum length has a problem; a long enough one has none."""
    assert (password_problem(password) is not None) is problem


async def test_a_burst_of_logins_leaves_the_event_loop_free(client: TestClient) -> None:
    """Twenty logins at once are hashed on the checker's own threads, so the event loop, which relays
    media and signaling, never stalls for anything like one hash (it stalled for every one before)."""
    stored, wall, cpu = hash_password("one hash, timed"), [], []
    for _ in range(3):
        started, started_cpu = time.perf_counter(), time.thread_time()
        verify_password("one hash, timed", stored)
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    hash_wall, hash_cpu = statistics.median(wall), statistics.median(cpu)

    hashed_on: list[threading.Thread] = []

    def watch_scrypt(frame: object, event: str, arg: object) -> None:
        if not threading.current_thread().name.startswith("telemed-password"):
            sys.setprofile(None)  # the database's threads: watching every call they make would slow the loop
        elif event == "c_call" and arg is hashlib.scrypt:
            hashed_on.append(threading.current_thread())

    loop = asyncio.get_running_loop()
    stalls: list[tuple[float, float]] = []  # how late the loop woke, and the CPU its thread spent meanwhile

    async def measure_lag() -> None:
        while True:
            before, before_cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.005)
            stalls.append((loop.time() - before - 0.005, time.thread_time() - before_cpu))

    threading.setprofile(watch_scrypt)  # every thread started from now on: the checker's start lazily
    try:
        # One login first: a server's first pays one-time costs (connections, caches) that are no hash's.
        await login(client, "dr.wang")
        gc.collect()
        gc.freeze()  # as `telemed serve` does once started, so no full collection stalls the loop meanwhile
        watcher = asyncio.create_task(measure_lag())
        answers = await asyncio.gather(*(
            client.post("/api/auth/login", json={"username": "dr.wang", "password": DEMO_PASSWORD})
            for _ in range(20)))
        watcher.cancel()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        gc.unfreeze()
    assert [a.status for a in answers] == [200] * 20
    assert len(hashed_on) == 21, "every login's hash ran on the checker's threads"
    assert threading.current_thread() not in hashed_on
    late, busy = max(late for late, _ in stalls), max(busy for _, busy in stalls)
    # What the loop itself did between two wakeups (the test's client and the server share it): before,
    # that held at least one whole hash. CPU time, so other processes on the machine do not count.
    assert busy < hash_cpu * 0.75, f"the loop's thread worked {busy * 1000:.0f} ms at a stretch; one hash " \
        f"takes {hash_cpu * 1000:.0f} ms"
    # The wall clock also counts waiting for a core, which on a busy two-core machine alone can reach a
    # hash's length: a generous bound, where before the loop woke many hashes late.
    assert late < 3 * hash_wall, f"the loop woke {late * 1000:.0f} ms late; one hash takes " \
        f"{hash_wall * 1000:.0f} ms"
