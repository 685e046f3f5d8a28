"""Consultations through the API: each user sees only their own; 403 and 404 where they should be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from ...conftest import login


async def _ids(client: TestClient, username: str) -> list[int]:
    response = await client.get("/api/consultations", headers=await login(client, username))
    assert response.status == 200
    return [c["id"] for c in (await response.json())["consultations"]]


async def test_each_user_lists_only_their_own_consultations(client: TestClient) -> None:
    """The demo consultation is listed to its two participants, the county doctor and the specialist, and not to a
    county doctor of another hospital."""
    assert await _ids(client, "dr.li") == [1]
    assert await _ids(client, "dr.wang") == [1]
    assert await _ids(client, "dr.chen") == []


async def test_auditors_and_administrators_list_no_consultations(client: TestClient) -> None:
    """Guards health records: the list is refused (403) to those who see none, not answered empty."""
    for username in ("auditor", "admin"):
        response = await client.get("/api/consultations", headers=await login(client, username))
        assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"


async def test_participant_reads_the_consultation(client: TestClient) -> None:
    """A participant opens the consultation and sees its participants by name, in order, and the patient it is about."""
    response = await client.get("/api/consultations/1", headers=await login(client, "dr.wang"))
    assert response.status == 200
    body = await response.json()
    assert [p["display_name"] for p in body["participants"]] == ["李明 Li Ming", "王芳 Wang Fang"]
    assert body["patient"]["name"] == "张伟 Zhang Wei"


@pytest.mark.parametrize(
    ("username", "path", "status", "code"),
    [
        ("dr.chen", "/api/consultations/1", 403, "forbidden"),
        ("admin", "/api/consultations/1", 403, "forbidden"),
        ("auditor", "/api/consultations/1", 403, "forbidden"),
        ("dr.li", "/api/consultations/999", 404, "not-found"),
        ("dr.li", "/api/consultations/abc", 400, "bad-id"),
        ("coord.zhao", "/api/consultations/1", 200, None),
    ],
)
async def test_who_may_open_a_consultation(client: TestClient, username: str, path: str, status: int,
                                           code: str | None) -> None:
    """Each row: another county's doctor, an administrator and an auditor get 403 `forbidden` with a message; an unknown
    id is 404 and an id that is not a number 400 `bad-id`; the partner hospital's coordinator opens it."""
    response = await client.get(path, headers=await login(client, username))
    assert response.status == status
    if code:
        error = (await response.json())["error"]
        assert error["code"] == code
        assert error["message"]


def _new(**changes: object) -> dict:
    body: dict = {"title": "Diabetes review", "participant_ids": [2],
                  "planned_start": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    body.update(changes)
    return body


async def test_county_doctor_creates_a_consultation_with_a_partner_specialist(client: TestClient) -> None:
    """A county doctor's new consultation with a partner specialist includes its creator, and is listed to the
    specialist but not to a county doctor of another hospital."""
    headers = await login(client, "dr.li")
    response = await client.post("/api/consultations", json=_new(patient_id=1), headers=headers)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert {p["id"] for p in created["participants"]} == {1, 2}  # the creator takes part
    assert created["id"] in await _ids(client, "dr.wang")
    assert created["id"] not in await _ids(client, "dr.chen")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"planned_start": "2026-12-01T09:00:00"}, "planned_start"),  # no time zone: ambiguous
        ({"participant_ids": []}, "participant_ids"),
        ({"participant_ids": [999]}, "participant_ids"),
        ({"participant_ids": [4]}, "participant_ids"),  # a coordinator is not a clinician
        ({"title": ""}, "title"),
        ({"patient_id": 999}, "patient_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_consultation_is_422_naming_the_field_and_writes_nothing(
        client: TestClient, changes: dict, field: str) -> None:
    """Each row, a start without a time zone, no participant, an unknown one or a coordinator, an empty title, an
    unknown patient or an unknown field: 422 naming that field, and the doctor's list of consultations is unchanged."""
    headers = await login(client, "dr.li")
    before = await _ids(client, "dr.li")
    response = await client.post("/api/consultations", json=_new(**changes), headers=headers)
    assert response.status == 422
    assert field in (await response.json())["error"]["fields"]
    assert await _ids(client, "dr.li") == before


async def test_patient_of_another_hospital_cannot_be_attached(client: TestClient) -> None:
    """dr.wang works at the provincial hospital; the demo patient is registered at Qingshan."""
    response = await client.post("/api/consultations", json=_new(participant_ids=[1], patient_id=1),
                                 headers=await login(client, "dr.wang"))
    assert response.status == 422
    assert "patient_id" in (await response.json())["error"]["fields"]


@pytest.mark.parametrize("username", ["auditor", "admin"])
async def test_non_clinical_roles_cannot_create(client: TestClient, username: str) -> None:
    """Each row, an auditor or an administrator: setting up a consultation is refused 403."""
    response = await client.post("/api/consultations", json=_new(), headers=await login(client, username))
    assert response.status == 403


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01"])
async def test_a_day_no_clock_can_hold_is_refused_not_a_500(client: TestClient, query: str) -> None:
    """The day after 9999-12-31, or year 1 east of Greenwich, has no instant in UTC: such a day is a 422
    naming its parameter, as the audit trail's filter answers."""
    response = await client.get(f"/api/consultations?{query}", headers=await login(client, "dr.li"))
    assert response.status == 422, await response.text()
    assert query.split("=")[0] in (await response.json())["error"]["fields"]
