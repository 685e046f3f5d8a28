"""The login throttle kept in Redis, so every node behind the load balancer counts the same failures."""

from __future__ import annotations

import logging
import secrets

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .login_throttle import PER_ADDRESS, PER_USER, WINDOW_SECONDS

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0  # a login waits at most this long on a Redis that does not answer, then goes on
USERNAME_CHARS = 64  # of a username in a key: logins accept no longer ones, pages are cut to the same

# One sorted set per key, scored by failure time. Both scripts read the clock of Redis, not of the node,
# so nodes whose clocks disagree still agree on the window. A set keeps only its newest `limit` failures:
# that is all a decision needs, so an address spraying usernames costs bounded memory.
FAILED_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', key, 0, -1 - tonumber(ARGV[2 + i]))
  redis.call('EXPIRE', key, math.ceil(window))
end
"""

# Milliseconds until the oldest of the newest `limit` failures leaves the window, the longest over the
# keys; -1 while every key is under its limit.
RETRY_AFTER_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local wait = -1
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + i])
  local nth = redis.call('ZREVRANGEBYSCORE', key, '+inf', '(' .. (now - window), 'WITHSCORES', 'LIMIT', limit - 1, 1)
  if nth[2] then
    wait = math.max(wait, math.ceil((tonumber(nth[2]) + window - now) * 1000))
  end
end
return wait
"""


class RedisThrottle:
    """Failures per (address, username) and per address, as ``LoginThrottle`` counts them, in Redis.

    A Redis that is down or slow fails open: logins go on unthrottled, with a log line when it goes and
    when it comes back, rather than every login answering 500 or waiting.
    """

    def __init__(self, url: str, *, prefix: str = "telemed", per_user: int = PER_USER,
                 per_address: int = PER_ADDRESS, window: float = WINDOW_SECONDS) -> None:
        self._redis = Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS,
                                     retry=Retry(NoBackoff(), 0))  # a retry would only make the login wait
        self._failed = self._redis.register_script(FAILED_SCRIPT)
        self._retry_after = self._redis.register_script(RETRY_AFTER_SCRIPT)
        self._prefix, self._limits, self._window = prefix, (per_user, per_address), window
        self._healthy = True

    def keys(self, address: str, username: str) -> list[str]:
        """The pair's key, then the address's."""
        base = f"{self._prefix}:login-failures:{address}"
        return [f"{base}:user:{username.lower()[:USERNAME_CHARS]}", base]

    async def retry_after(self, address: str, username: str) -> float | None:
        try:
            wait = await self._retry_after(keys=self.keys(address, username), args=[self._window, *self._limits])
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return None
        self._mark(True)
        return None if wait < 0 else wait / 1000

    async def failed(self, address: str, username: str) -> None:
        try:
            await self._failed(keys=self.keys(address, username),
                               args=[self._window, secrets.token_hex(8), *self._limits])
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return
        self._mark(True)

    async def succeeded(self, address: str, username: str) -> None:
        try:
            await self._redis.delete(self.keys(address, username)[0])
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return
        self._mark(True)

    async def close(self) -> None:
        await self._redis.aclose()

    def _mark(self, healthy: bool, why: BaseException | None = None) -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        if healthy:
            log.warning("login throttle: Redis is reachable again; failed logins are counted again")
        else:
            log.error("login throttle: Redis is unreachable (%s); logins go on unthrottled until it returns",
                      why)
