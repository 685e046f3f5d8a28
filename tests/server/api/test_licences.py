"""Clinicians' licences through the REST API: an administrator enters and verifies them (audited with who and
when); an unverified specialist is not offered for booking nor bookable, signs no report, and enters a room as a
guest rather than its host; a change in a call reaches it at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.models import AuditEvent, User

from ...conftest import login
from ...support.signaling_client import connect, expect, room_token
from .test_referrals import act, booked_referral, create, ids
from .test_reports import BODY

LICENCE = "110320000601234"


async def _unverify(client: TestClient, username: str) -> None:
    """Clear a demo clinician's verification, as an administrator's change of their title would."""
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        user.licence_verified_at = user.licence_verified_by = None
        session.add(user)
        await session.commit()


async def _licence(client: TestClient, user_id: int, **body: Any) -> Any:
    return await client.put(f"/api/admin/accounts/{user_id}/licence", json=body, headers=await login(client, "admin"))


async def _verify(client: TestClient, user_id: int, username: str = "admin") -> Any:
    """Verify the licence as the account shows it now (what the administrator has in front of them)."""
    shown = await client.get(f"/api/admin/accounts/{user_id}", headers=await login(client, "admin"))
    licence = (await shown.json())["licence"]
    return await client.post(f"/api/admin/accounts/{user_id}/licence/verify", headers=await login(client, username),
                             json={"licence_number": licence["number"],
                                   "professional_title": licence["professional_title"]})


async def test_an_administrator_enters_then_verifies_a_licence(client: TestClient) -> None:
    """Entering a number and title leaves the licence unverified; verifying names who and when, in the account
    and in the audit trail; a changed title clears the verification again."""
    known = await ids(client)
    entered = await _licence(client, known["dr.he"], licence_number="1103 2000 0601 234", professional_title="chief")
    assert entered.status == 200, await entered.text()
    licence = (await entered.json())["licence"]
    assert licence == {"number": LICENCE, "professional_title": "chief", "verified_at": None, "verified_by": None}

    verified = await _verify(client, known["dr.he"])
    assert verified.status == 200, await verified.text()
    licence = (await verified.json())["licence"]
    assert licence["verified_by"] == known["admin"]
    assert datetime.now(UTC) - datetime.fromisoformat(licence["verified_at"]) < timedelta(minutes=1)
    async with client.app[DATABASE].session() as session:
        entry = (await session.exec(select(AuditEvent).where(AuditEvent.action == "account.licence_verified")
                                    .order_by(col(AuditEvent.id).desc()))).first()
    assert entry is not None and entry.actor == f"user:{known['admin']}" and entry.subject == f"user:{known['dr.he']}"
    assert json.loads(entry.detail) == {"licence_number": LICENCE, "professional_title": "chief"}

    changed = await _licence(client, known["dr.he"], licence_number=LICENCE, professional_title="attending")
    assert (await changed.json())["licence"]["verified_at"] is None
    async with client.app[DATABASE].session() as session:
        entry = (await session.exec(select(AuditEvent).where(AuditEvent.action == "account.licence_changed")
                                    .order_by(col(AuditEvent.id).desc()))).first()
    assert entry is not None and json.loads(entry.detail) == {
        "changes": {"professional_title": ["chief", "attending"]}, "verification_cleared": True}


@pytest.mark.parametrize("number", ["11032000060123", "1103200006012345", "11032000060123X",
                                    "１１０３２００００６０１２３４", "110320000601234110320000601"])
async def test_a_malformed_licence_number_is_422_naming_it(client: TestClient, number: str) -> None:
    """A licence number is 15 ASCII digits: anything else is refused, naming the field, and nothing changes."""
    known = await ids(client)
    refused = await _licence(client, known["dr.he"], licence_number=number, professional_title="chief")
    assert refused.status == 422
    assert "licence_number" in (await refused.json())["error"]["fields"]
    account = await (await client.get(f"/api/admin/accounts/{known['dr.he']}",
                                      headers=await login(client, "admin"))).json()
    assert account["licence"]["number"] != number and account["licence"]["verified_at"] is not None


async def test_only_clinicians_have_a_licence_and_only_administrators_verify(client: TestClient) -> None:
    """A coordinator's account takes no licence (422); a clinician cannot verify a licence, even their own (403);
    a licence without a number cannot be verified (422)."""
    known = await ids(client)
    refused = await _licence(client, known["coord.zhao"], licence_number=LICENCE)
    assert refused.status == 422 and "licence_number" in (await refused.json())["error"]["fields"]
    own = await _verify(client, known["dr.he"], "dr.he")
    assert own.status == 403
    await _licence(client, known["dr.he"], licence_number="", professional_title="attending")
    empty = await _verify(client, known["dr.he"])
    assert empty.status == 422 and "licence_number" in (await empty.json())["error"]["fields"]


async def test_an_unverified_specialist_is_neither_offered_nor_booked(client: TestClient) -> None:
    """The slot search leaves out an unverified specialist, and booking one of their slots anyway is 409
    ``specialist-unverified``; once verified they are offered again."""
    known = await ids(client)
    referral = await create(client, known, target_specialist_id=known["dr.zhou"])
    assert (await act(client, "coord.zhao", referral["id"], "accept")).status == 200
    zhao = await login(client, "coord.zhao")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    async def offered() -> dict[int, list[str]]:
        found = await (await client.get(f"/api/slots?specialty=cardiology&date={tomorrow}&days=7",
                                        headers=zhao)).json()
        return {s["specialist"]["id"]: [t["starts_at"] for t in s["slots"]] for s in found["specialists"]}

    slot = (await offered())[known["dr.zhou"]][0]
    await _unverify(client, "dr.zhou")
    assert known["dr.zhou"] not in await offered() and known["dr.wang"] in await offered()
    booked = await client.post(f"/api/referrals/{referral['id']}/appointment",
                               json={"specialist_id": known["dr.zhou"], "starts_at": slot}, headers=zhao)
    assert booked.status == 409
    assert (await booked.json())["error"]["code"] == "specialist-unverified"

    assert (await _verify(client, known["dr.zhou"])).status == 200
    assert slot in (await offered())[known["dr.zhou"]]


async def test_an_unverified_specialist_signs_no_report_and_hosts_no_room(client: TestClient) -> None:
    """The booked specialist, unverified, is refused signing with 403 ``licence-unverified`` and the reason, and
    their room token is a guest's (no admit, record or moderate); verified again, they sign and host."""
    booked, _ = await booked_referral(client)
    await _unverify(client, "dr.wang")
    wang = await login(client, "dr.wang")
    refused = await client.post(f"/api/referrals/{booked['id']}/reports", json=BODY, headers=wang)
    assert refused.status == 403
    error = (await refused.json())["error"]
    assert error["code"] == "licence-unverified" and "licence has not been verified" in error["message"]

    token = await client.post("/api/consultations/1/room-token", headers=wang)  # the demo consultation, open now
    assert token.status == 200, await token.text()
    assert (await token.json())["grants"] == {"publish": True, "subscribe": True, "admit": False, "record": False,
                                              "moderate": False}

    known = await ids(client)
    assert (await _verify(client, known["dr.wang"])).status == 200
    token = await client.post("/api/consultations/1/room-token", headers=wang)
    assert (await token.json())["grants"]["admit"] is True
    assert (await client.post(f"/api/referrals/{booked['id']}/reports", json=BODY, headers=wang)).status == 201


async def test_a_licence_changed_since_it_was_read_is_not_verified(client: TestClient) -> None:
    """The administrator verifies the number and title they read; if another changed them meanwhile, the
    verification is refused (409) and nothing is recorded, so a number nobody checked is never marked verified."""
    known = await ids(client)
    await _licence(client, known["dr.he"], licence_number=LICENCE, professional_title="chief")
    await _licence(client, known["dr.he"], licence_number="110320000609999", professional_title="chief")
    stale = await client.post(f"/api/admin/accounts/{known['dr.he']}/licence/verify",
                              headers=await login(client, "admin"),
                              json={"licence_number": LICENCE, "professional_title": "chief"})
    assert stale.status == 409, await stale.text()
    assert "changed since you read it" in (await stale.json())["error"]["message"]
    shown = await client.get(f"/api/admin/accounts/{known['dr.he']}", headers=await login(client, "admin"))
    assert (await shown.json())["licence"]["verified_at"] is None
    assert (await _verify(client, known["dr.he"])).status == 200


async def test_a_licence_changed_during_a_call_changes_what_its_clinician_may_do_there(client: TestClient) -> None:
    """Guards an administrator's licence change reaching a call at once, as it reaches the next request: dr.wang,
    host in the demo consultation's room with dr.li, gets `grants` without admit, record or moderate the moment his
    licence number is changed (which clears its verification), and removing dr.li is then refused while dr.li stays;
    the room token he took before the change now enters the lobby, not the room; verifying the new number makes him
    a host again in the call at once (he leaves the lobby for a seat)."""
    li = await connect(client, await room_token(client, "dr.li"))
    li_id = (await expect(li, "joined"))["self"]["id"]
    wang_token = await room_token(client, "dr.wang")
    wang = await connect(client, wang_token)
    await expect(wang, "joined")
    await expect(li, "participant-joined")
    wang_id = (await (await client.get("/api/me", headers=await login(client, "dr.wang"))).json())["id"]
    title = (await (await client.get(f"/api/admin/accounts/{wang_id}", headers=await login(client, "admin")))
             .json())["licence"]["professional_title"]

    changed = await _licence(client, wang_id, licence_number=LICENCE, professional_title=title)
    assert changed.status == 200, await changed.text()
    assert (await expect(wang, "grants"))["grants"] == {"publish": True, "subscribe": True, "admit": False,
                                                       "record": False, "moderate": False}
    await wang.send_json({"type": "remove", "participant_id": li_id})
    assert (await expect(wang, "error"))["code"] == "not-allowed"
    await li.send_json({"type": "chat", "text": "还在"})
    assert (await expect(li, "chat"))["text"] == "还在", "dr.li is still in the call"
    assert (await expect(wang, "chat"))["text"] == "还在", "and dr.wang too"

    again = await connect(client, wang_token)  # issued while he was a host
    assert (await expect(again, "lobby"))["self"]["user_id"] == wang_id
    assert (await expect(wang, "error"))["code"] == "replaced"
    assert (await expect(li, "participant-left"))["reason"] == "replaced"
    assert [p["user_id"] for p in (await expect(li, "lobby-update"))["waiting"]] == [wang_id]

    verified = await _verify(client, wang_id)
    assert verified.status == 200, await verified.text()
    assert (await expect(again, "grants"))["grants"]["admit"] is True
    assert [p["id"] for p in (await expect(again, "joined"))["participants"]] == [li_id]
    await li.close()
    await again.close()
