"""Slows password guessing: too many failed logins from one address answer 429 for a while.

``LoginThrottle`` is the pure core (no I/O, the clock passed in); ``Throttle`` is what a login awaits,
kept in this process (``InProcessThrottle``, the embedded default) or in Redis, shared by every node
(``server.redis_throttle``).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

MAX_TRACKED = 10_000  # keys remembered at once; the oldest are forgotten first, so memory stays bounded
PER_USER = 5  # failures per (address, username) in a window
PER_ADDRESS = 30  # failures per address, whatever the usernames
WINDOW_SECONDS = 15 * 60


class Throttle(Protocol):
    """Failed logins counted per client address and username, wherever the counts are kept."""

    async def retry_after(self, address: str, username: str) -> float | None:
        """Seconds until this address may try this username again, or None if it may now."""

    async def failed(self, address: str, username: str) -> None: ...

    async def succeeded(self, address: str, username: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class LoginThrottle:
    """Failures are counted per (address, username) and per address alone, in a sliding window.

    Per pair, so one guesser cannot lock a doctor out from everywhere else; per address, so one
    address cannot try a little against every username.
    """

    per_user: int = PER_USER
    per_address: int = PER_ADDRESS
    window: float = WINDOW_SECONDS
    _failures: OrderedDict[tuple[str, str], deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, address: str, username: str, now: float) -> float | None:
        """Seconds until this address may try this username again, or None if it may now."""
        waits = [
            self._wait(key, limit, now)
            for key, limit in (((address, username.lower()), self.per_user), ((address, ""), self.per_address))
        ]
        return max((w for w in waits if w is not None), default=None)

    def failed(self, address: str, username: str, now: float) -> None:
        for key in ((address, username.lower()), (address, "")):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # re-inserted: most recently used last
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop((address, username.lower()), None)

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float | None:
        times = self._failures.get(key)
        if not times:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < limit:
            return None
        return times[-limit] + self.window - now


@dataclass
class InProcessThrottle:
    """One node's throttle: the counts live in this process, and a restart forgets them."""

    counts: LoginThrottle = field(default_factory=LoginThrottle)
    clock: Callable[[], float] = time.monotonic

    async def retry_after(self, address: str, username: str) -> float | None:
        return self.counts.retry_after(address, username, self.clock())

    async def failed(self, address: str, username: str) -> None:
        self.counts.failed(address, username, self.clock())

    async def succeeded(self, address: str, username: str) -> None:
        self.counts.succeeded(address, username)

    async def close(self) -> None:
        pass
