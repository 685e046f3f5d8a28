"""REST for legal holds: administrators and auditors place, list and release; others get 403; a malformed body
is 422 naming the field, never a 500."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from ...conftest import login


async def test_place_list_release_over_rest(client: TestClient) -> None:
    """An auditor places a hold on a consultation, an administrator finds it among the active holds, and the auditor
    releases it; releasing it again is 409 and no active hold is left."""
    auditor = await login(client, "auditor")
    placed = await client.post("/api/holds", json={"consultation_id": 1, "reason": "Regulator's inquiry"},
                               headers=auditor)
    assert placed.status == 201, await placed.text()
    hold = await placed.json()
    assert hold["active"] and hold["consultation_id"] == 1 and hold["patient_id"] is None
    listed = await (await client.get("/api/holds?active=1", headers=await login(client, "admin"))).json()
    assert [h["id"] for h in listed["holds"]] == [hold["id"]]
    released = await client.post(f"/api/holds/{hold['id']}/release", json={"reason": "Closed"}, headers=auditor)
    assert released.status == 200 and (await released.json())["active"] is False
    again = await client.post(f"/api/holds/{hold['id']}/release", json={"reason": "Closed"}, headers=auditor)
    assert again.status == 409
    assert (await (await client.get("/api/holds?active=1", headers=auditor)).json())["holds"] == []


async def test_others_are_refused_and_bad_bodies_are_422(client: TestClient) -> None:
    """A county doctor can neither list nor place holds (403); an administrator's hold on neither or both of a patient
    and a consultation, on a patient id that is not a number, or without a reason is 422 `validation-failed` naming
    the wrong field in `fields` (`patient_id`, `reason`; `body` for neither or both, a rule over two fields); an unknown
    patient is 404 and a hold id that is not a number 400."""
    doctor = await login(client, "dr.li")
    assert (await client.get("/api/holds", headers=doctor)).status == 403
    assert (await client.post("/api/holds", json={"patient_id": 1, "reason": "x"}, headers=doctor)).status == 403
    admin = await login(client, "admin")
    for body, field in (({"reason": "nobody"}, "body"),
                        ({"patient_id": 1, "consultation_id": 1, "reason": "both"}, "body"),
                        ({"patient_id": "one", "reason": "x"}, "patient_id"),
                        ({"patient_id": 1}, "reason")):
        answer = await client.post("/api/holds", json=body, headers=admin)
        assert answer.status == 422, (body, await answer.text())
        error = (await answer.json())["error"]
        assert error["code"] == "validation-failed"
        assert list(error["fields"]) == [field], (body, error)
    assert (await client.post("/api/holds", json={"patient_id": 999, "reason": "x"}, headers=admin)).status == 404
    assert (await client.post("/api/holds/abc/release", json={"reason": "x"}, headers=admin)).status == 400
