"""The booking calendar on a referral's page: a week of the receiving hospital's specialists across its days,
headed in the page's language, free slots as buttons and booked ones not, on the hospital's clock with the
zone named; weeks a link apart; a slot booked through it by the API's own model and service, and then shown
at the time it was chosen (08:00 CST, not 00:00 UTC)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.models import ReferralEvent
from server.scheduling.slots import week_of

from ..conftest import login
from .test_pages import EN, form_login
from .test_referral_pages import _referral

ZH = {"Accept-Language": "zh-CN"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
SLOT = re.compile(r'<button type="submit" name="slot" value="(\d+)@([^"]+)" class="slot free"[^>]*>(\d\d:\d\d)')


async def _accepted(client: TestClient) -> int:
    referral = await _referral(client)
    response = await client.post(f"/api/referrals/{referral}/actions", json={"action": "accept"},
                                 headers=await login(client, "coord.zhao"))
    assert response.status == 200, await response.text()
    await form_login(client, "coord.zhao")
    return referral


def _next_monday() -> date:
    return week_of(datetime.now(SHANGHAI).date()) + timedelta(weeks=1)


def _calendar(page: str) -> str:
    return page.partition('id="booking"')[2].partition("</section>")[0]


async def test_the_calendar_shows_the_week_by_day_and_specialist_on_the_hospital_s_clock(client: TestClient) -> None:
    """An accepted referral's calendar heads the week's seven days by date and weekday, a row per specialist of the
    referral's specialty; free slots are buttons in the clinic hours on the hospital's clock (08:00 CST, midnight UTC),
    Monday to Saturday, with the zone named and Sunday without hours; the referral's urgency, reason and sender are
    shown, and the weeks before and after are a link away."""
    referral = await _accepted(client)
    monday = _next_monday()
    page = await client.get(f"/referrals/{referral}?week={monday}", headers=EN)
    assert page.status == 200
    calendar = _calendar(await page.text())
    heads = re.findall(r'<th scope="col" data-day="([\d-]+)"[^>]*><span class="weekday">(\w+)</span>', calendar)
    assert heads == [((monday + timedelta(days=n)).isoformat(), name) for n, name in enumerate(
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])]
    # cardiologists only, the hospital's clock: demo hours start at 08:00 local, 00:00 UTC
    assert re.findall(r'<th scope="row">([^<]+)<', calendar) == ["王芳 Wang Fang", "周杰 Zhou Jie"]
    slots = SLOT.findall(calendar)
    first_specialist, first_start, first_time = slots[0]
    assert first_time == "08:00" and datetime.fromisoformat(first_start).astimezone(SHANGHAI).hour == 8
    assert datetime.fromisoformat(first_start).hour == 0, "08:00 in Shanghai is midnight UTC"
    assert len(slots) == 2 * 6 * 16, "two specialists, Monday to Saturday, sixteen half hours a day"
    assert "Times in Asia/Shanghai (CST)." in calendar and "No clinic hours" in calendar  # Sunday
    assert "Emergency" in calendar and "Syncope at rest" in calendar
    assert "From 李明 Li Ming, 青山县人民医院 Qingshan County People&#39;s Hospital" in calendar
    assert f'?week={monday - timedelta(weeks=1)}#booking" rel="prev"' in calendar
    assert f'?week={monday + timedelta(weeks=1)}#booking" rel="next"' in calendar


async def test_the_calendar_speaks_chinese(client: TestClient) -> None:
    """To a Chinese reader the calendar names weekdays (星期一...) and dates (月日) in Chinese, links
    上一周 and 下一周, and still names the zone CST."""
    referral = await _accepted(client)
    calendar = _calendar(await (await client.get(f"/referrals/{referral}?week={_next_monday()}", headers=ZH)).text())
    assert re.findall(r'<span class="weekday">([^<]+)</span>', calendar)[:3] == ["星期一", "星期二", "星期三"]
    assert re.search(r'<span class="date">\d+月\d+日</span>', calendar)
    assert "上一周" in calendar and "下一周" in calendar and "CST" in calendar


async def test_weeks_are_a_link_apart_and_a_booked_slot_is_not_a_button(client: TestClient) -> None:
    """Another referral booked into a slot: it shows booked (not a button) on the next referral's calendar;
    the current week has no link before it; a malformed week shows the default one."""
    first = await _accepted(client)
    monday = _next_monday()
    calendar = _calendar(await (await client.get(f"/referrals/{first}?week={monday}", headers=EN)).text())
    specialist, starts_at, _ = SLOT.findall(calendar)[0]
    booked = await client.post(f"/referrals/{first}/book", data={"slot": f"{specialist}@{starts_at}"},
                               headers=EN, allow_redirects=False)
    assert booked.status == 303
    second = await _accepted(client)
    calendar = _calendar(await (await client.get(f"/referrals/{second}?week={monday}", headers=EN)).text())
    assert f'value="{specialist}@{starts_at}"' not in calendar
    assert f'<span class="slot booked" data-starts-at="{starts_at}">08:00' in calendar
    long_ago = _calendar(await (await client.get(f"/referrals/{second}?week=1999-01-01", headers=EN)).text())
    assert f'data-week="{week_of(datetime.now(SHANGHAI).date())}"' in long_ago, "brought forward to this week"
    assert 'rel="prev"' not in long_ago and 'rel="next"' in long_ago
    default = _calendar(await (await client.get(f"/referrals/{second}?week=someday", headers=EN)).text())
    assert SLOT.search(default), "the default week has a free slot"


async def test_a_slot_booked_from_the_calendar_shows_at_the_time_chosen(client: TestClient) -> None:
    """The slot picked as 08:00 is booked by the service the API uses, and the referral shows it as 08:00
    CST (it showed 00:00 UTC); the history, created and changed times are on the same clock."""
    referral = await _accepted(client)
    monday = _next_monday()
    calendar = _calendar(await (await client.get(f"/referrals/{referral}?week={monday}", headers=EN)).text())
    specialist, starts_at, shown = SLOT.findall(calendar)[0]
    response = await client.post(f"/referrals/{referral}/book", data={"slot": f"{specialist}@{starts_at}",
                                                                      "week": monday.isoformat()},
                                 headers=EN, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/referrals/{referral}#appointment"
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    appointment = page.partition('id="appointment"')[2].partition("</dd>")[0]
    assert f">{monday:%Y-%m-%d} {shown} CST</time>" in appointment and shown == "08:00"
    assert "王芳 Wang Fang" in appointment and 'data-state="scheduled"' in page
    assert '<details class="action" id="move">' in page, "the calendar waits, closed, behind Move the appointment"
    assert "UTC" not in page
    async with client.app[DATABASE].session() as session:
        event = await session.get(ReferralEvent, 1)
    history = page.partition('id="history"')[2]
    assert f"{event.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} CST" in history


async def test_the_calendar_and_the_api_refuse_the_same_booking_alike(client: TestClient) -> None:
    """The calendar's form is read into the API's Booking: a start without a zone, or no slot, is refused
    naming the field (or asking to choose) and books nothing; a slot taken first is a 409 on both."""
    referral = await _accepted(client)
    headers = await login(client, "coord.zhao")
    api = await client.post(f"/api/referrals/{referral}/appointment", headers=headers,
                            json={"specialist_id": 2, "starts_at": "2031-01-06T08:00"})
    assert api.status == 422 and "starts_at" in (await api.json())["error"]["fields"]
    page = await client.post(f"/referrals/{referral}/book", data={"slot": "2@2031-01-06T08:00"}, headers=EN)
    assert page.status == 422 and "Time: Enter a date and a time." in await page.text()
    nothing = await client.post(f"/referrals/{referral}/book", data={}, headers=EN)
    assert nothing.status == 422 and "Choose a slot." in await nothing.text()
    calendar = _calendar(await (await client.get(f"/referrals/{referral}?week={_next_monday()}", headers=EN)).text())
    specialist, starts_at, _ = SLOT.findall(calendar)[3]
    other = await _accepted(client)
    taken = await client.post(f"/api/referrals/{other}/appointment", headers=headers,
                              json={"specialist_id": int(specialist), "starts_at": starts_at})
    assert taken.status == 201
    late = await client.post(f"/referrals/{referral}/book", data={"slot": f"{specialist}@{starts_at}",
                                                                  "week": _next_monday().isoformat()}, headers=EN)
    text = await late.text()
    assert late.status == 409 and "booked by someone else" in text and 'data-state="accepted"' in text
    assert f'data-week="{_next_monday()}"' in text, "the week the coordinator was looking at"


async def test_only_the_receiving_coordinator_sees_the_calendar_and_cancel_asks_first(client: TestClient) -> None:
    """The referring doctor sees no calendar; their Cancel is a quiet button that opens a confirmation with
    the reason, not the page's loudest element."""
    referral = await _accepted(client)
    await form_login(client, "dr.li")
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'id="booking"' not in page
    cancel = page.partition('<details class="action" id="cancel">')[2].partition("</details>")[0]
    assert '<summary class="quiet-danger">Cancel referral</summary>' in cancel
    assert 'name="reason" required' in cancel and 'class="danger">Yes, cancel the referral</button>' in cancel
    assert page.count('class="danger"') == 1


async def _booked(client: TestClient) -> tuple[int, list[tuple[str, str, str]]]:
    """An accepted referral booked from the calendar on next Monday's first slot; and that week's slots as the
    calendar offered them before."""
    referral = await _accepted(client)
    monday = _next_monday()
    slots = SLOT.findall(_calendar(await (await client.get(f"/referrals/{referral}?week={monday}", headers=EN)).text()))
    specialist, starts_at, _ = slots[0]
    booked = await client.post(f"/referrals/{referral}/book", data={"slot": f"{specialist}@{starts_at}"},
                               headers=EN, allow_redirects=False)
    assert booked.status == 303
    return referral, slots


async def test_a_booked_appointment_moves_to_another_slot_from_the_calendar_with_its_reason(
        client: TestClient) -> None:
    """The receiving coordinator moves a booked appointment from the referral's page: the week's calendar behind
    *Move the appointment* (改约 in Chinese), a reason asked first, a free slot chosen moves it by the service the
    API uses (to Zhou Jie at 08:00 here), the page then shows the new time and specialist on the hospital's clock,
    and the first specialist is told why."""
    referral, slots = await _booked(client)
    chinese = await (await client.get(f"/referrals/{referral}", headers=ZH)).text()
    assert "<summary>改约</summary>" in chinese and "改约原因（双方都会收到通知）" in chinese
    zhou, starts_at, shown = next(slot for slot in slots if slot[0] != slots[0][0])
    moved = await client.post(f"/referrals/{referral}/move", headers=EN, allow_redirects=False, data={
        "slot": f"{zhou}@{starts_at}", "reason": "Dr Wang is at a congress", "week": _next_monday().isoformat()})
    assert moved.status == 303 and moved.headers["Location"] == f"/referrals/{referral}#appointment"
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    appointment = page.partition('id="appointment"')[2].partition("</dd>")[0]
    assert f">{_next_monday():%Y-%m-%d} {shown} CST</time>" in appointment and "周杰 Zhou Jie" in appointment
    notices = await (await client.get("/api/notifications", headers=await login(client, "dr.wang"))).json()
    assert any("Dr Wang is at a congress" in n["text"] for n in notices["notifications"])


async def test_a_move_without_a_reason_or_by_another_is_refused_and_moves_nothing(client: TestClient) -> None:
    """A move with no reason is a 422 naming the reason's field in the page's language (English and Chinese), the
    calendar open where it was, the appointment where it was; one with no slot asks to choose one; the referring
    doctor may not move it (403)."""
    referral, slots = await _booked(client)
    specialist, starts_at, _ = slots[1]
    for headers, words in ((EN, "Why it moves (both sides are told)"), (ZH, "改约原因（双方都会收到通知）")):
        refused = await client.post(f"/referrals/{referral}/move", headers=headers,
                                    data={"slot": f"{specialist}@{starts_at}", "reason": " "})
        text = await refused.text()
        assert refused.status == 422 and f'<p class="error" role="alert">{words}' in text
        assert '<details class="action" id="move" open>' in text
    nothing = await client.post(f"/referrals/{referral}/move", headers=EN, data={"reason": "clinic overrun"})
    nothing_text = await nothing.text()
    assert nothing.status == 422 and "Choose a slot." in nothing_text and ">clinic overrun</textarea>" in nothing_text
    appointment = (await (await client.get(f"/api/referrals/{referral}", headers=await login(client, "coord.zhao")))
                   .json())["appointment"]
    assert appointment["starts_at"] == datetime.fromisoformat(slots[0][1]).isoformat()
    await form_login(client, "dr.li")
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'id="move"' not in page
    doctor = await client.post(f"/referrals/{referral}/move", headers=EN,
                               data={"slot": f"{specialist}@{starts_at}", "reason": "sooner please"})
    assert doctor.status == 403
