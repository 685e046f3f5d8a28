"""The consultation request through the REST API: sent with the referral, read whole at
``GET /api/referrals/{id}/request`` by whoever may see the referral (audited), and rewritten while a draft."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import AuditEvent

from ...conftest import login
from .test_referrals import create, ids, new_referral

REQUEST = {"question": "是否需要冠脉造影？", "working_diagnosis": "不稳定型心绞痛", "diagnosis_code": "I20.0",
           "history": "高血压十年。", "results": "心电图 ST 段压低。", "title_wanted": "chief"}


async def test_the_request_travels_with_the_referral_and_reads_whole(client: TestClient) -> None:
    """JSON in and out: the referral's JSON carries the fields, the request's JSON lays them out with the
    hospitals, doctor, title wanted and the consent's status; a read by the coordinator is audited."""
    known = await ids(client)
    referral = await create(client, known, **REQUEST)
    assert {k: referral[k] for k in REQUEST} == REQUEST
    zhao = await login(client, "coord.zhao")
    response = await client.get(f"/api/referrals/{referral['id']}/request", headers=zhao)
    assert response.status == 200
    shown = await response.json()
    assert shown["question"] == REQUEST["question"] and shown["history"] == REQUEST["history"]
    assert shown["working_diagnosis"] == {"text": "不稳定型心绞痛", "code": "I20.0", "code_title": "Unstable angina"}
    assert (shown["title_wanted"], shown["requesting_doctor"], shown["sharing_consent"]["status"],
            shown["sharing_consent"]["method"]) == ("chief", "李明 Li Ming", "given", "verbal")
    assert shown["patient"]["name"].startswith("张伟") and shown["records_withheld"] is False
    async with client.app[DATABASE].session() as session:
        entry = (await session.exec(select(AuditEvent).where(AuditEvent.action == "patient.viewed",
                                                             AuditEvent.actor == f"user:{known['coord.zhao']}"))).one()
    assert json.loads(entry.detail) == {"via": f"referral:{referral['id']}", "format": "request-json"}


async def test_the_request_is_refused_to_whoever_may_not_see_the_referral(client: TestClient) -> None:
    """The consultation request is refused 403 to another county's doctor, an administrator and a receiving specialist
    the referral does not name; an unknown referral's is 404."""
    referral = await create(client, await ids(client), **REQUEST)
    for username, status in (("dr.chen", 403), ("admin", 403), ("dr.wang", 403)):
        response = await client.get(f"/api/referrals/{referral['id']}/request", headers=await login(client, username))
        assert response.status == status, username
    assert (await client.get("/api/referrals/99999/request", headers=await login(client, "dr.li"))).status == 404


async def test_submitting_without_a_question_names_it(client: TestClient) -> None:
    """A referral sent without the question for the specialist is 422 naming the question alone; one with a diagnosis
    code not in the list is 422 naming `diagnosis_code`."""
    known = await ids(client)
    refused = await client.post("/api/referrals", json=new_referral(known, question=""),
                                headers=await login(client, "dr.li"))
    assert refused.status == 422 and list((await refused.json())["error"]["fields"]) == ["question"]
    bad = await client.post("/api/referrals", json=new_referral(known, diagnosis_code="nope", title_wanted="any"),
                            headers=await login(client, "dr.li"))
    assert bad.status == 422 and "diagnosis_code" in (await bad.json())["error"]["fields"]


async def test_a_draft_request_is_rewritten_by_its_referrer_only(client: TestClient) -> None:
    """PUT replaces the draft's request (the referrer's, while a draft): 403 for anyone else or once sent,
    422 naming a code not in the list."""
    known = await ids(client)
    draft = await create(client, known, question="", submit=False)
    li = await login(client, "dr.li")
    body = {"reason": "复诊", "summary": "", **REQUEST}
    path = f"/api/referrals/{draft['id']}/request"
    refused = await client.put(path, json={**body, "diagnosis_code": "X99.99"}, headers=li)
    assert refused.status == 422 and "diagnosis_code" in (await refused.json())["error"]["fields"]
    assert (await client.put(path, json=body, headers=await login(client, "coord.zhao"))).status == 403
    edited = await client.put(path, json=body, headers=li)
    assert edited.status == 200 and (await edited.json())["question"] == REQUEST["question"]
    sent = await client.post(f"/api/referrals/{draft['id']}/actions", json={"action": "submit"}, headers=li)
    assert sent.status == 200, await sent.text()
    assert (await client.put(path, json=body, headers=li)).status == 403
