"""The patient's pages, reached by invitation link with no account: who they are, consent, device check,
waiting room."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.models import Consultation, ConsultationStatus

from ..conftest import login
from ..support.visits import DEMO_PATIENT, invite

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


async def _answer(client: TestClient, guest: str, purpose: str, answer: str) -> None:
    page = await (await client.get(f"/visit/{guest}", headers=EN)).text()
    template_id = re.search(rf'name="purpose" value="{purpose}">\s*<input type="hidden" name="template_id" '
                            r'value="(\d+)"', page)
    assert template_id, f"no form for {purpose}"
    response = await client.post(f"/visit/{guest}/consent", headers=EN, allow_redirects=False,
                                 data={"purpose": purpose, "template_id": template_id[1], "answer": answer})
    assert response.status == 303 and response.headers["Location"].startswith(f"/visit/{guest}")


async def test_the_link_asks_for_each_consent_before_anything_else(client: TestClient) -> None:
    """An invitation link first asks for consent to the video visit and, apart, to recording, without
    naming the hospital; the check and room pages send back to it until the video consent is given,
    then open (the room with the guest's room-token address and the recording consent's full text),
    and withdrawing that consent closes the room at once."""
    guest = await invite(client)
    page = await client.get(f"/visit/{guest}", headers=EN)
    text = await page.text()
    assert page.status == 200 and "Consent to a video consultation" in text
    assert "Consent to recording the consultation" in text, "recording is asked separately"
    assert text.count('value="agree"') == 2 and 'id="continue"' not in text
    assert "Qingshan County" not in text, "the patient sees the title, not the hospital's record"
    for step in ("check", "room"):
        skipped = await client.get(f"/visit/{guest}/{step}", headers=EN, allow_redirects=False)
        assert skipped.status == 303 and skipped.headers["Location"] == f"/visit/{guest}", step

    await _answer(client, guest, "video", "agree")
    text = await (await client.get(f"/visit/{guest}", headers=EN)).text()
    # (and sharing the record, which the demo's doctor recorded the patient agreeing to: it stands too)
    assert 'id="continue"' in text and text.count('value="withdraw"') == 2
    check = await client.get(f"/visit/{guest}/check", headers=EN)
    assert check.status == 200 and 'id="start-check"' in await check.text()
    room = await (await client.get(f"/visit/{guest}/room", headers=EN)).text()
    assert '"roomTokenUrl": "/api/guest/room-token"' in room and "Invite the patient" not in room
    assert "Consent to recording the consultation" in room, "the recording checkbox shows its full text"

    await _answer(client, guest, "video", "withdraw")
    again = await client.get(f"/visit/{guest}/room", headers=EN, allow_redirects=False)
    assert again.status == 303, "withdrawing the video consent closes the way in at once"


async def test_the_consent_page_is_in_the_patients_language(client: TestClient) -> None:
    """The consent page heads both consents in Chinese for a Chinese browser."""
    guest = await invite(client)
    text = await (await client.get(f"/visit/{guest}", headers={"Accept-Language": "zh-CN"})).text()
    assert "远程视频会诊知情同意" in text and "会诊录制知情同意" in text


async def test_a_bad_answer_is_explained_and_records_nothing(client: TestClient) -> None:
    """A consent answer for a purpose that does not exist is explained as not recorded, and the
    page offers no way on to the visit."""
    guest = await invite(client)
    response = await client.post(f"/visit/{guest}/consent", headers=EN, data={"purpose": "all", "answer": "agree"})
    text = await response.text()
    assert "Your answer could not be recorded" in text and 'id="continue"' not in text


@pytest.mark.parametrize("link", ["/visit/not-a-token", "/visit/eyJhbGciOiJIUzI1NiJ9.e30.x",
                                  "/visit/not-a-token/check", "/visit/not-a-token/room"])
async def test_a_bad_link_explains_itself_instead_of_asking_for_a_login(client: TestClient, link: str) -> None:
    """Each row, a malformed or forged token on one of the visit's pages: a 401 HTML page in the browser's
    language asking for a new link from the doctor, not a login."""
    page = await client.get(link, headers=EN, allow_redirects=False)
    assert page.status == 401 and page.content_type == "text/html" and page.headers["Content-Language"] == "en"
    assert "Please ask the doctor for a new one." in await page.text()


async def test_a_revoked_link_says_so(client: TestClient) -> None:
    """A link the doctor has withdrawn (the withdrawal answered 200) answers 401, saying it was withdrawn."""
    guest = await invite(client)
    listed = await client.get("/api/consultations/1/invitations", headers=await login(client, "dr.li"))
    number = (await listed.json())["invitations"][0]["id"]
    revoked = await client.delete(f"/api/invitations/{number}", headers=await login(client, "dr.li"))
    assert revoked.status == 200, await revoked.text()
    page = await client.get(f"/visit/{guest}", headers=EN)
    assert page.status == 401 and "This invitation was withdrawn." in await page.text()


async def test_a_link_stops_working_when_the_consultation_ends(client: TestClient) -> None:
    """Once the consultation is completed the patient's link answers 401 saying it no longer
    works, and no room token is given for it."""
    guest = await invite(client)
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, 1)
        consultation.status = ConsultationStatus.COMPLETED
        session.add(consultation)
        await session.commit()
    page = await client.get(f"/visit/{guest}", headers=EN)
    assert page.status == 401 and "the link no longer works" in await page.text()
    token = await client.post("/api/guest/room-token", json={"guest": guest})
    assert token.status == 401


async def test_the_link_asks_who_one_is_before_anything_of_the_visit(client: TestClient) -> None:
    """Every step sends a browser that has not answered to the identity page, which shows nothing of the
    patient's record; a right answer (the name as typed on a Chinese keyboard) leads to consent."""
    guest = await invite(client, confirmed=False)
    for step in ("", "/check", "/room"):
        skipped = await client.get(f"/visit/{guest}{step}", headers=EN, allow_redirects=False)
        assert (skipped.status, skipped.headers["Location"]) == (303, f"/visit/{guest}/identity"), step
    consent = await client.post(f"/visit/{guest}/consent", headers=EN, allow_redirects=False,
                                data={"purpose": "video", "template_id": "1", "answer": "agree"})
    assert consent.status == 303 and consent.headers["Location"] == f"/visit/{guest}/identity"
    page = await (await client.get(f"/visit/{guest}/identity", headers=EN)).text()
    assert "Confirm who you are" in page and DEMO_PATIENT not in page and "Zhang" not in page
    right = await client.post(f"/visit/{guest}/identity", headers=EN, allow_redirects=False,
                              data={"name": "张伟\u3000ＺＨＡＮＧ　wei", "id_last4": ""})
    assert (right.status, right.headers["Location"]) == (303, f"/visit/{guest}")
    assert "HttpOnly" in right.headers["Set-Cookie"]
    assert (await client.get(f"/visit/{guest}", headers=EN)).status == 200
    again = await client.get(f"/visit/{guest}/identity", headers=EN, allow_redirects=False)
    assert again.status == 303, "a browser that has answered goes straight on"


@pytest.mark.parametrize(("headers", "wrong", "left", "locked"), [
    (EN, "do not match the patient", "You can try 4 more times", "Please contact your clinic"),
    (ZH, "所填信息与此链接的受邀患者不符", "您还可以再试 4 次", "请联系您的就诊医院"),
])
async def test_wrong_answers_say_how_many_remain_and_then_that_the_link_is_locked(
        client: TestClient, headers: dict, wrong: str, left: str, locked: str) -> None:
    """A wrong answer says so without saying which part, and how many tries remain, in the patient's
    language; the fifth locks the link, and from then on its page says to contact the clinic."""
    guest = await invite(client, confirmed=False)
    answer = await client.post(f"/visit/{guest}/identity", headers=headers, data={"name": "李四", "id_last4": "5678"})
    page = await answer.text()
    assert answer.status == 401 and wrong in page and left in page
    assert "5678" not in page, "the last four typed are not shown back"
    for _ in range(4):
        answer = await client.post(f"/visit/{guest}/identity", headers=headers, data={"name": "李四"})
    assert answer.status == 401 and locked in await answer.text()
    for step in ("/identity", ""):
        page = await client.get(f"/visit/{guest}{step}", headers=headers)
        assert page.status == 401 and locked in await page.text()


async def test_the_clinician_sees_a_locked_link_and_can_send_a_new_one(client: TestClient) -> None:
    """The room page and the invitation page show a link the identity check locked, apart from the working
    ones, and creating a new link still works."""
    guest = await invite(client, confirmed=False)
    for _ in range(5):
        await client.post(f"/visit/{guest}/identity", headers=EN, data={"name": "李四"})
    headers = {**EN, **await login(client, "dr.li")}
    room = await (await client.get("/consultations/1", headers=headers)).text()
    assert 'id="locked-invitation"' in room
    page = await (await client.get("/consultations/1/invitations", headers=headers)).text()
    assert 'data-locked="true"' in page and "after 5 wrong answers" in page
    assert guest not in page, "a locked link is not offered to send again"
    created = await client.post("/consultations/1/invitations", headers=headers, allow_redirects=False)
    assert created.status == 303
