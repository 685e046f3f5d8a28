"""POST /api/consultations with several specialists and a planned length: the same service as the page, so
the same 422s naming the same fields, and a 403 for those who set up nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from ...conftest import login


def _body(**changes: object) -> dict:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    return {"title": "MDT: chest pain", "planned_start": start.isoformat(), "duration_minutes": 60,
            "participant_ids": [2, 7, 8], "patient_id": 1, **changes}


async def test_two_specialists_and_the_patient(client: TestClient) -> None:
    response = await client.post("/api/consultations", json=_body(), headers=await login(client, "dr.li"))
    assert response.status == 201, await response.text()
    created = await response.json()
    assert sorted(p["id"] for p in created["participants"]) == [1, 2, 7, 8]
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
    response = await client.post("/api/consultations", json=_body(**changes), headers=await login(client, "dr.li"))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation-failed" and field in error["fields"]


async def test_an_auditor_is_refused_whatever_the_body(client: TestClient) -> None:
    response = await client.post("/api/consultations", json=_body(patient_id=None),
                                 headers=await login(client, "auditor"))
    assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
