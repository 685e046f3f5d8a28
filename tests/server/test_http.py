"""Bad input at the HTTP edge, on a real server: JSON bodies past their limits, ids that are not ids and
unreadable Origin headers are each refused with 400, 403 or 422 saying why, never a logged 500."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from server.db import Database
from server.parsing import MAX_ID
from server.settings import Settings

from ..conftest import _start, login

JSON = {"Content-Type": "application/json"}
# a start in the future whatever the day the tests run: only the field each test spoils is wrong
CONSULTATION = {"title": "Follow-up", "planned_start": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "participant_ids": [2]}


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if the server logged an unhandled error: each of these once did."""
    with caplog.at_level(logging.ERROR, logger="server.http"):
        yield
    assert not [r for r in caplog.records if r.name == "server.http"], "the server logged an unhandled error"


@pytest.mark.parametrize(("body", "code"), [
    ('{"username": ' + "9" * 5000 + ', "password": "x"}', "bad-number"),
    ("[" * 100_000 + "]" * 100_000, "too-deep"),
    ('{"username": "dr.li", "password": NaN}', "bad-json"),
    ('{"username": "dr.li", "password": "x"' + "}" * 3, "bad-json"),
])
async def test_login_refuses_bodies_past_the_limits(client: TestClient, no_tracebacks: None, body: str,
                                                    code: str) -> None:
    """Guards the one unauthenticated JSON route: a huge number or a deep array was a 500 before login."""
    response = await client.post("/api/auth/login", data=body, headers=JSON)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code


async def test_a_body_sent_chunked_is_still_limited(client: TestClient, no_tracebacks: None) -> None:
    """Guards the size limit when there is no Content-Length to check up front."""
    async def chunks():
        yield b'{"username": "dr.li", "password": "'
        for _ in range(2048):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post("/api/auth/login", data=chunks(), headers=JSON)
    assert response.status in (400, 413)


@pytest.mark.parametrize("path", ["%C2%B2", "%D9%A1", "%EF%BC%91", "1%C2%B2", "-1", "0", "9" * 30, str(MAX_ID + 1)])
async def test_an_id_that_is_not_ascii_digits_in_range_is_400(client: TestClient, no_tracebacks: None,
                                                              path: str) -> None:
    """Guards path ids: ``²`` crashed int(), ``١`` and ``１`` were read as consultation 1, 30 digits overflowed
    the database, and the public signaling route showed it without a login."""
    signaling = await client.get(f"/api/consultations/{path}/signaling")
    assert signaling.status == 400 and (await signaling.json())["error"]["code"] == "bad-id"
    read = await client.get(f"/api/consultations/{path}", headers=await login(client, "dr.li"))
    assert read.status == 400 and (await read.json())["error"]["code"] == "bad-id"


@pytest.mark.parametrize(("changes", "status", "field"), [
    ({"participant_ids": [MAX_ID + 1]}, 422, "participant_ids.0"),
    ({"participant_ids": [2**70]}, 400, None),  # past 64 bits: refused as the body is read
    ({"patient_id": 2**63 - 1}, 422, "patient_id"),
    ({"patient_id": 0}, 422, "patient_id"),
])
async def test_id_fields_past_the_id_columns_are_refused(client: TestClient, no_tracebacks: None, changes: dict,
                                                         status: int, field: str | None) -> None:
    """Guards pydantic int fields: an id the columns cannot hold was passed on to the database, which failed."""
    response = await client.post("/api/consultations", json={**CONSULTATION, **changes},
                                 headers=await login(client, "dr.li"))
    assert response.status == status
    error = (await response.json())["error"]
    assert field is None or field in error["fields"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_largest_id_is_one_the_database_can_be_asked_about(settings: Settings, database_url: str,
                                                                     no_tracebacks: None) -> None:
    """Guards MAX_ID against the real columns: PostgreSQL's INTEGER ids refuse 2**31 outright (a 500 before),
    so MAX_ID is "not found" there, and one more is a 400 before the database is asked."""
    database = Database(database_url)
    await database.upgrade()  # as `telemed db upgrade` does; only the embedded database upgrades itself
    await database.close()
    client = await _start(dataclasses.replace(settings, database_url=database_url))
    try:
        headers = await login(client, "dr.li")
        assert (await client.get(f"/api/consultations/{MAX_ID}", headers=headers)).status == 404
        assert (await client.get(f"/api/consultations/{MAX_ID + 1}", headers=headers)).status == 400
        response = await client.post("/api/consultations", json={**CONSULTATION, "patient_id": MAX_ID},
                                     headers=headers)
        assert 400 <= response.status < 500, await response.text()
    finally:
        await client.close()


@pytest.mark.parametrize("path", ["/login", "/api/auth/login", "/referrals/new", "/visit/x/consent"])
async def test_a_multipart_body_without_a_boundary_is_400_on_any_route(client: TestClient, no_tracebacks: None,
                                                                       path: str) -> None:
    """Guards every handler that reads a form: request.post() raised ValueError on a multipart Content-Type
    without a boundary, a 500 on the login page among others."""
    response = await client.post(path, data=b"username=dr.li", allow_redirects=False,
                                 headers={"Content-Type": "multipart/form-data"})
    assert response.status == 400


@pytest.mark.parametrize("origin", ["http://[::1", "http://a:99999", "http://%zz", "https://", "ftp://127.0.0.1"])
async def test_a_cookie_write_with_an_unreadable_origin_is_cross_site(client: TestClient, no_tracebacks: None,
                                                                      origin: str) -> None:
    """Guards the cross-site check: an Origin yarl cannot parse raised ValueError (a 500) instead of a 403."""
    await client.post("/login", data={"username": "dr.li", "password": "telemed-demo"}, allow_redirects=False)
    response = await client.post("/api/auth/logout", headers={"Origin": origin})
    assert response.status == 403 and (await response.json())["error"]["code"] == "cross-site"
    assert (await client.get("/api/me")).status == 200, "the refused request changed nothing"


async def test_a_cookie_write_from_our_own_page_on_the_default_port_is_allowed(client: TestClient) -> None:
    """Guards same-origin writes behind TLS on 443: the browser's Origin has no port and neither has the Host,
    which yarl's authority compared as "telemed.example:443" against "telemed.example" and refused."""
    await client.post("/login", data={"username": "dr.li", "password": "telemed-demo"}, allow_redirects=False)
    response = await client.post("/api/auth/logout", headers={"Origin": "https://telemed.example",
                                                              "Host": "telemed.example"})
    assert response.status == 200, await response.text()
