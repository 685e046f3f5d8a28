"""POST /api/consultations with several specialists and a planned length: the same service as the page, so
the same 422s naming the same fields, and a 403 for those who set up nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import Consultation

from ...conftest import login


def _body(**changes: object) -> dict:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    return {"title": "MDT: chest pain", "planned_start": start.isoformat(), "duration_minutes": 60,
            "participant_ids": [2, 7, 8], "patient_id": 1, **changes}


async def test_three_specialists_and_the_patient(client: TestClient) -> None:
    """A county doctor sets up a consultation with three specialists and the patient: the creator joins the invited
    participants, the planned end follows from the duration, and the patient is attached."""
    response = await client.post("/api/consultations", json=_body(), headers=await login(client, "dr.li"))
    assert response.status == 201, await response.text()
    created = await response.json()
    assert sorted((p["id"], p["role"]) for p in created["participants"]) == [
        (1, "county_doctor"), (2, "specialist"), (7, "specialist"), (8, "specialist")]
    start = datetime.fromisoformat(created["planned_start"])
    assert datetime.fromisoformat(created["planned_end"]) - start == timedelta(hours=1)
    assert created["patient"]["id"] == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"planned_start": "2020-01-01T09:00:00+08:00"}, "planned_start"),  # in the past
    ({"duration_minutes": 1}, "duration_minutes"),
    ({"duration_minutes": 481}, "duration_minutes"),
    ({"participant_ids": [2, 2000]}, "participant_ids"),
])
async def test_refusals_name_the_field(client: TestClient, changes: dict, field: str) -> None:
    """Each row, a start in the past, a duration too short or too long, or a participant who does not exist: 422
    `validation-failed` naming that field."""
    response = await client.post("/api/consultations", json=_body(**changes), headers=await login(client, "dr.li"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation-failed" and field in error["fields"]


async def _consultation_ids(client: TestClient) -> list[int | None]:
    async with client.app[DATABASE].session() as session:
        return [c.id for c in (await session.exec(select(Consultation))).all()]


PAST_AND_UNKNOWN = {"planned_start": "2020-01-01T09:00:00+08:00", "participant_ids": [2000]}


@pytest.mark.parametrize(("request_body", "status", "code"), [
    ({"json": _body(patient_id=None)}, 403, "forbidden"),
    ({"json": _body(patient_id=None, **PAST_AND_UNKNOWN)}, 403, "forbidden"),
    ({"json": {}}, 422, "validation-failed"),
    ({"data": b'{"title": "MDT", ', "headers": {"Content-Type": "application/json"}}, 400, "bad-json"),
], ids=["valid", "refused-by-the-service", "empty", "malformed"])
async def test_an_auditor_is_refused_whatever_the_body(client: TestClient, request_body: dict, status: int,
                                                       code: str) -> None:
    """Each row, an auditor (who sets up no consultation) posting a valid body, one the service would refuse (a start
    in the past, an unknown participant), an empty object or JSON cut short: refused, and no consultation is created.
    Any body that parses is 403 `forbidden`, the role being checked before the start or the participants; but the
    body is parsed before the role is checked, so an empty object is 422 `validation-failed` and broken JSON 400
    `bad-json`, not 403."""
    before = await _consultation_ids(client)
    headers = {**await login(client, "auditor"), **request_body.get("headers", {})}
    sent = {k: v for k, v in request_body.items() if k != "headers"}
    response = await client.post("/api/consultations", headers=headers, **sent)
    assert (response.status, (await response.json())["error"]["code"]) == (status, code), await response.text()
    assert await _consultation_ids(client) == before
