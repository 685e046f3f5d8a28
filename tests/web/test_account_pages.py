"""A user's own password through a real server: after an administrator's reset (or a new account) every page
leads to the change and the API answers 403 ``password-change-required``; the change is audited, ends every
other session, and refuses a wrong current password or a short one beside the field, in the reader's
language."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.admin import SHELL
from server.admin import accounts as admin_accounts
from server.admin.inputs import NewAccount, PasswordReset
from server.appkeys import DATABASE
from server.audit import trail as audit
from server.models import AuditEvent, Role, User

from ..conftest import login
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
TEMPORARY = "temporary-pass-1"


def _error(page: str, field: str) -> str:
    start = page.index(f'id="error-{field}">') + len(f'id="error-{field}">')
    return page[start:page.index("</span>", start)]


async def _reset(client: TestClient, username: str) -> None:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        await admin_accounts.reset_password(session, SHELL, user.id, PasswordReset(password=TEMPORARY), rooms=None)


async def test_after_a_reset_every_page_leads_to_the_change_first(client: TestClient) -> None:
    """Guards the forced change: pages redirect to it, the API refuses with its code, and nothing else is
    reachable until the new password is set; then the dashboard opens and the old token is dead."""
    await _reset(client, "dr.li")
    bearer = await login(client, "dr.li", TEMPORARY)
    assert (await form_login(client, "dr.li", password=TEMPORARY)).status == 303
    for path in ("/", "/referrals", "/consultations", "/patients/new", "/notifications"):
        answer = await client.get(path, allow_redirects=False, headers=EN)
        assert (answer.status, answer.headers.get("Location")) == (303, f"/account/password?next={path}"), path
    for headers in (bearer, {}):  # by token, and by the session cookie
        refused = await client.get("/api/consultations", headers=headers)
        assert refused.status == 403 and (await refused.json())["error"]["code"] == "password-change-required"
    me = await (await client.get("/api/me", headers=bearer)).json()
    assert me["must_change_password"] is True

    page = await (await client.get("/account/password", headers=ZH)).text()
    assert "您的密码由管理员设置，仅为临时密码。" in page and 'name="current_password"' not in page
    short = await client.post("/account/password", data={"new_password": "short", "new_password_again": "short"},
                              headers=ZH)
    assert short.status == 422 and _error(await short.text(), "new_password") == "至少 10 个字符。"
    differ = await client.post("/account/password", headers=ZH,
                               data={"new_password": "my-own-password", "new_password_again": "my-own-passwrod"})
    assert _error(await differ.text(), "new_password_again") == "两次输入的新密码不一致。"
    same = await client.post("/account/password", headers=EN,
                             data={"new_password": TEMPORARY, "new_password_again": TEMPORARY})
    assert _error(await same.text(), "new_password") == "Choose a password other than the one you have now."

    done = await client.post("/account/password", allow_redirects=False, headers=EN,
                             data={"new_password": "my-own-password", "new_password_again": "my-own-password"})
    assert (done.status, done.headers["Location"]) == (303, "/")
    dashboard = await client.get("/", headers=EN)
    assert dashboard.status == 200 and "My consultations" in await dashboard.text()
    ended = await client.get("/api/me", headers=bearer)
    assert ended.status == 401 and (await ended.json())["error"]["code"] == "session-ended"
    assert (await client.get("/api/me", headers=await login(client, "dr.li", "my-own-password"))).status == 200
    async with client.app[DATABASE].session() as session:
        entries = (await session.exec(select(AuditEvent).where(AuditEvent.action == "account.password_changed"))).all()
    assert [(e.actor, audit.to_json(e)["detail"]) for e in entries] == [("user:1", {"temporary": True})]


async def test_a_forced_change_goes_on_to_the_page_asked_for(client: TestClient) -> None:
    """Guards the way back after a reset (a clinician sent out of a call logs in again on the way to its room): the
    page asked for with a temporary password is carried through the change (``next``) and opened after it, and
    only a path of this site is (an open redirect would let a phishing link borrow the change)."""
    await _reset(client, "dr.li")
    assert (await form_login(client, "dr.li", password=TEMPORARY)).status == 303
    sent = await client.get("/consultations?status=scheduled&page=1", allow_redirects=False, headers=EN)
    assert sent.status == 303 and sent.headers["Location"].startswith("/account/password?next=")
    page = await (await client.get(sent.headers["Location"], headers=EN)).text()
    assert 'name="next" value="/consultations?status=scheduled&amp;page=1"' in page
    quoted = await (await client.get('/account/password?next=/consultations?q="><script>', headers=EN)).text()
    assert 'name="next" value="/consultations?q=&#34;&gt;&lt;script&gt;"' in quoted
    offsite = await (await client.get("/account/password?next=//evil.example/x", headers=EN)).text()
    assert 'name="next" value="/"' in offsite
    refused = await client.post("/account/password", allow_redirects=False, headers=EN,
                                data={"new_password": "my-own-password", "new_password_again": "my-own-password",
                                      "next": "/\\evil.example/x"})
    assert (refused.status, refused.headers["Location"]) == (303, "/")
    await _reset(client, "dr.li")
    assert (await form_login(client, "dr.li", password=TEMPORARY)).status == 303
    done = await client.post("/account/password", allow_redirects=False, headers=EN,
                             data={"new_password": "my-own-password", "new_password_again": "my-own-password",
                                   "next": "/consultations?status=scheduled&page=1"})
    assert (done.status, done.headers["Location"]) == (303, "/consultations?status=scheduled&page=1")


async def test_a_new_account_sets_its_own_password_at_the_first_login(client: TestClient) -> None:
    """Guards account creation: the password an administrator chose is temporary too."""
    async with client.app[DATABASE].session() as session:
        await admin_accounts.create(session, SHELL, NewAccount(username="dr.sun", display_name="Sun",
                                                               role=Role.COUNTY_DOCTOR, hospital_id=1,
                                                               password=TEMPORARY))
    refused = await client.get("/api/consultations", headers=await login(client, "dr.sun", TEMPORARY))
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "password-change-required"


async def test_a_voluntary_change_needs_the_current_password(client: TestClient) -> None:
    """Guards a stolen session: changing the password any time asks for the current one, refused beside the
    field in the reader's language; the change ends the account's other sessions and says so."""
    other = await login(client, "dr.wang")
    await form_login(client, "dr.wang")
    home = await (await client.get("/", headers=EN)).text()
    assert 'href="/account/password"' in home
    page = await (await client.get("/account/password", headers=EN)).text()
    assert 'name="current_password"' in page and 'id="forced"' not in page
    new = {"new_password": "wang-new-password", "new_password_again": "wang-new-password"}
    missing = await client.post("/account/password", data=new, headers=ZH)
    assert missing.status == 422 and _error(await missing.text(), "current_password") == "请输入当前密码。"
    wrong = await client.post("/account/password", data={**new, "current_password": "not-it-at-all"}, headers=EN)
    assert _error(await wrong.text(), "current_password") == "This is not your current password."
    changed = await client.post("/account/password", data={**new, "current_password": "telemed-demo"},
                                allow_redirects=False, headers=EN)
    assert (changed.status, changed.headers["Location"]) == (303, "/account/password?done=1")
    said = await (await client.get("/account/password?done=1", headers=ZH)).text()
    assert "密码已修改，您在其他设备上的会话已全部结束。" in said, "this browser stays logged in"
    assert (await client.get("/api/me", headers=other)).status == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"new_password": "api-new-password"}, "current_password"),
    ({"new_password": "short", "current_password": "telemed-demo"}, "new_password"),
    ({"new_password": "api-new-password", "current_password": "telemed-demo", "extra": "x"}, "extra"),
])
async def test_the_api_refuses_what_the_page_refuses(client: TestClient, body: dict, field: str) -> None:
    """Guards one way in: POST /api/me/password reads the page's model and answers 422 naming the field."""
    refused = await client.post("/api/me/password", json=body, headers=await login(client, "dr.wang"))
    assert refused.status == 422 and field in (await refused.json())["error"]["fields"]


async def test_the_api_changes_a_temporary_password_and_answers_a_new_token(client: TestClient) -> None:
    """Guards the API's way out of a temporary password: the answer's token works, the old one is ended."""
    await _reset(client, "dr.wang")
    old = await login(client, "dr.wang", TEMPORARY)
    answer = await client.post("/api/me/password", json={"new_password": "wang-api-password"}, headers=old)
    assert answer.status == 200, await answer.text()
    token = (await answer.json())["access_token"]
    assert (await client.get("/api/consultations", headers={"Authorization": f"Bearer {token}"})).status == 200
    assert (await client.get("/api/me", headers=old)).status == 401
