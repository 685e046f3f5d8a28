"""Consent and recordings over HTTP: who may, and clear errors for what is wrong."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from server.api.recordings import _byte_range
from server.errors import RangeNotSatisfiable

from ...conftest import login


@pytest.mark.parametrize(("username", "status"), [("dr.li", 201), ("dr.chen", 403), ("auditor", 403)])
async def test_only_participating_clinicians_record_their_consent(client: TestClient, username: str,
                                                                  status: int) -> None:
    """Each row: a participating doctor records their consent to recording (201); another county's doctor and an auditor
    are refused 403."""
    response = await client.post("/api/consultations/1/recording-consent", json={"given": True},
                                 headers=await login(client, username))
    assert response.status == status, await response.text()


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"given": "yes"}, 422, "validation-failed"),
    ({}, 422, "validation-failed"),
    ({"given": True, "extra": 1}, 422, "validation-failed"),
])
async def test_bad_consent_bodies_say_what_is_wrong(client: TestClient, body: dict, status: int, code: str) -> None:
    """Each row, a `given` that is not a boolean, a missing one or an unknown field: 422 `validation-failed`."""
    response = await client.post("/api/consultations/1/recording-consent", json=body,
                                 headers=await login(client, "dr.li"))
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_a_guest_needs_a_valid_link_to_consent(client: TestClient) -> None:
    """A guest's consent to recording with a forged link is refused 401."""
    response = await client.post("/api/guest/recording-consent", json={"guest": "forged", "given": True})
    assert response.status == 401


@pytest.mark.parametrize(("username", "status"), [("dr.wang", 200), ("auditor", 200), ("dr.chen", 403),
                                                  ("coord.zhao", 403)])
async def test_recordings_are_for_participants_and_auditors(client: TestClient, username: str,
                                                            status: int) -> None:
    """Each row: a participant and an auditor list the consultation's recordings (none yet); another county's doctor and
    a coordinator are refused 403."""
    response = await client.get("/api/consultations/1/recordings", headers=await login(client, username))
    assert response.status == status, await response.text()
    if status == 200:
        assert (await response.json()) == {"recordings": []}


@pytest.mark.parametrize(("path", "status"), [("/api/recordings/999/media", 404), ("/api/recordings/x/media", 400)])
async def test_missing_or_malformed_recording(client: TestClient, path: str, status: int) -> None:
    """Each row: an unknown recording's media is 404 and an id that is not a number 400, each with a message."""
    response = await client.get(path, headers=await login(client, "dr.li"))
    assert response.status == status
    assert "message" in (await response.json())["error"]


async def test_recordings_need_a_login(client: TestClient) -> None:
    """Listing a consultation's recordings without logging in is refused 401."""
    assert (await client.get("/api/consultations/1/recordings")).status == 401


@pytest.mark.parametrize(("header", "expected"), [
    (None, (0, 100)), ("bytes=0-9", (0, 10)), ("bytes=90-", (90, 100)), ("bytes=-10", (90, 100)),
    ("bytes=0-" + "9" * 18, (0, 100)),
    ("bytes=١-", None), ("bytes=-١", None), ("bytes=" + "9" * 5000 + "-", None), ("bytes=0-" + "9" * 5000, None),
])
def test_a_range_is_ascii_digits(header: str | None, expected: tuple[int, int] | None) -> None:
    """Guards the Range header: ``\\d`` took other scripts' digits (``١`` read as 1), and 5,000 digits made
    int() raise ValueError (a 500) instead of a 416."""
    if expected is None:
        with pytest.raises(RangeNotSatisfiable):
            _byte_range(header, 100)
    else:
        assert _byte_range(header, 100) == expected
