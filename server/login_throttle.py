"""Slows password guessing: too many failed logins from one address answer 429 for a while. Pure; no I/O."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

MAX_TRACKED = 10_000  # keys remembered at once; the oldest are forgotten first, so memory stays bounded


@dataclass
class LoginThrottle:
    """Failures are counted per (address, username) and per address alone, in a sliding window.

    Per pair, so one guesser cannot lock a doctor out from everywhere else; per address, so one
    address cannot try a little against every username.
    """

    per_user: int = 5
    per_address: int = 30
    window: float = 15 * 60
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
