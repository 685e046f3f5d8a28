"""The pages through a real server: login form, dashboard, room, language choice, errors and headers."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.identity.auth import COOKIE_NAME
from server.models import Consultation, User

EN = {"Accept-Language": "en"}


async def form_login(client: TestClient, username: str, next_path: str = "/", password: str = "telemed-demo"):
    return await client.post("/login", data={"username": username, "password": password, "next": next_path},
                             allow_redirects=False, headers=EN)


async def test_anonymous_visitor_is_sent_to_login_and_back(client: TestClient) -> None:
    """A visitor without a session is sent to log in, the page they wanted kept in the form, and
    is sent back to it once logged in."""
    first = await client.get("/consultations/1", allow_redirects=False)
    assert first.status == 303
    assert first.headers["Location"].startswith("/login?next=")
    page = await client.get(first.headers["Location"], headers=EN)
    text = await page.text()
    assert "Please log in to continue." in text
    assert 'name="next" value="/consultations/1"' in text
    response = await form_login(client, "dr.li", "/consultations/1")
    assert response.status == 303 and response.headers["Location"] == "/consultations/1"


async def test_wrong_password_shows_the_form_again_with_401(client: TestClient) -> None:
    """A wrong password shows the login form again with a 401 and says so, keeping the username,
    and sets no session cookie."""
    response = await form_login(client, "dr.li", password="wrong-password")
    assert response.status == 401
    text = await response.text()
    assert "Wrong username or password." in text
    assert 'value="dr.li"' in text, "the username is kept"
    assert COOKIE_NAME not in response.cookies


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
async def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    """Each row, a next address off this site (absolute, scheme-relative, with a backslash):
    after logging in the browser is sent home instead."""
    response = await form_login(client, "dr.li", target)
    assert response.headers["Location"] == "/"


async def test_dashboard_lists_own_consultations_only(client: TestClient) -> None:
    """A participant's dashboard lists the consultation with its start on the hospital's clock,
    labelled with the zone's short name (CST) rather than its IANA name; a doctor who takes no part
    sees none of it and is told they have no consultations."""
    await form_login(client, "dr.wang")
    text = await (await client.get("/", headers=EN)).text()
    assert "Chest pain follow-up" in text and 'href="/consultations/1"' in text
    async with client.app[DATABASE].session() as session:
        planned = (await session.get(Consultation, 1)).planned_start
    shanghai = (planned + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert f">{shanghai} CST</time>" in text, "times are shown in the hospital's time zone, labelled"
    assert "Asia/Shanghai" not in text, "the zone is named by its short name, not its IANA name"
    client.session.cookie_jar.clear()
    await form_login(client, "dr.chen")
    text = await (await client.get("/", headers=EN)).text()
    assert "You have no consultations yet." in text and "Chest pain" not in text


async def test_dashboard_offers_clinicians_their_calendar_feed(client: TestClient) -> None:
    """A specialist's dashboard offers a calendar feed address, which answers 200; an auditor's
    dashboard has no calendar."""
    await form_login(client, "dr.wang")
    text = await (await client.get("/", headers=EN)).text()
    feed = re.search(r'value="(http://[^"]+/calendar/[^"]+\.ics)"', text)
    assert feed, "a subscribable address"
    assert (await client.get(feed[1].split(str(client.make_url("")).rstrip("/"), 1)[1])).status == 200
    client.session.cookie_jar.clear()
    await form_login(client, "auditor")
    assert 'id="calendar"' not in await (await client.get("/", headers=EN)).text()


async def test_room_page_carries_its_config_and_security_headers(client: TestClient) -> None:
    """The room page carries its room-token address in its config and loads its script from this site, under a CSP
    allowing only this site's scripts and with no-store caching; the call script is served."""
    await form_login(client, "dr.li")
    response = await client.get("/consultations/1", headers=EN)
    assert response.status == 200
    text = await response.text()
    assert '"roomTokenUrl": "/api/consultations/1/room-token"' in text
    assert 'src="/static/js/room-page.js"' in text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    script = await client.get("/static/js/call.js")
    assert script.status == 200 and "RTCPeerConnection" in await script.text()


async def test_non_participant_gets_a_403_page(client: TestClient) -> None:
    """A doctor who takes no part in a consultation gets a 403 page saying so; a consultation
    that does not exist is a 404."""
    await form_login(client, "dr.chen")
    response = await client.get("/consultations/1", headers=EN)
    assert response.status == 403
    assert "You are not a participant of this consultation." in await response.text()
    missing = await client.get("/consultations/777", headers=EN)
    assert missing.status == 404


async def test_titles_cannot_break_out_of_the_page(client: TestClient) -> None:
    """A title is user input: it must come out escaped in HTML and in the inline JSON."""
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, 1)
        consultation.title = '</script><script>alert(1)</script>'
        session.add(consultation)
        await session.commit()
    await form_login(client, "dr.li")
    text = await (await client.get("/consultations/1")).text()
    assert "<script>alert(1)" not in text
    assert "&lt;/script&gt;" in text


async def test_pages_speak_chinese_by_default_and_english_when_asked(client: TestClient) -> None:
    """The login page is in Chinese when the browser asks for no language (Content-Language
    zh-CN) and in English when it asks for English."""
    chinese = await client.get("/login")
    assert "<h1>登录</h1>" in await chinese.text()
    assert chinese.headers["Content-Language"] == "zh-CN"
    english = await client.get("/login", headers=EN)
    assert "<h1>Log in</h1>" in await english.text()


async def test_language_choice_is_kept_on_the_account(client: TestClient) -> None:
    """A language chosen on the page is saved on the account, and after logging in again it
    beats the browser's Chinese Accept-Language."""
    await form_login(client, "dr.wang")
    chosen = await client.post("/language", data={"locale": "en", "next": "/"}, allow_redirects=False)
    assert chosen.status == 303
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == "dr.wang"))).one()
    assert user.locale == "en"
    client.session.cookie_jar.clear()
    await form_login(client, "dr.wang")
    # The account's setting beats the browser's Chinese Accept-Language on any device.
    text = await (await client.get("/", headers={"Accept-Language": "zh-CN"})).text()
    assert "My consultations" in text


async def test_unknown_language_is_ignored(client: TestClient) -> None:
    """A language the site does not offer is ignored: choosing it redirects and sets no language cookie."""
    response = await client.post("/language", data={"locale": "xx", "next": "/login"}, allow_redirects=False)
    assert response.status == 303 and "telemed_lang" not in response.cookies


async def test_logout_from_the_page_ends_the_session(client: TestClient) -> None:
    """Logging out from the page leads to the login page and revokes the session's token on the server: the old cookie's
    token is refused (401, token-revoked), not only forgotten by the browser."""
    await form_login(client, "dr.li")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE_NAME].value
    response = await client.post("/logout", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    again = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status == 401, "the old cookie's token is revoked, not only deleted from the browser"
    assert re.search(r"token-revoked", await again.text())


def test_guest_links_never_reach_the_access_log() -> None:
    """The access log writes a patient's invitation path without its token, which is the key to
    the visit; other paths are written as they are."""
    from server.accesslog import loggable_path

    assert loggable_path("/visit/eyJhbGciOi.secret.sig") == "/visit/…"
    assert loggable_path("/consultations/1") == "/consultations/1"


async def test_only_a_clinician_beside_the_patient_is_offered_to_record_their_consent(client: TestClient) -> None:
    """The county doctor sits with the patient and may record their word; the partner hospital's specialist
    at the other end of the call is not offered "the patient beside me agrees to recording"."""
    offered = {}
    for username in ("dr.li", "dr.wang"):
        await form_login(client, username)
        page = await (await client.get("/consultations/1", headers=EN)).text()
        config = json.loads(page.split('id="room-config">', 1)[1].split("</script>", 1)[0])
        offered[username] = (config["patientConsentUrl"] is not None, 'id="patient-recording-consent"' in page)
    assert offered == {"dr.li": (True, True), "dr.wang": (False, False)}


@pytest.mark.parametrize(("username", "workspace", "words"), [
    ("coord.zhao", "/referrals", "打开转诊收件箱"),
    ("auditor", "/audit", "查看审计日志"),
    ("admin", "/admin", "进入系统管理"),
    ("supervisor", "/supervision", "打开监管统计"),
    ("dr.li", None, None),
])
async def test_the_home_page_leads_each_role_to_its_work(client: TestClient, username: str, workspace: str | None,
                                                         words: str | None) -> None:
    """A coordinator, auditor or administrator has no consultations of their own: their home page leads to
    where their work is (in their language); a clinician's home is their consultations, with no such card."""
    await form_login(client, username)
    page = await (await client.get("/", headers={"Accept-Language": "zh-CN"})).text()
    if workspace is None:
        assert 'id="workspace"' not in page
        return
    card = page[page.index('id="workspace"'):]
    card = card[:card.index("</section>")]
    assert f'href="{workspace}"' in card and words in card
    assert (await client.get(workspace)).status == 200, "the card leads to a page its reader may open"
