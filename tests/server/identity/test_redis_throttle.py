"""The login throttle in Redis: the same counting as the in-process one, shared by nodes, failing open."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from server.devprocs import RedisServer
from server.identity.redis_throttle import RedisThrottle
from server.settings import Settings

from ...conftest import _start


def fresh_prefix() -> str:
    """Keys of this test's own, should the Redis be a shared one (TELEMED_TEST_REDIS_URL)."""
    return f"test-{secrets.token_hex(4)}"


@pytest.fixture
async def throttle(redis_url: str) -> AsyncIterator[RedisThrottle]:
    t = RedisThrottle(redis_url, prefix=fresh_prefix(), per_user=3, per_address=5, window=60)
    yield t
    await t.close()


async def test_counts_per_user_and_per_address_like_the_in_process_throttle(throttle: RedisThrottle) -> None:
    """Three failures lock one address out of one username (any case) for the rest of the window; other
    addresses and usernames go on; five over any usernames lock the address out."""
    for _ in range(3):
        assert await throttle.retry_after("ip1", "li") is None
        await throttle.failed("ip1", "li")
    wait = await throttle.retry_after("ip1", "LI")
    assert wait is not None and 59 < wait <= 60
    assert await throttle.retry_after("ip2", "li") is None
    assert await throttle.retry_after("ip1", "wang") is None
    await throttle.failed("ip1", "wang")
    await throttle.failed("ip1", "chen")
    wait = await throttle.retry_after("ip1", "zhao")
    assert wait is not None and 59 < wait <= 60, "five failures over any usernames lock the address"


async def test_success_clears_the_users_count_but_not_the_addresss(throttle: RedisThrottle) -> None:
    """A right password forgets that username's failures from that address, and only those."""
    for _ in range(2):
        await throttle.failed("ip1", "li")
    await throttle.succeeded("ip1", "li")
    await throttle.failed("ip1", "li")
    assert await throttle.retry_after("ip1", "li") is None
    await throttle.failed("ip1", "wang")
    await throttle.failed("ip1", "chen")
    assert await throttle.retry_after("ip1", "zhao") is not None, "the address kept all five"


async def test_failures_leave_the_window_and_memory_stays_bounded(redis_url: str) -> None:
    """Failures older than the window stop counting, and a key keeps no more failures than its limit."""
    throttle = RedisThrottle(redis_url, prefix=fresh_prefix(), per_user=3, per_address=5, window=0.5)
    try:
        for n in range(20):
            await throttle.failed("ip1", f"user{n % 2}")
        assert await throttle.retry_after("ip1", "user0") is not None
        pair, address = throttle.keys("ip1", "user0")
        redis = Redis.from_url(redis_url)
        assert (await redis.zcard(pair), await redis.zcard(address)) == (3, 5)
        assert 0 < await redis.pttl(address) <= 1000
        await redis.aclose()
        await asyncio.sleep(0.6)
        assert await throttle.retry_after("ip1", "user0") is None
    finally:
        await throttle.close()


async def test_two_nodes_share_the_count(tmp_path: Path, redis_url: str) -> None:
    """With Redis, failures on one node lock the same client out on another node, and no one else."""
    environ = {"TELEMED_REDIS_URL": redis_url, "TELEMED_REDIS_PREFIX": fresh_prefix()}
    a, b = [await _start(Settings.load(environ=environ, data_dir=tmp_path / name, port=0)) for name in ("a", "b")]
    async with a, b:
        for _ in range(5):
            wrong = await a.post("/api/auth/login", json={"username": "dr.wang", "password": "guess-guess"},
                                 headers={"X-Forwarded-For": "198.51.100.7"})
            assert wrong.status == 401
        on_b = await b.post("/api/auth/login", json={"username": "dr.wang", "password": "telemed-demo"},
                            headers={"X-Forwarded-For": "198.51.100.7"})
        assert on_b.status == 429 and int(on_b.headers["Retry-After"]) > 0
        other = await b.post("/api/auth/login", json={"username": "dr.wang", "password": "telemed-demo"},
                             headers={"X-Forwarded-For": "198.51.100.8"})
        assert other.status == 200


async def test_redis_down_lets_logins_through_and_says_so(tmp_path: Path, redis_server: RedisServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A Redis outage neither locks everyone out nor answers 500: logins go on unthrottled, it is logged,
    and counting resumes when Redis returns."""
    settings = Settings.load(environ={"TELEMED_REDIS_URL": redis_server.url}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        async def login(password: str) -> int:
            response = await client.post("/api/auth/login", json={"username": "dr.li", "password": password})
            return response.status

        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="server.identity.redis_throttle"):
            assert [await login("guess-guess") for _ in range(6)] == [401] * 6
            assert await login("telemed-demo") == 200
            assert "login throttle: Redis is unreachable" in caplog.text
            redis_server.start()
            assert [await login("guess-guess") for _ in range(6)] == [401] * 5 + [429]
            assert "login throttle: Redis is reachable again" in caplog.text
