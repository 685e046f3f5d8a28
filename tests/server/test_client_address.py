"""The client's address behind proxies: which X-Forwarded-For entry is believed, and that every use gets it."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.accesslog import PathOnlyAccessLogger
from server.app import create_app, prepare_database
from server.appkeys import DATABASE
from server.audit import trail as audit
from server.client_address import forwarded_client
from server.db import Database
from server.demo import seed_demo
from server.errors import SettingsError
from server.settings import Settings

from ..conftest import _start, login

LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1"))
NGINX_AND_LB = (ip_network("127.0.0.1"), ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        ("198.51.100.7", [], LOOPBACK, "198.51.100.7"),  # no proxy
        ("198.51.100.7", ["203.0.113.1"], LOOPBACK, "198.51.100.7"),  # a client's own header is not believed
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),  # the proxy's own request (a health check)
        ("127.0.0.1", ["198.51.100.7"], LOOPBACK, "198.51.100.7"),  # nginx on this host
        ("::1", ["198.51.100.7"], LOOPBACK, "198.51.100.7"),
        ("::ffff:127.0.0.1", ["198.51.100.7"], LOOPBACK, "198.51.100.7"),  # a dual-stack socket's loopback
        ("127.0.0.1", ["203.0.113.1, 198.51.100.7"], LOOPBACK, "198.51.100.7"),  # the client wrote one first
        ("127.0.0.1", ["203.0.113.1", "198.51.100.7"], LOOPBACK, "198.51.100.7"),  # the same, as two headers
        ("127.0.0.1", ["198.51.100.7, 10.1.2.3"], NGINX_AND_LB, "198.51.100.7"),  # two trusted hops
        ("127.0.0.1", ["198.51.100.7, 10.1.2.3"], LOOPBACK, "10.1.2.3"),  # the balancer is not trusted
        ("127.0.0.1", ["127.0.0.5"], LOOPBACK, "127.0.0.5"),  # all trusted: the farthest one vouched for
        ("127.0.0.1", ["not-an-address, 198.51.100.7"], LOOPBACK, "198.51.100.7"),
        ("127.0.0.1", ["198.51.100.7, not-an-address"], LOOPBACK, "127.0.0.1"),  # garbage ends the walk
        ("127.0.0.1", ["198.51.100.7:5050"], LOOPBACK, "198.51.100.7"),  # with a port
        ("127.0.0.1", ["[2001:db8::7]:5050"], LOOPBACK, "2001:db8::7"),
        ("127.0.0.1", ["2001:DB8:0::7"], LOOPBACK, "2001:db8::7"),  # written one way, kept one way
        ("127.0.0.1", [" , 198.51.100.7"], LOOPBACK, "198.51.100.7"),  # an empty header the client sent
        ("127.0.0.1", ["198.51.100.7"], (), "127.0.0.1"),  # trusting no proxy
        (None, ["198.51.100.7"], LOOPBACK, ""),  # no peer (a closed socket): nothing believed
    ],
)
def test_forwarded_client(peer: str | None, forwarded_for: list[str], trusted: tuple,
                          expected: str) -> None:
    """Only what trusted proxies wrote is believed, read from the right up to the first untrusted hop."""
    assert forwarded_client(peer, forwarded_for, trusted) == expected


def test_trusted_proxies_setting() -> None:
    """TELEMED_TRUSTED_PROXIES is a comma-separated list; loopback by default; a typo stops the start."""
    assert Settings.load(environ={}).trusted_proxies == LOOPBACK
    given = Settings.load(environ={"TELEMED_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,fd00::/8"})
    assert given.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("192.0.2.7"), ip_network("fd00::/8"))
    assert Settings.load(environ={"TELEMED_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="TELEMED_TRUSTED_PROXIES"):
        Settings.load(environ={"TELEMED_TRUSTED_PROXIES": "10.0.0.1/8"})  # host bits set: meant /32 or .0/8?


@pytest.fixture
async def logged(settings: Settings) -> AsyncIterator[TestClient]:
    """A real server on port 0 with the access log ``telemed serve`` uses."""
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    await seed_demo(database)
    server = TestServer(create_app(settings, database=database), host="127.0.0.1", port=0)
    await server.start_server(access_log_class=PathOnlyAccessLogger)  # a started server stays as started
    client = TestClient(server)
    await client.start_server()
    yield client
    await client.close()


async def test_audit_and_access_log_name_the_forwarded_client(logged: TestClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Behind nginx, the audit trail of logins and the access log show the client, not the proxy."""
    via_nginx = {"X-Forwarded-For": "198.51.100.7"}
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        bad = await logged.post("/api/auth/login", json={"username": "dr.li", "password": "wrong password"},
                                headers=via_nginx)
        assert bad.status == 401
        good = await logged.post("/api/auth/login", json={"username": "dr.li", "password": "telemed-demo"},
                                 headers=via_nginx)
        assert good.status == 200
    entries = await audit.trail(logged.app[DATABASE])
    addresses = [json.loads(e.detail)["address"] for e in entries if e.action.startswith("auth.login")]
    assert addresses == ["198.51.100.7", "198.51.100.7"]
    lines = [r.getMessage() for r in caplog.records if "/api/auth/login" in r.getMessage()]
    assert len(lines) == 2 and all(line.startswith('198.51.100.7 "POST /api/auth/login"') for line in lines)


async def test_consent_records_the_forwarded_client(client: TestClient) -> None:
    """A consent's "from where" is the address of whoever gave it, not the proxy's."""
    doctor = await login(client, "dr.li")
    given = await client.post("/api/consultations/1/consents", json={"purpose": "recording"},
                              headers={**doctor, "X-Forwarded-For": "198.51.100.23", "User-Agent": "clinic-pc"})
    assert given.status == 201, await given.text()
    assert ((await given.json())["ip"], (await given.json())["user_agent"]) == ("198.51.100.23", "clinic-pc")


async def test_untrusted_peer_cannot_choose_its_consent_address(tmp_path: Path) -> None:
    """A peer that is no trusted proxy is recorded as itself, whatever X-Forwarded-For it sends."""
    settings = Settings.load(environ={"TELEMED_TRUSTED_PROXIES": "10.0.0.0/8"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        given = await client.post("/api/consultations/1/consents", json={"purpose": "recording"},
                                  headers={**await login(client, "dr.li"), "X-Forwarded-For": "198.51.100.23"})
        assert given.status == 201, await given.text()
        assert (await given.json())["ip"] == "127.0.0.1"
