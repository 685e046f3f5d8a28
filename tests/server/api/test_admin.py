"""/api/admin: administrators only (403 for everyone else), 422 naming each bad field, the last active
administrator kept, and a disabled account, a reset password or a clinician made other than one ending the
sessions and calls it had, through a real server."""

from __future__ import annotations

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.models import Consultation, ConsultationStatus

from ...conftest import login
from ...support.signaling_client import connect, expect, expect_closed, room_token

HOSPITAL = {"name": "高山县医院 Gaoshan County Hospital", "level": "county", "region": "西川省 Xichuan",
            "timezone": "Asia/Urumqi"}

# Every operation, with a body that is valid, so that only the caller's role can refuse it.
OPERATIONS = [
    ("GET", "/api/admin/overview", None),
    ("GET", "/api/admin/accounts", None),
    ("POST", "/api/admin/accounts", {"username": "dr.sun", "display_name": "Sun", "role": "county_doctor",
                                     "hospital_id": 2}),
    ("GET", "/api/admin/accounts/1", None),
    ("PUT", "/api/admin/accounts/1", {"display_name": "Li", "role": "auditor", "hospital_id": 2}),
    ("POST", "/api/admin/accounts/1/disable", None),
    ("POST", "/api/admin/accounts/1/enable", None),
    ("POST", "/api/admin/accounts/1/password", {}),
    ("GET", "/api/admin/hospitals", None),
    ("POST", "/api/admin/hospitals", HOSPITAL),
    ("GET", "/api/admin/hospitals/1", None),
    ("PUT", "/api/admin/hospitals/1", {**HOSPITAL, "name": "江南省人民医院 Jiangnan Provincial People's Hospital",
                                       "level": "tertiary", "timezone": "Asia/Shanghai"}),
    ("POST", "/api/admin/hospitals/1/departments", {"name": "Dermatology"}),
    ("PUT", "/api/admin/departments/1", {"name": "心血管内科 Cardiology", "specialty_id": 1}),
    ("GET", "/api/admin/specialties", None),
    ("POST", "/api/admin/specialties", {"code": "dermatology", "name_zh": "皮肤科", "name_en": "Dermatology"}),
    ("PUT", "/api/admin/specialties/1", {"code": "cardiology", "name_zh": "心内科", "name_en": "Cardiology"}),
    ("GET", "/api/admin/partnerships", None),
    ("POST", "/api/admin/partnerships", {"name": "P", "lead_hospital_id": 1, "member_ids": [2]}),
    ("GET", "/api/admin/partnerships/1", None),
    ("PUT", "/api/admin/partnerships/1", {"name": "江南省人民医院医联体 Jiangnan Provincial Partnership",
                                          "lead_hospital_id": 1}),
    ("POST", "/api/admin/partnerships/1/members", {"hospital_id": 3}),
    ("DELETE", "/api/admin/partnerships/1/members/3", None),
]


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao", "auditor"])
async def test_everyone_but_administrators_is_refused(client: TestClient, username: str) -> None:
    """Each row, a county doctor, a specialist, a coordinator or an auditor: every admin operation, even with a valid
    body, answers 403 `forbidden`; and with no token at all the account list answers 401."""
    headers = await login(client, username)
    for method, path, body in OPERATIONS:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status == 403, (method, path, await response.text())
        assert (await response.json())["error"]["code"] == "forbidden"
    anonymous = await client.get("/api/admin/accounts")
    assert anonymous.status == 401


async def test_every_operation_answers_an_administrator(client: TestClient) -> None:
    """An administrator gets 200 or 201 from every admin operation in the table, so the refusals of the other roles come
    from the role, not from the request."""
    headers = await login(client, "admin")
    for method, path, body in OPERATIONS:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status in (200, 201), (method, path, await response.text())


@pytest.mark.parametrize(("method", "path", "body", "fields"), [
    ("POST", "/api/admin/hospitals", {**HOSPITAL, "timezone": "Beijing"}, {"timezone"}),
    ("POST", "/api/admin/hospitals", {**HOSPITAL, "level": "huge", "name": ""}, {"level", "name"}),
    ("POST", "/api/admin/accounts", {"username": "a b", "display_name": "x", "role": "king", "hospital_id": 1,
                                     "password": "short"}, {"username", "role", "password"}),
    ("POST", "/api/admin/accounts", {"username": "dr.sun", "display_name": "Sun", "role": "specialist",
                                     "hospital_id": 2, "specialty_id": 99}, {"specialty_id"}),
    ("PUT", "/api/admin/accounts/1", {"display_name": "Li", "role": "county_doctor", "hospital_id": 2,
                                      "department_id": 1}, {"department_id"}),
    ("POST", "/api/admin/specialties", {"code": "Skin!", "name_zh": "皮肤科", "name_en": "Skin",
                                        "slot_minutes": 7}, {"code", "slot_minutes"}),
    ("POST", "/api/admin/partnerships", {"name": "P", "lead_hospital_id": 99}, {"lead_hospital_id"}),
    ("POST", "/api/admin/partnerships/1/members", {"hospital_id": "two"}, {"hospital_id"}),
    ("POST", "/api/admin/accounts/1/password", {"password": "short", "extra": 1}, {"password", "extra"}),
    ("GET", "/api/admin/accounts?role=king&page=0&hospital_id=x", None, {"role", "page", "hospital_id"}),
])
async def test_bad_fields_are_named(client: TestClient, method: str, path: str, body: dict | None,
                                    fields: set[str]) -> None:
    """Each row: a bad body or query to an admin operation answers 422 `validation-failed` naming exactly the fields
    that are wrong, no more and no fewer, so the administrator sees which ones to correct."""
    response = await client.request(method, path, json=body, headers=await login(client, "admin"))
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation-failed" and set(error["fields"]) == fields


async def test_the_last_administrator_is_kept(client: TestClient) -> None:
    """The last active administrator can neither disable their own account nor give it another role (409
    `last-administrator`, saying why), and is still an administrator afterwards: the system is never left with nobody to
    run it."""
    headers = await login(client, "admin")
    me = (await (await client.get("/api/me", headers=headers)).json())["id"]
    for method, path, body in [("POST", f"/api/admin/accounts/{me}/disable", None),
                               ("PUT", f"/api/admin/accounts/{me}", {"display_name": "Me", "role": "auditor",
                                                                      "hospital_id": 1})]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status == 409
        error = (await response.json())["error"]
        assert error["code"] == "last-administrator" and "last active administrator" in error["message"]
    assert (await client.get("/api/admin/overview", headers=headers)).status == 200, "still an administrator"


async def _login_status(client: TestClient, username: str, password: str) -> int:
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    return response.status


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end_for_good(client: TestClient) -> None:
    """Disabling an account ends its open session at once (401 `account-disabled`) and refuses its password; enabling it
    again lets it log in afresh but does not revive the session disabling ended (401 `session-ended`)."""
    admin = await login(client, "admin")
    li = await login(client, "dr.li")
    li_id = (await (await client.get("/api/me", headers=li)).json())["id"]
    disabled = await client.post(f"/api/admin/accounts/{li_id}/disable", headers=admin)
    assert disabled.status == 200 and (await disabled.json())["is_active"] is False

    stale = await client.get("/api/me", headers=li)
    assert stale.status == 401 and (await stale.json())["error"]["code"] == "account-disabled"
    assert await _login_status(client, "dr.li", "telemed-demo") == 401

    assert (await client.post(f"/api/admin/accounts/{li_id}/enable", headers=admin)).status == 200
    revived = await client.get("/api/me", headers=li)
    assert revived.status == 401 and (await revived.json())["error"]["code"] == "session-ended", \
        "re-enabling does not bring back the sessions disabling ended"
    assert (await client.get("/api/me", headers=await login(client, "dr.li"))).status == 200


async def _li_and_wang(client: TestClient) -> tuple[ClientWebSocketResponse, ClientWebSocketResponse, str, int]:
    """dr.li and dr.wang in the demo consultation's room, each seeing the other; dr.wang's room token and id."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    wang_token = await room_token(client, "dr.wang")
    wang = await connect(client, wang_token)
    await expect(wang, "joined")
    await expect(li, "participant-joined")
    wang_id = (await (await client.get("/api/me", headers=await login(client, "dr.wang"))).json())["id"]
    return li, wang, wang_token, wang_id


async def test_a_disabled_account_is_sent_away_from_the_room_it_is_in(client: TestClient) -> None:
    """Guards disabling a clinician in a call: dr.wang, in the demo consultation's room with dr.li, gets `removed` and
    his socket closes (4403) the moment an administrator disables him, though the consultation was completed during
    the call (as signing its report does); dr.li sees him leave (`not-a-participant`), and his room token, still
    unexpired, no longer lets him in."""
    admin = await login(client, "admin")
    li, wang, wang_token, wang_id = await _li_and_wang(client)
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, 1)
        assert consultation is not None
        consultation.status = ConsultationStatus.COMPLETED
        await session.commit()

    disabled = await client.post(f"/api/admin/accounts/{wang_id}/disable", headers=admin)
    assert disabled.status == 200, await disabled.text()
    assert (await expect(wang, "removed"))["message"]
    await expect_closed(wang, 4403)
    assert (await expect(li, "participant-left"))["reason"] == "not-a-participant"
    again = await connect(client, wang_token)
    assert (await expect(again, "error"))["code"] == "not-a-participant"


async def test_a_reset_password_sends_its_account_away_from_the_room_it_is_in(client: TestClient) -> None:
    """Guards a password reset ending the call too, not only the HTTP sessions (an administrator resets a password
    that may be known to someone else): dr.wang, in the demo consultation's room with dr.li, gets `removed` and his
    socket closes (4403) the moment an administrator resets his password; dr.li sees him leave (`session-ended`)
    and stays in the call; his room token, still unexpired, no longer lets him in (`session-ended`), and he gets a
    new one only after he has logged in with the new password and replaced it with his own."""
    admin = await login(client, "admin")
    li, wang, wang_token, wang_id = await _li_and_wang(client)

    reset = await client.post(f"/api/admin/accounts/{wang_id}/password", json={"password": "temporary-pass-1"},
                              headers=admin)
    assert reset.status == 200, await reset.text()
    assert (await expect(wang, "removed"))["message"]
    await expect_closed(wang, 4403)
    assert (await expect(li, "participant-left"))["reason"] == "session-ended"
    await li.send_json({"type": "chat", "text": "还在吗"})
    assert (await expect(li, "chat"))["text"] == "还在吗", "dr.li is still in the call"
    again = await connect(client, wang_token)
    assert (await expect(again, "error"))["code"] == "session-ended"
    await expect_closed(again, 4403)

    temporary = await login(client, "dr.wang", "temporary-pass-1")
    refused = await client.post("/api/consultations/1/room-token", headers=temporary)
    assert refused.status == 403, await refused.text()
    assert (await refused.json())["error"]["code"] == "password-change-required"
    changed = await client.post("/api/me/password", json={"new_password": "his-own-pass-2"}, headers=temporary)
    assert changed.status == 200, await changed.text()
    own = {"Authorization": f"Bearer {(await changed.json())['access_token']}"}
    issued = await client.post("/api/consultations/1/room-token", headers=own)
    assert issued.status == 200, await issued.text()
    back = await connect(client, (await issued.json())["token"])
    await expect(back, "joined")
    assert (await expect(li, "participant-joined"))["participant"]["name"]
    await li.close()
    await back.close()


async def test_a_clinician_made_a_coordinator_is_sent_away_from_the_room_they_are_in(client: TestClient) -> None:
    """Guards a role change reaching a call at once: dr.wang, in the demo consultation's room with dr.li, is sent away
    (`removed`, 4403) the moment an administrator makes him a coordinator, who takes no part in calls; dr.li sees him
    leave (`not-a-participant`), and his room token from before, still unexpired, no longer lets him in. Renaming him
    alone, before that, touched nothing in the call."""
    admin = await login(client, "admin")
    li, wang, wang_token, wang_id = await _li_and_wang(client)
    me = await (await client.get(f"/api/admin/accounts/{wang_id}", headers=admin)).json()
    account = {"display_name": me["display_name"], "role": me["role"], "hospital_id": me["hospital"]["id"],
               "department_id": me["department"]["id"] if me["department"] else None}

    renamed = await client.put(f"/api/admin/accounts/{wang_id}", headers=admin,
                               json={**account, "display_name": "王伟 Wang Wei (cardiology)"})
    assert renamed.status == 200, await renamed.text()
    made = await client.put(f"/api/admin/accounts/{wang_id}", headers=admin, json={**account, "role": "coordinator"})
    assert made.status == 200, await made.text()
    assert (await expect(wang, "removed"))["message"], "removed, and nothing before it"
    await expect_closed(wang, 4403)
    assert (await expect(li, "participant-left"))["reason"] == "not-a-participant"
    again = await connect(client, wang_token)
    assert (await expect(again, "error"))["code"] == "not-a-participant"
    await li.close()


async def test_a_reset_password_logs_in_and_ends_the_old_sessions(client: TestClient) -> None:
    """A reset with no password chosen answers a generated one of at least 10 characters that logs in, while the old
    password and the open session stop working; a password the administrator chooses is not echoed back and logs in."""
    admin = await login(client, "admin")
    li = await login(client, "dr.li")
    li_id = (await (await client.get("/api/me", headers=li)).json())["id"]
    response = await client.post(f"/api/admin/accounts/{li_id}/password", json={}, headers=admin)
    generated = (await response.json())["password"]
    assert response.status == 200 and len(generated) >= 10
    assert (await client.get("/api/me", headers=li)).status == 401
    assert await _login_status(client, "dr.li", "telemed-demo") == 401
    assert (await client.get("/api/me", headers=await login(client, "dr.li", generated))).status == 200

    chosen = await client.post(f"/api/admin/accounts/{li_id}/password", json={"password": "chosen by admin 1"},
                               headers=admin)
    assert chosen.status == 200 and (await chosen.json()) == {"password": None}
    assert await _login_status(client, "dr.li", "chosen by admin 1") == 200


async def test_a_new_role_takes_effect_on_the_next_request(client: TestClient) -> None:
    """A changed role applies to the account's existing token on its very next request: the county doctor refused the
    audit log (403) reads it as an auditor with the same token."""
    admin = await login(client, "admin")
    chen = await login(client, "dr.chen")
    me = await (await client.get("/api/me", headers=chen)).json()
    assert (await client.get("/api/audit", headers=chen)).status == 403
    changed = await client.put(f"/api/admin/accounts/{me['id']}", headers=admin, json={
        "display_name": "陈刚 Chen Gang", "role": "auditor", "hospital_id": me["hospital_id"]})
    assert changed.status == 200 and (await changed.json())["role"] == "auditor"
    assert (await client.get("/api/audit", headers=chen)).status == 200, "the same token, the new role"


async def test_accounts_are_created_found_and_listed_a_page_at_a_time(client: TestClient) -> None:
    """A new specialist account takes its specialty from its department and gets a generated password that logs in and
    is not shown when the account is read again; the same username in capitals is refused 409; a search by name and role
    finds the account alone on one page."""
    admin = await login(client, "admin")
    created = await client.post("/api/admin/accounts", headers=admin, json={
        "username": "dr.sun", "display_name": "孙涛 Sun Tao", "role": "specialist", "hospital_id": 1,
        "department_id": 1})
    account = await created.json()
    assert created.status == 201 and account["password"] and account["specialty"]["code"] == "cardiology"
    assert await _login_status(client, "dr.sun", account["password"]) == 200
    fetched = await (await client.get(f"/api/admin/accounts/{account['id']}", headers=admin)).json()
    assert "password" not in fetched and fetched["username"] == "dr.sun"
    taken = await client.post("/api/admin/accounts", headers=admin, json={
        "username": "DR.SUN", "display_name": "x", "role": "auditor", "hospital_id": 1})
    assert taken.status == 409
    page = await (await client.get("/api/admin/accounts?q=孙涛&role=specialist", headers=admin)).json()
    assert [a["username"] for a in page["accounts"]] == ["dr.sun"] and (page["total"], page["pages"]) == (1, 1)


async def test_a_hospital_and_a_partnership_through_the_api(client: TestClient) -> None:
    """A hospital created with its own time zone keeps it and joins a new partnership as a member; the partnership's
    lead hospital cannot be removed from it (409), the member can."""
    admin = await login(client, "admin")
    hospital = await (await client.post("/api/admin/hospitals", json=HOSPITAL, headers=admin)).json()
    assert hospital["timezone"] == "Asia/Urumqi"
    partnership = await client.post("/api/admin/partnerships", headers=admin, json={
        "name": "西川医联体", "lead_hospital_id": 1, "member_ids": [hospital["id"]]})
    body = await partnership.json()
    assert partnership.status == 201 and [m["id"] for m in body["members"]] == [hospital["id"]]
    lead_leaves = await client.delete(f"/api/admin/partnerships/{body['id']}/members/1", headers=admin)
    assert lead_leaves.status == 409
    left = await client.delete(f"/api/admin/partnerships/{body['id']}/members/{hospital['id']}", headers=admin)
    assert (await left.json())["members"] == []


async def test_the_openapi_document_names_the_bodies(client: TestClient) -> None:
    """The OpenAPI document refers the admin request bodies to their named schemas (NewAccount, HospitalInput,
    PasswordReset, MemberInput), and HospitalInput declares the time zone."""
    document = await (await client.get("/api/openapi.json")).json()
    for path, method, model in [("/api/admin/accounts", "post", "NewAccount"),
                                ("/api/admin/hospitals", "post", "HospitalInput"),
                                ("/api/admin/accounts/{user_id}/password", "post", "PasswordReset"),
                                ("/api/admin/partnerships/{partnership_id}/members", "post", "MemberInput")]:
        ref = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}"
    assert "timezone" in document["components"]["schemas"]["HospitalInput"]["properties"]
