"""The consultation room page: when its room is not open yet or has closed it says so (with the opening time
on the reader's clock), and beside the call it shows the referral the consultation was booked for, with only
what the viewer may see, and the specialist's report form, which signs the report, completes the referral and
returns to the room."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.models import Consultation, ConsultationParticipant, Referral, ReferralState
from server.settings import Settings
from signaling.errors import ErrorCode
from web.room_texts import SIGNALING_ERRORS

from ..conftest import login
from ..server.api.test_attachments import PNG, _upload
from ..server.api.test_referrals import booked_referral
from ..support.visits import consent, invite
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}


async def _plan(client: TestClient, consultation_id: int, start: datetime) -> None:
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, consultation_id)
        assert consultation is not None
        consultation.planned_start, consultation.planned_end = start, None
        session.add(consultation)
        await session.commit()


def _config(page: str) -> dict[str, Any]:
    return json.loads(page.split('id="room-config">', 1)[1].split("</script>", 1)[0])


def _strings(page: str) -> dict[str, Any]:
    return json.loads(page.split('id="room-strings">', 1)[1].split("</script>", 1)[0])


def _shanghai(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


async def test_a_room_not_open_yet_says_when_it_opens_on_the_readers_clock(client: TestClient,
                                                                          settings: Settings) -> None:
    """Two hours before the start the room page says the room is not open yet and when it opens, on the doctor's
    hospital's clock (CST), in English and in Chinese; the closed notice and the call are hidden, and the page's config
    carries the window's state, its opening and the server's time now."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    await _plan(client, 1, start)
    opens = start - timedelta(minutes=settings.room_opens_minutes_before)
    await form_login(client, "dr.li")
    page = await (await client.get("/consultations/1", headers=EN)).text()
    assert "The room is not open yet" in page
    # The doctor's hospital keeps Beijing time: the opening on its clock, labelled with the zone's short name.
    assert re.search(rf'<time id="opens-at" datetime="{re.escape(opens.isoformat())}"[^>]*>'
                     rf"{_shanghai(opens)} CST</time>", page)
    assert 'id="room-closed" aria-labelledby="room-closed-title" hidden' in page
    assert re.search(r'id="stage"\s+hidden', page), "no call controls before the room opens"
    window = _config(page)["window"]
    assert window["state"] == "not-open" and datetime.fromisoformat(window["opensAt"]) == opens
    assert abs(datetime.fromisoformat(window["now"]) - datetime.now(UTC)) < timedelta(minutes=1)

    chinese = await (await client.get("/consultations/1", headers=ZH)).text()
    assert "会诊室尚未开放" in chinese and "开放时间" in chinese and f"{_shanghai(opens)} CST" in chinese


async def test_the_patient_waits_for_the_opening_too(client: TestClient, settings: Settings) -> None:
    """The invited patient, having consented, also sees that the room is not open yet and when
    it opens (CST), the config's window not open either."""
    guest = await invite(client)
    await consent(client, guest)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=40)
    await _plan(client, 1, start)
    page = await (await client.get(f"/visit/{guest}/room", headers=EN)).text()
    opens = start - timedelta(minutes=settings.room_opens_minutes_before)
    assert "The room is not open yet" in page and f"{_shanghai(opens)} CST" in page
    assert _config(page)["window"]["state"] == "not-open"


async def test_a_closed_room_says_so_and_offers_the_way_back(client: TestClient) -> None:
    """A consultation planned a day ago has a closed room: the page says nobody can join it any
    more and offers the way back to the reader's consultations, in English and in Chinese; the
    not-open notice is hidden and the config's window is closed."""
    await _plan(client, 1, datetime.now(UTC) - timedelta(days=1))
    await form_login(client, "dr.li")
    page = await (await client.get("/consultations/1", headers=EN)).text()
    assert "This consultation room has closed" in page and "; nobody can join it any more." in page
    assert re.search(r'<a class="button primary" id="room-back" href="/">Back to my consultations</a>', page)
    assert 'id="room-not-open" aria-labelledby="room-not-open-title" hidden' in page
    assert _config(page)["window"]["state"] == "closed"
    chinese = await (await client.get("/consultations/1", headers=ZH)).text()
    assert "会诊室已关闭" in chinese and "返回我的会诊" in chinese and " 关闭，已无法再进入。" in chinese


async def test_an_open_room_shows_the_call_and_no_notice(client: TestClient) -> None:
    """While the room is open the page shows the call with both notices hidden, and no referral
    panel for a consultation booked for none."""
    await form_login(client, "dr.li")
    page = await (await client.get("/consultations/1", headers=EN)).text()
    assert _config(page)["window"]["state"] == "open"
    assert 'id="room-not-open" aria-labelledby="room-not-open-title" hidden' in page
    assert 'id="room-closed" aria-labelledby="room-closed-title" hidden' in page
    assert re.search(r'<div class="stage" id="stage">', page)
    assert 'id="referral-panel"' not in page, "the demo consultation was not booked for a referral"


def test_every_signaling_error_has_words() -> None:
    """The browser shows these instead of the server's English: a new error code needs its text here."""
    assert set(SIGNALING_ERRORS) == set(ErrorCode)


async def test_the_page_carries_each_signaling_errors_words_in_the_readers_language(client: TestClient) -> None:
    """The room page hands its script a sentence for every signaling error code in the reader's language, e.g. Chinese
    for a full room and for a recording still missing consent."""
    await form_login(client, "dr.li")
    errors = _strings(await (await client.get("/consultations/1", headers=ZH)).text())["errors"]
    assert set(errors) == {kind.code for kind in ErrorCode}
    assert errors["room-full"] == "会诊室已满，暂时无法再进入。"
    assert errors["consent-missing"] == "录像需要所有人先同意。"


async def _booked(client: TestClient) -> tuple[int, int, dict[str, int]]:
    """A referral from dr.li to dr.wang, booked, with an ECG attached: (referral id, consultation id, ids)."""
    referral, known = await booked_referral(client)
    status, _ = await _upload(client, referral["id"], PNG, "心电图 ECG.png")
    assert status == 201
    return referral["id"], referral["consultation_id"], known


async def _room(client: TestClient, username: str, consultation: int) -> str:
    client.session.cookie_jar.clear()
    await form_login(client, username)
    response = await client.get(f"/consultations/{consultation}", headers=EN)
    assert response.status == 200, username
    return await response.text()


async def test_the_referral_is_beside_the_call_with_only_what_the_viewer_may_see(client: TestClient) -> None:
    """In a booked consultation's room the booked specialist and the referring doctor see the referral beside the
    call (reason, summary, question, a link to the whole request, attachments for the viewer), the report form for
    the specialist alone; once the patient withdraws consent to sharing, the specialist sees none of the records or
    files, while the referring doctor still sees their own."""
    referral, consultation, _ = await _booked(client)
    reason, summary = "Chest pain on exertion, ECG changes", "68-year-old man; ST depression in V4-V6."
    for username in ("dr.wang", "dr.li"):
        page = await _room(client, username, consultation)
        assert 'id="referral-panel"' in page and f"Referral #{referral}" in page
        assert reason in page and summary in page
        # the question put to the specialist, and the whole request a click away
        assert '<p class="prewrap" id="referral-question">Is there myocardial ischaemia?</p>' in page
        assert f'href="/referrals/{referral}/request"' in page
        # Opened in the viewer beside the call; without scripts, in a new tab (leaving the page ends the call).
        assert re.search(r'<a href="/api/attachments/\d+" data-id="\d+" data-kind="image" target="_blank" '
                         r'rel="noopener">心电图 ECG.png</a>', page)
        assert 'id="attachment-viewer"' in page and "/static/js/attachment-viewer.js" in page
        # Only the booked specialist signs the report, and from the room it goes to the room's own route.
        has_form = f'action="/consultations/{consultation}/report"' in page
        assert has_form == (username == "dr.wang"), username

    # The patient withdraws their consent to sharing their records (through the referring doctor): the
    # partner hospital's specialist sees the referral, but none of the patient's records, nor the files.
    withdrawn = await client.post(f"/referrals/{referral}/sharing-consent/withdraw", headers=EN,
                                  allow_redirects=False)
    assert withdrawn.status == 303
    page = await _room(client, "dr.wang", consultation)
    assert 'id="referral-withheld"' in page
    assert reason not in page and summary not in page and "心电图" not in page and "/api/attachments/" not in page
    assert "myocardial ischaemia" not in page
    assert 'id="attachment-viewer"' not in page
    page = await _room(client, "dr.li", consultation)
    assert reason in page and "心电图 ECG.png" in page, "the referring hospital keeps seeing its own records"


async def test_a_participant_who_may_not_see_the_referral_gets_no_panel(client: TestClient) -> None:
    """Another specialist added to a booked consultation, not the one booked for its referral,
    gets the room without the referral panel or its summary."""
    _, consultation, known = await _booked(client)
    async with client.app[DATABASE].session() as session:
        session.add(ConsultationParticipant(consultation_id=consultation, user_id=known["dr.zhou"]))
        await session.commit()
    page = await _room(client, "dr.zhou", consultation)
    # (The consultation's title, taken from the referral's reason, is the consultation's: shown as elsewhere.)
    assert 'id="referral-panel"' not in page and "ST depression" not in page


async def test_the_patient_sees_nothing_of_the_referral(client: TestClient) -> None:
    """The invited patient's room shows no referral panel, nothing of its summary and no attachment."""
    _, consultation, _ = await _booked(client)
    guest = await invite(client, consultation=consultation)
    await consent(client, guest)
    page = await (await client.get(f"/visit/{guest}/room", headers=EN)).text()
    assert 'id="referral-panel"' not in page and "ST depression" not in page and "心电图" not in page


async def test_the_specialist_signs_the_report_from_the_room(client: TestClient) -> None:
    """The room's report form signs the report through the same model and service as the API; a refusal comes
    back to the room with what was written kept; once signed, the room shows the report and no form."""
    referral, consultation, _ = await _booked(client)
    await _room(client, "dr.wang", consultation)
    empty = await client.post(f"/consultations/{consultation}/report", headers=EN, allow_redirects=False,
                              data={"findings": " ", "diagnosis_code": "I20.8"})
    assert empty.status == 422
    page = await empty.text()
    # the refusal beside its field, in the reader's words (never the field's code name "findings:")
    assert 'role="alert">Please correct the fields marked below.' in page
    assert 'id="error-findings">' in page and 'aria-describedby="error-findings"' in page and "findings:" not in page
    assert 'id="stage"' in page, "the room again, not the referral page"
    unknown = await client.post(f"/consultations/{consultation}/report", headers=EN, allow_redirects=False,
                                data={"findings": "Angina.", "diagnosis_code": "Q99.99", "recommendations": "kept"})
    text = await unknown.text()
    assert unknown.status == 422 and 'id="error-diagnosis_code">' in text and "diagnosis_code:" not in text, \
        "the API's rules hold, said beside the field"
    assert ">kept</textarea>" in text, "what was written is kept"

    sent = await client.post(f"/consultations/{consultation}/report", headers=EN, allow_redirects=False,
                             data={"findings": "Stable angina.", "diagnosis_code": "I20.8",
                                   "recommendations": "Exercise ECG in four weeks."})
    assert sent.status == 303 and sent.headers["Location"] == f"/consultations/{consultation}#referral-panel"
    async with client.app[DATABASE].session() as session:
        row = await session.get(Referral, referral)
        assert row is not None
        assert (row.state, row.opinion, row.recommendations) == (
            ReferralState.COMPLETED, "Stable angina.", "Exercise ECG in four weeks.")
    page = await (await client.get(f"/consultations/{consultation}", headers=EN)).text()
    assert 'id="referral-report"' in page and "Stable angina." in page and "I20.8" in page
    assert 'id="report-form"' not in page, "a completed referral takes no second report"


async def test_only_the_booked_specialist_may_sign_the_report(client: TestClient) -> None:
    """The referring doctor's report from the room is a 403 saying only the booked specialist signs it, a doctor of
    another hospital is refused too (403), and the referral stays scheduled."""
    referral, consultation, _ = await _booked(client)
    await _room(client, "dr.li", consultation)
    refused = await client.post(f"/consultations/{consultation}/report", headers=EN, allow_redirects=False,
                                data={"findings": "Mine.", "diagnosis_code": "I20.8"})
    assert refused.status == 403
    assert "Only the specialist booked for this referral signs its report." in await refused.text()
    outsider = await _room_refused(client, "dr.chen", consultation)
    assert outsider == 403
    response = await client.get(f"/api/referrals/{referral}", headers=await login(client, "dr.li"))
    assert (await response.json())["state"] == "scheduled"


async def _room_refused(client: TestClient, username: str, consultation: int) -> int:
    client.session.cookie_jar.clear()
    await form_login(client, username)
    response = await client.post(f"/consultations/{consultation}/report", headers=EN, allow_redirects=False,
                                 data={"findings": "x", "diagnosis_code": "I20.8"})
    return response.status
