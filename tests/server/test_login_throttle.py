"""The login throttle: when guessing is slowed down, for whom, and for how long."""

from __future__ import annotations

import pytest

from server.login_throttle import LoginThrottle


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
    t = throttle()
    for address, username, when in failures:
        t.failed(address, username, when)
    assert t.retry_after(*ask, now=at) == expected


def test_success_clears_the_users_count_but_not_the_addresss() -> None:
    t = throttle()
    for when in range(2):
        t.failed("ip1", "li", when)
    t.succeeded("ip1", "li")
    t.failed("ip1", "li", 3)
    assert t.retry_after("ip1", "li", now=4) is None


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import server.login_throttle as module

    monkeypatch.setattr(module, "MAX_TRACKED", 10)
    t = throttle()
    for n in range(100):
        t.failed(f"ip{n}", "li", n)
    assert len(t._failures) <= 10
