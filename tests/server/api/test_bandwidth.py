"""The device check's bandwidth probe over the API: what it sends and takes, its bounds, and who may use it."""

from __future__ import annotations

import zlib
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.api.bandwidth import MAX_DOWNLOAD_BYTES, MAX_UPLOAD_BYTES
from server.appkeys import DATABASE, KEYS
from server.models import PatientInvitation
from server.patients.invitations import invitation_token

from ...conftest import login
from ...support.visits import as_guest, invite

DOWNLOAD, UPLOAD = "/api/guest/bandwidth/download", "/api/guest/bandwidth/upload"


@pytest.mark.parametrize("size", [1, 512 * 1024, MAX_DOWNLOAD_BYTES])
async def test_the_download_is_as_many_random_bytes_as_asked_never_cached(client: TestClient, size: int) -> None:
    """The check times exactly the bytes it asked for: none cached, none compressed on the way (random bytes
    do not shrink), so the measure is of the link."""
    guest = await invite(client)
    response = await client.post(DOWNLOAD, json=as_guest(guest, bytes=size),
                                 headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.status == 200, await response.text()
    body = await response.read()
    assert len(body) == size and response.content_type == "application/octet-stream"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Encoding" not in response.headers
    if size > 1024:
        assert len(zlib.compress(body)) > 0.99 * size, "the probe's bytes must not compress"


async def test_the_upload_answers_how_many_bytes_arrived(client: TestClient) -> None:
    """A confirmed guest's upload probe answers how many bytes arrived, so the device check can time the patient's
    upstream link."""
    guest = await invite(client)
    response = await client.post(UPLOAD, json=as_guest(guest, data="x" * 256 * 1024))
    assert response.status == 200, await response.text()
    assert await response.json() == {"bytes": 256 * 1024}


@pytest.mark.parametrize("size", [0, -1, MAX_DOWNLOAD_BYTES + 1, "1024", 1.5, None])
async def test_a_bad_download_size_is_422_naming_bytes(client: TestClient, size: object) -> None:
    """Too large, none, or not a whole number: refused with the parameter named, never a 500 or a huge answer."""
    guest = await invite(client)
    response = await client.post(DOWNLOAD, json=as_guest(guest, bytes=size))
    answer = await response.json()
    assert (response.status, answer["error"]["code"]) == (422, "validation-failed")
    assert "bytes" in answer["error"]["fields"]


async def test_an_upload_over_the_bound_is_413_and_a_long_field_422(client: TestClient) -> None:
    """A body larger than the probe takes is refused before it is read; a ``data`` field over the bound (say,
    sent chunked, without a length) is refused by name."""
    guest = await invite(client)
    response = await client.post(UPLOAD, json=as_guest(guest, data="x" * (MAX_UPLOAD_BYTES + 64 * 1024)))
    answer = await response.json()
    assert (response.status, answer["error"]["code"]) == (413, "too-large")
    assert "512 KiB" in answer["error"]["message"]
    response = await client.post(UPLOAD, json=as_guest(guest, data="x" * (MAX_UPLOAD_BYTES + 1)))
    answer = await response.json()
    assert response.status == 422 and "data" in answer["error"]["fields"]


async def test_only_a_live_confirmed_link_opens_the_probe(client: TestClient) -> None:
    """As every guest route: 403 before the identity check, 401 for a revoked, expired or forged link."""
    unconfirmed = await invite(client, confirmed=False)
    for path, body in [(DOWNLOAD, {"bytes": 1024}), (UPLOAD, {"data": "x"})]:
        response = await client.post(path, json={"guest": unconfirmed, **body})
        assert (response.status, (await response.json())["error"]["code"]) == (403, "identity-required"), path

    guest = await invite(client)
    async with client.app[DATABASE].session() as session:
        invitation = (await session.exec(select(PatientInvitation).where(PatientInvitation.id == 2))).one()
    invitation.created_at -= timedelta(days=3)
    invitation.expires_at = invitation.created_at + timedelta(hours=1)
    expired = invitation_token(client.app[KEYS], "telemed", invitation)
    response = await client.post(DOWNLOAD, json={"guest": expired, "bytes": 1024})
    assert (response.status, (await response.json())["error"]["code"]) == (401, "token-expired")
    forged = guest[:-4] + ("AAAA" if not guest.endswith("AAAA") else "BBBB")
    assert (await client.post(DOWNLOAD, json=as_guest(guest, bytes=1024) | {"guest": forged})).status == 401

    assert (await client.post(DOWNLOAD, json=as_guest(guest, bytes=1024))).status == 200
    revoked = await client.delete("/api/invitations/2", headers=await login(client, "dr.li"))
    assert revoked.status == 200
    for path, body in [(DOWNLOAD, {"bytes": 1024}), (UPLOAD, {"data": "x"})]:
        response = await client.post(path, json=as_guest(guest, **body))
        assert (response.status, (await response.json())["error"]["code"]) == (401, "link-revoked"), path
