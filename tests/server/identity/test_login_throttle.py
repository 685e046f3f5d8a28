"""The login throttle: when guessing is slowed down, for whom, and for how long."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.audit import trail as audit
from server.identity.login_throttle import LoginThrottle
from server.settings import Settings

from ...conftest import _start


def throttle() -> LoginThrottle:
    return LoginThrottle(per_user=3, per_address=5, window=60)


@pytest.mark.parametrize(
    ("failures", "ask", "at", "expected"),
    [
        ([], ("ip1", "li"), 0, None),
        ([("ip1", "li", 0), ("ip1", "li", 1)], ("ip1", "li"), 2, None),  # under the limit
        ([("ip1", "li", 0), ("ip1", "li", 1), ("ip1", "li", 2)], ("ip1", "li"), 3, 57),  # until the first expires
        ([("ip1", "li", 0), ("ip1", "li", 1), ("ip1", "li", 2)], ("ip1", "LI"), 3, 57),  # usernames fold case
        ([("ip1", "li", 0), ("ip1", "li", 1), ("ip1", "li", 2)], ("ip1", "li"), 60, None),  # window passed
        ([("ip1", "li", 0), ("ip1", "li", 1), ("ip1", "li", 2)], ("ip2", "li"), 3, None),  # other address
        ([("ip1", "li", 0), ("ip1", "li", 1), ("ip1", "li", 2)], ("ip1", "wang"), 3, None),  # other user
        ([("ip1", u, t) for t, u in enumerate(["a", "b", "c", "d", "e"])], ("ip1", "wang"), 5, 55),  # spraying
    ],
)
def test_retry_after(failures: list, ask: tuple[str, str], at: float, expected: float | None) -> None:
    """Each row: the wait the throttle asks of an address and username after some failures: none under the per-user
    limit or once the window has passed, the time until the oldest counted failure expires once at it, the same for
    the username written in other case, none for another address or user, and a wait for an address that sprays one
    guess at each of many usernames."""
    t = throttle()
    for address, username, when in failures:
        t.failed(address, username, when)
    assert t.retry_after(*ask, now=at) == expected


def test_success_clears_the_users_count_but_not_the_addresss() -> None:
    """A successful login forgets that user's earlier failures from that address, so a doctor who mistyped twice and
    then got in is not locked out by the next typo; the address keeps counting those failures, so a guesser cannot
    reset its per-address count by logging in to an account of its own."""
    t = throttle()
    for when in range(2):
        t.failed("ip1", "li", when)
    t.succeeded("ip1", "li")
    t.failed("ip1", "li", 3)
    assert t.retry_after("ip1", "li", now=4) is None
    for when in (5, 6):  # the address's 4th and 5th failures only if the two before the success still count
        t.failed("ip1", "wang", when)
    assert t.retry_after("ip1", "zhou", now=7) == 53, "held until the address's first failure (at 0) expires"


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many addresses fail, the throttle remembers no more than its cap of keys, so a flood of guesses from
    many addresses cannot grow the server's memory without bound."""
    import server.identity.login_throttle as module

    monkeypatch.setattr(module, "MAX_TRACKED", 10)
    t = throttle()
    for n in range(100):
        t.failed(f"ip{n}", "li", n)
    assert len(t._failures) <= 10


async def _fail_logins(client: TestClient, count: int, forwarded_for: Callable[[int], str]) -> None:
    """``count`` wrong logins at once, each for its own username, so only the per-address limit can bite."""
    answers = await asyncio.gather(*(
        client.post("/api/auth/login", json={"username": f"guess{n}", "password": "guess-guess"},
                    headers={"X-Forwarded-For": forwarded_for(n)})
        for n in range(count)))
    assert [a.status for a in answers] == [401] * count


async def _login_status(client: TestClient, forwarded_for: str, password: str = "telemed-demo") -> int:
    response = await client.post("/api/auth/login", json={"username": "dr.li", "password": password},
                                 headers={"X-Forwarded-For": forwarded_for})
    return response.status


async def test_behind_nginx_one_guessing_address_locks_out_only_itself(client: TestClient) -> None:
    """Behind the shipped nginx (on loopback), thirty failures throttle the client that made them, not
    everyone the proxy forwards; a client writing its own X-Forwarded-For still counts as itself."""
    # What nginx's $proxy_add_x_forwarded_for makes of a client that sends a different header each time.
    await _fail_logins(client, 30, lambda n: f"203.0.113.{n}, 198.51.100.7")
    assert await _login_status(client, "198.51.100.7") == 429
    assert await _login_status(client, "203.0.113.99, 198.51.100.7") == 429
    assert await _login_status(client, "198.51.100.8") == 200, "another client is not locked out"
    assert await _login_status(client, "198.51.100.8", password="wrong-guess") == 401


async def test_untrusted_peer_cannot_dodge_the_throttle_with_x_forwarded_for(tmp_path: Path) -> None:
    """A peer that is no trusted proxy is counted as itself, whatever X-Forwarded-For it sends."""
    settings = Settings.load(environ={"TELEMED_TRUSTED_PROXIES": "10.0.0.0/8"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        await _fail_logins(client, 30, lambda n: f"198.51.100.{n}")
        assert await _login_status(client, "198.51.100.200") == 429
        failures = [e for e in await audit.trail(client.app[DATABASE]) if e.action == "auth.login_failed"]
        assert {json.loads(e.detail)["address"] for e in failures} == {"127.0.0.1"}
