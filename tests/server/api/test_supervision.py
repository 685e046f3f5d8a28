"""The supervision export over HTTP: the CSV and the JSON keep the schema docs/supervision.md documents (every
column and key, their types), carry no datum of any patient (names, ids, national ids, phones, free text of the
referrals and consultations), answer the same filters as the page, and are refused to everyone but the
supervisors of the partnership asked about."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.supervision.statistics import COUNTS, DURATIONS, FIELDS, SCHEMA_VERSION, SHARES

from ...conftest import login
from ..supervision.history import SECRET_NATIONAL_ID, SECRET_TEXT, craft
from .test_referrals import booked_referral

DOC = Path(__file__).resolve().parents[3] / "docs" / "supervision.md"
URL = "/api/supervision/statistics"
MARCH_APRIL = "from_month=2026-03&to_month=2026-04"


def documented_fields() -> list[str]:
    """The field names of the schema's table in docs/supervision.md, in their order."""
    return re.findall(r"^\| `([a-z_0-9]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.M)


def test_the_document_lists_every_field_in_order() -> None:
    """Guards the documented schema: a field added, renamed or moved in the code fails here until the document
    says so (and, for a change of meaning, SCHEMA_VERSION is bumped)."""
    assert documented_fields()[:len(FIELDS)] == list(FIELDS)
    assert f"`schema_version` is {SCHEMA_VERSION}" in DOC.read_text(encoding="utf-8")


async def test_the_csv_has_the_documented_columns_and_types(client: TestClient) -> None:
    """One header line of the documented columns; counts are integers, shares 0..1 or empty, durations
    non-negative hours or empty; months YYYY-MM."""
    await craft(client)
    answer = await client.get(f"{URL}?{MARCH_APRIL}&format=csv", headers=await login(client, "supervisor"))
    assert answer.status == 200 and answer.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await answer.text())))
    assert rows[0] == list(FIELDS)
    records = [dict(zip(FIELDS, r, strict=True)) for r in rows[1:]]
    assert len(records) == 3 * 2, "three hospitals, two months"
    for record in records:
        assert re.fullmatch(r"\d{4}-\d{2}", record["month"]) and record["hospital_id"].isdigit()
        assert all(record[k].isdigit() for k in COUNTS)
        assert all(record[k] == "" or 0 <= float(record[k]) <= 1 for k in SHARES)
        assert all(record[k] == "" or float(record[k]) >= 0 for k in DURATIONS)
    assert {(r["month"], r["hours_to_accepted_median"]) for r in records if r["referrals_received"] != "0"} == {
        ("2026-03", "4.0"), ("2026-04", "")}


async def test_the_json_has_the_documented_shape(client: TestClient) -> None:
    """Top-level keys, version, zone and range; each row and each month's totals with every field."""
    await craft(client)
    answer = await client.get(f"{URL}?{MARCH_APRIL}", headers=await login(client, "supervisor"))
    assert answer.status == 200 and answer.content_type == "application/json"
    body = await answer.json()
    assert set(body) == {"schema_version", "time_zone", "from_month", "to_month", "generated_at", "partnerships",
                         "rows", "totals"}
    assert (body["schema_version"], body["time_zone"], body["from_month"], body["to_month"]) == (
        SCHEMA_VERSION, "Asia/Shanghai", "2026-03", "2026-04")
    assert all(list(row) == list(FIELDS) for row in body["rows"] + body["totals"])
    assert [(t["month"], t["hospital_id"], t["referrals_received"]) for t in body["totals"]] == [
        ("2026-03", None, 3), ("2026-04", None, 1)]


@pytest.mark.parametrize("kind", ["csv", "json"])
async def test_no_patient_datum_leaves(client: TestClient, kind: str) -> None:
    """Nothing in the export names or identifies a patient: not the demo patient's or the crafted one's name,
    phone or national id, not a patient or referral id, not the free text of reasons, notes and titles."""
    ids = await craft(client)
    text = await (await client.get(f"{URL}?{MARCH_APRIL}&format={kind}",
                                   headers=await login(client, "supervisor"))).text()
    for datum in ("张伟", "Zhang Wei", "钱秘密", "Qian Secret", "13900001111", SECRET_NATIONAL_ID,
                  SECRET_NATIONAL_ID[-4:], SECRET_TEXT, "SECRET", "胸闷", "patient", "referral_id", "Chest pain"):
        assert datum not in text, datum
    assert f"patient:{ids['patient']}" not in text


@pytest.mark.parametrize(("query", "status"), [
    ("format=xml", 422), ("from_month=2026-13", 422), ("from_month=2026-05&to_month=2026-01", 422),
    ("partnership_id=abc", 422), ("partnership_id=999", 403), ("hospital_id=999", 403),
])
async def test_bad_filters_are_refused_with_a_reason(client: TestClient, query: str, status: int) -> None:
    """A wrong parameter is a 422 naming it, a partnership or hospital not overseen a 403; never a 500."""
    answer = await client.get(f"{URL}?{query}", headers=await login(client, "supervisor"))
    assert answer.status == status, await answer.text()


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao", "admin", "auditor"])
async def test_everyone_else_gets_403(client: TestClient, username: str) -> None:
    """Clinicians, coordinators, administrators and auditors read no statistics."""
    answer = await client.get(URL, headers=await login(client, username))
    assert answer.status == 403


async def test_a_supervisor_of_another_partnership_sees_nothing_of_this_one(client: TestClient) -> None:
    """The other commission's export names only its own partnership and hospital, and asking for this
    partnership is refused."""
    ids = await craft(client)
    other = await login(client, "other.supervisor")
    body = await (await client.get(f"{URL}?{MARCH_APRIL}", headers=other)).json()
    assert [p["id"] for p in body["partnerships"]] == [ids["other"]]
    assert {r["hospital_id"] for r in body["rows"]} == {ids["baihe"]}
    assert all(r["referrals_received"] == r["referrals_sent"] == 0 for r in body["rows"] + body["totals"])
    assert (await client.get(f"{URL}?partnership_id=1", headers=other)).status == 403


async def test_administrators_link_supervisors_through_the_api(client: TestClient) -> None:
    """The console's REST face: list, unlink (the supervisor then oversees nothing: their export names no
    partnership), refuse a clinician's account (422), link back; nobody but an administrator may (403)."""
    admin = await login(client, "admin")
    path = "/api/admin/partnerships/1/supervisors"
    listed = await (await client.get(path, headers=admin)).json()
    [supervisor] = listed["supervisors"]
    assert supervisor["username"] == "supervisor"
    removed = await client.delete(f"{path}/{supervisor['id']}", headers=admin)
    assert removed.status == 200 and (await removed.json())["supervisors"] == []
    body = await (await client.get(URL, headers=await login(client, "supervisor"))).json()
    assert body["partnerships"] == [] and body["rows"] == []
    assert (await client.delete(f"{path}/{supervisor['id']}", headers=admin)).status == 404
    assert (await client.post(path, json={"user_id": 1}, headers=admin)).status == 422
    added = await client.post(path, json={"user_id": supervisor["id"]}, headers=admin)
    assert [s["id"] for s in (await added.json())["supervisors"]] == [supervisor["id"]]
    assert (await client.get(path, headers=await login(client, "supervisor"))).status == 403


async def test_a_referral_made_through_the_api_shows_in_this_months_figures(client: TestClient) -> None:
    """End to end over the real flow (not crafted rows): dr.li's referral, accepted and booked by the
    coordinator, counts this month as sent by Qingshan and received, accepted and booked by the provincial
    hospital, with a turnaround of minutes at most; its reason and summary appear nowhere in the export."""
    await booked_referral(client)
    text = await (await client.get(URL, headers=await login(client, "supervisor"))).text()
    assert "68-year-old" not in text and "Chest pain" not in text
    body = await (await client.get(URL, headers=await login(client, "supervisor"))).json()
    month = body["totals"][-1]
    assert (month["referrals_sent"], month["referrals_received"], month["referrals_accepted"],
            month["referrals_booked"], month["sharing_consent_coverage"]) == (1, 1, 1, 1, 1.0)
    assert 0 <= month["hours_to_accepted_median"] <= month["hours_to_booked_median"] < 0.1


@pytest.mark.parametrize("query", ["from_month=0000-01", "to_month=9999-12", "from_month=1899-12"])
async def test_a_month_no_clock_can_hold_is_refused_not_a_500(client: TestClient, query: str) -> None:
    """Year 0 or 10000 cannot be turned into UTC on every clock: such a month is a 422 naming its field."""
    response = await client.get(f"{URL}?{query}", headers=await login(client, "supervisor"))
    assert response.status == 422, await response.text()
    assert query.split("=")[0] in (await response.json())["error"]["fields"]
