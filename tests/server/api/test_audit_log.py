"""The auditor's view of the audit trail: filters, the chain's state, and exports that are audited."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE

from ...conftest import login
from ...support.visits import consent, invite

EN = {"Accept-Language": "en"}


async def _activity(client: TestClient) -> None:
    """Logins, an invitation and a patient's consents given and withdrawn, in consultation 1."""
    guest = await invite(client)
    await consent(client, guest, "video")
    await consent(client, guest, "recording")
    await consent(client, guest, "recording", given=False)


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao", "admin"])
async def test_only_auditors_read_and_export_the_trail(client: TestClient, username: str) -> None:
    """Each row, a county doctor, a specialist, a coordinator or an administrator: the audit trail's API, its export and
    its page all answer 403; reading who did what is the auditor's alone."""
    headers = await login(client, username)
    for path in ("/api/audit", "/api/audit/export?format=csv", "/audit"):
        response = await client.get(path, headers={**headers, **EN})
        assert response.status == 403, path


async def test_filters_narrow_the_trail(client: TestClient) -> None:
    """The whole trail comes newest first with its chain holding; an action prefix, an actor with a consultation, a
    single action and a date range each narrow it to exactly the matching entries, and a range with no activity to
    none."""
    await _activity(client)
    auditor = await login(client, "auditor")
    everything = await (await client.get("/api/audit", headers=auditor)).json()
    assert everything["chain"]["holds"] is True and everything["chain"]["entries"] == len(everything["entries"])
    ids = [e["id"] for e in everything["entries"]]
    assert ids == sorted(ids, reverse=True), "newest first"

    consents = await (await client.get("/api/audit?action=consent.", headers=auditor)).json()
    # _activity's three, after the demo's consent to sharing (seeded, recorded by dr.li)
    assert [e["action"] for e in consents["entries"]] == ["consent.withdrawn"] + ["consent.given"] * 3
    patient = await (await client.get("/api/audit?actor=patient:1&consultation=1", headers=auditor)).json()
    # the identity check and three consents
    assert {e["actor"] for e in patient["entries"]} == {"patient:1"} and len(patient["entries"]) == 4
    logins = await (await client.get("/api/audit?action=auth.login", headers=auditor)).json()
    assert logins["entries"] and all(e["action"] == "auth.login" for e in logins["entries"])
    none = await (await client.get("/api/audit?since=2000-01-01&until=2000-01-02", headers=auditor)).json()
    assert none["entries"] == []


@pytest.mark.parametrize(("query", "field"), [("since=yesterday", "since"), ("consultation=one", "consultation"),
                                              ("format=xml", "format")])
async def test_bad_filters_are_named(client: TestClient, query: str, field: str) -> None:
    """Each row, a date that is not a date, a consultation that is not a number or an unknown format: the export answers
    422 naming that field."""
    response = await client.get(f"/api/audit/export?{query}", headers=await login(client, "auditor"))
    assert response.status == 422 and field in (await response.json())["error"]["fields"]


async def test_exports_hold_the_chain_and_are_themselves_audited(client: TestClient) -> None:
    """The CSV export is a download with a byte-order mark (for spreadsheets), oldest first, each row with its hash and
    the previous one and its detail; the JSON export states its filter; and each export is itself audited as the
    auditor's, with its format, filter and count."""
    await _activity(client)
    auditor = await login(client, "auditor")
    exported = await client.get("/api/audit/export?action=consent.&format=csv", headers=auditor)
    assert exported.status == 200 and exported.content_type == "text/csv"
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="telemed-audit-')
    text = await exported.text()
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["action"] for r in rows] == ["consent.given"] * 3 + ["consent.withdrawn"], "oldest first"
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in rows)
    assert [json.loads(r["detail"])["purpose"] for r in rows[:2]] == ["record_sharing", "video"]  # the demo's first

    as_json = await client.get("/api/audit/export?actor=patient:1&format=json", headers=auditor)
    document = await as_json.json()
    assert document["filter"] == {"actor": "patient:1"} and len(document["entries"]) == 4  # identity, 3 consents

    exports = await (await client.get("/api/audit?action=audit.exported", headers=auditor)).json()
    details = [e["detail"] for e in exports["entries"]]
    assert details == [{"format": "json", "filter": {"actor": "patient:1"}, "entries": 4},
                       {"format": "csv", "filter": {"action": "consent."}, "entries": 4}]
    assert {e["actor"] for e in exports["entries"]} == {"user:6"}


async def test_the_page_shows_the_trail_and_a_broken_chain(client: TestClient) -> None:
    """The auditor's page lists the filtered entries with the chain holding and offers the CSV export of the same
    filter; once an entry is altered in the database the page says the chain is broken; a bad date answers 422 naming
    it."""
    await _activity(client)
    await client.post("/login", data={"username": "auditor", "password": "telemed-demo"})
    page = await client.get("/audit?action=consent.", headers=EN)
    text = await page.text()
    assert page.status == 200 and 'data-holds="true"' in text and text.count('data-action="consent.') == 4
    assert 'href="/api/audit/export?action=consent.&amp;format=csv"' in text
    async with client.app[DATABASE].engine.begin() as conn:
        await conn.execute(sa.text("UPDATE audit_event SET detail = '{}' WHERE action = 'consent.withdrawn'"))
    broken = await (await client.get("/audit", headers=EN)).text()
    assert 'data-holds="false"' in broken and "altered" in broken
    bad = await client.get("/audit?since=soon", headers=EN)
    assert bad.status == 422 and "since" in await bad.text()


@pytest.mark.parametrize(("query", "field"), [
    ("consultation=" + "9" * 30, "consultation"), ("consultation=%C2%B2", "consultation"),
    ("consultation=%D9%A1", "consultation"), ("before=" + "9" * 30, "before"), ("before=%EF%BC%91", "before"),
    ("before=next", "before"),
])
async def test_ids_in_filters_are_ascii_digits_within_range(client: TestClient, query: str, field: str) -> None:
    """Guards ?consultation= and ?before=: 30 digits overflowed the database (a 500), ``²`` crashed int(),
    ``١`` was read as 1, and a ``before`` that was not an id was silently dropped (the first page again)."""
    auditor = await login(client, "auditor")
    for path in ("/api/audit", "/api/audit/export"):
        response = await client.get(f"{path}?{query}", headers=auditor)
        if path == "/api/audit/export" and field == "before":
            assert response.status == 200, "an export takes no page"
            continue
        assert response.status == 422 and field in (await response.json())["error"]["fields"]
    await client.post("/login", data={"username": "auditor", "password": "telemed-demo"})
    page = await client.get(f"/audit?{query}", headers=EN)
    assert page.status == 422 and field in await page.text()
