"""What nginx in deploy/ does for every request: the client's own address reaches the app (the login throttle
counts it, and a client cannot write another one in), plain HTTP is sent to HTTPS, and /metrics stays inside."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.demo import DEMO_PASSWORD
from server.identity.login_throttle import PER_USER

pytestmark = pytest.mark.deploy


async def log_in(deployment: Any, source: str, password: str, headers: dict[str, str] | None = None) -> int:
    """POST /api/auth/login as dr.li through nginx's HTTPS port from the local address ``source``, checking the
    deployment's certificate; the answer's status."""
    context = ssl.create_default_context(cafile=deployment.values["TLS_CERT"])
    connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=context)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(f"https://127.0.0.1:{deployment.values['HTTPS_PORT']}/api/auth/login",
                             json={"username": "dr.li", "password": password}, headers=headers or {}) as answer:
            return answer.status


def node_logs(state: Path) -> str:
    return "".join(path.read_text() for path in sorted((state / "logs").glob("node-*.log")))


async def test_logins_through_nginx_are_throttled_per_real_client_address(deployment: Any) -> None:
    """nginx hands the app the address each client connected from (through its TLS port's PROXY protocol hop
    and X-Forwarded-For), and the nodes trust nginx alone: after repeated failures from 127.0.0.2 its logins
    are refused unchecked, even with the right password and whatever X-Forwarded-For it writes, while
    127.0.0.3 still logs in. Both nodes share the count (in Redis), whichever one nginx picks."""
    for _ in range(PER_USER):
        assert await log_in(deployment, "127.0.0.2", "wrong password") == 401
    assert await log_in(deployment, "127.0.0.2", DEMO_PASSWORD) == 429
    for spoofed in ("198.51.100.7", "127.0.0.3", "127.0.0.3, 198.51.100.7"):
        assert await log_in(deployment, "127.0.0.2", DEMO_PASSWORD, {"X-Forwarded-For": spoofed}) == 429, spoofed
    assert await log_in(deployment, "127.0.0.3", "wrong password") == 401
    assert await log_in(deployment, "127.0.0.3", DEMO_PASSWORD) == 200

    logs = await asyncio.to_thread(node_logs, deployment.state)
    assert '127.0.0.2 "POST /api/auth/login" 401' in logs, "the nodes' access logs show the client's address"
    assert '127.0.0.3 "POST /api/auth/login" 200' in logs
    assert '198.51.100.7 "POST' not in logs


async def test_plain_http_goes_to_https_and_metrics_stay_inside(deployment: Any) -> None:
    """Port 80 answers only with a redirect to the same path on HTTPS; /metrics through nginx is a 404 (an
    operator scrapes each node directly), while the node itself serves it on loopback."""
    values = deployment.values
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{values['HTTP_PORT']}/login?next=/referrals",
                            headers={"Host": values["SERVER_NAME"]}, allow_redirects=False) as answer:
            assert answer.status == 301
            assert answer.headers["Location"] == (f"https://{values['SERVER_NAME']}:{values['HTTPS_PORT']}"
                                                  "/login?next=/referrals")
        context = ssl.create_default_context(cafile=values["TLS_CERT"])
        async with http.get(f"https://127.0.0.1:{values['HTTPS_PORT']}/metrics", ssl=context) as answer:
            assert answer.status == 404
        async with http.get(f"https://127.0.0.1:{values['HTTPS_PORT']}/healthz", ssl=context) as answer:
            assert answer.status == 200
            assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        node_port = deployment.node_ports(values)[0]
        async with http.get(f"http://127.0.0.1:{node_port}/metrics") as answer:
            assert answer.status == 200
            assert "telemed_signaling_connections" in await answer.text()
