"""Around a booked appointment: the calendar feed, the reminder before it, and editing a specialist's
hours and exceptions."""

from __future__ import annotations

from datetime import datetime, timedelta

import icalendar
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import Appointment, Notification, Role, User, utcnow
from server.scheduling import reminders

from ...conftest import login
from .test_referrals import act, booked_referral, ids


async def _feed(client: TestClient, username: str) -> str:
    answer = await client.get("/api/calendar", headers=await login(client, username))
    assert answer.status == 200
    return (await answer.json())["url"]


async def test_the_calendar_feed_is_valid_icalendar_in_the_hospitals_zone(client: TestClient) -> None:
    """The specialist's feed is valid iCalendar with the booked appointment confirmed, in the hospital's time zone, at
    its time and length, linking to the consultation and saying nothing about the patient; the referring doctor's feed
    has it too, an outsider's does not."""
    referral, _ = await booked_referral(client)
    url = await _feed(client, "dr.wang")
    assert url.startswith("http://") and "/calendar/" in url
    response = await client.get(url.split(str(client.make_url("")).rstrip("/"), 1)[1])
    assert response.status == 200 and response.content_type == "text/calendar"
    text = await response.text()
    calendar = icalendar.Calendar.from_ical(text)
    zones = [z["TZID"] for z in calendar.walk("VTIMEZONE")]
    events = calendar.walk("VEVENT")
    assert zones == ["Asia/Shanghai"] and len(events) == 1
    event = events[0]
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    starts = datetime.fromisoformat(referral["appointment"]["starts_at"])
    assert event.decoded("DTSTART") == starts and event.decoded("DTEND") - event.decoded("DTSTART") == \
        timedelta(minutes=30)
    assert str(event["STATUS"]) == "CONFIRMED" and f"/consultations/{referral['consultation_id']}" in event["URL"]
    assert "Zhang Wei" not in text and "Chest pain" not in text, "nothing about the patient leaves in a feed"

    # the referring doctor has it too; an outsider's feed is empty
    doctor = icalendar.Calendar.from_ical(await (await client.get(_path(client, await _feed(client, "dr.li")))).text())
    assert len(doctor.walk("VEVENT")) == 1
    outsider = icalendar.Calendar.from_ical(
        await (await client.get(_path(client, await _feed(client, "dr.chen")))).text())
    assert outsider.walk("VEVENT") == []


async def _events(client: TestClient, username: str) -> list:
    return icalendar.Calendar.from_ical(
        await (await client.get(_path(client, await _feed(client, username)))).text()).walk("VEVENT")


async def test_a_coordinator_follows_every_appointment_of_their_hospitals_specialists(client: TestClient) -> None:
    """The coordinator who booked an appointment has it in their feed without taking part in it; a coordinator of the
    referring county hospital and an administrator have none of the provincial hospital's appointments."""
    referral, _ = await booked_referral(client)
    [event] = await _events(client, "coord.zhao")  # booked it, takes no part in it
    assert f"/consultations/{referral['consultation_id']}" in event["URL"]
    # A coordinator of the referring county hospital has none of the provincial hospital's appointments.
    async with client.app[DATABASE].session() as session:
        zhao = (await session.exec(select(User).where(User.username == "coord.zhao"))).one()
        qingshan = (await session.exec(select(User).where(User.username == "dr.li"))).one().hospital_id
        session.add(User(username="coord.sun", display_name="Sun", role=Role.COORDINATOR, hospital_id=qingshan,
                         password_hash=zhao.password_hash))
        await session.commit()
    assert await _events(client, "coord.sun") == []
    assert await _events(client, "admin") == [], "no appointments are an administrator's"


def _path(client: TestClient, url: str) -> str:
    return url.split(str(client.make_url("")).rstrip("/"), 1)[1]


async def test_a_rotated_feed_url_stops_working_and_a_forged_one_never_did(client: TestClient) -> None:
    """After the feed's URL is rotated the old one answers 401 and the new one works, so a leaked link can be shut off;
    a made-up token is 401."""
    old = _path(client, await _feed(client, "dr.wang"))
    assert (await client.get(old)).status == 200
    rotated = await client.post("/api/calendar/rotate", headers=await login(client, "dr.wang"))
    new = _path(client, (await rotated.json())["url"])
    assert (await client.get(old)).status == 401 and (await client.get(new)).status == 200
    assert (await client.get("/calendar/not-a-token.ics")).status == 401


async def test_a_cancelled_appointment_shows_as_cancelled(client: TestClient) -> None:
    """An appointment whose referral is cancelled stays in the specialist's feed marked CANCELLED rather than vanishing,
    so a subscribed calendar learns it is off."""
    referral, _ = await booked_referral(client)
    cancelled = await act(client, "dr.li", referral["id"], "cancel", reason="patient admitted locally")
    assert cancelled.status == 200
    feed = await client.get(_path(client, await _feed(client, "dr.wang")))
    calendar = icalendar.Calendar.from_ical(await feed.text())
    assert [str(e["STATUS"]) for e in calendar.walk("VEVENT")] == ["CANCELLED"]


async def test_both_doctors_are_reminded_once_before_the_start(client: TestClient) -> None:
    """No reminder two hours before an appointment; within the half-hour before it, the specialist and the referring
    doctor are each reminded once, with the time left and a link to the consultation, and a second run sends nothing."""
    referral, known = await booked_referral(client)
    database = client.app[DATABASE]
    async with database.session() as session:
        appointment = (await session.exec(select(Appointment))).one()
    early = appointment.starts_at - timedelta(hours=2)
    assert await reminders.send_due(database, early, timedelta(minutes=30)) == 0, "not yet"
    near = appointment.starts_at - timedelta(minutes=20)
    assert await reminders.send_due(database, near, timedelta(minutes=30)) == 1
    assert await reminders.send_due(database, near, timedelta(minutes=30)) == 0, "once only"
    async with database.session() as session:
        notices = (await session.exec(select(Notification).where(Notification.text.startswith("Reminder")))).all()
    assert sorted(n.user_id for n in notices) == sorted([known["dr.wang"], known["dr.li"]])
    assert "starts in 20 min" in notices[0].text
    assert notices[0].link == f"/consultations/{referral['consultation_id']}"


async def test_a_specialist_and_their_coordinators_edit_the_hours(client: TestClient) -> None:
    """A specialist's clinic hours are set by the specialist or their hospital's coordinator (another specialist and a
    county doctor get 403) and shown in the hospital's zone; they make the half-hour slots offered; a day off, added by
    the specialist and removed by the coordinator, takes that day's slots away."""
    known = await ids(client)
    wang = known["dr.wang"]
    hours = {"hours": [{"weekday": 0, "start": "09:00", "end": "11:00"}, {"weekday": 0, "start": "13:00",
                                                                          "end": "15:00"}]}
    for username, status in [("dr.zhou", 403), ("dr.li", 403), ("coord.zhao", 200), ("dr.wang", 200)]:
        response = await client.put(f"/api/specialists/{wang}/availability", json=hours,
                                    headers=await login(client, username))
        assert response.status == status, username
    shown = await (await client.get(f"/api/specialists/{wang}/availability",
                                    headers=await login(client, "dr.wang"))).json()
    assert shown["timezone"] == "Asia/Shanghai" and shown["hours"] == [
        {"weekday": 0, "start": "09:00", "end": "11:00"}, {"weekday": 0, "start": "13:00", "end": "15:00"}]

    monday = utcnow().date() + timedelta(days=(7 - utcnow().weekday()) % 7 or 7)
    slots = await client.get(f"/api/slots?specialty=cardiology&date={monday}",
                             headers=await login(client, "coord.zhao"))
    wang_slots = [s for s in (await slots.json())["specialists"] if s["specialist"]["id"] == wang][0]["slots"]
    assert len(wang_slots) == 8, "four half-hour slots in each of the two periods"

    off = await client.post(f"/api/specialists/{wang}/exceptions", json={"day": monday.isoformat(), "note": "course"},
                            headers=await login(client, "dr.wang"))
    assert off.status == 201
    slots = await client.get(f"/api/slots?specialty=cardiology&date={monday}",
                             headers=await login(client, "coord.zhao"))
    assert wang not in [s["specialist"]["id"] for s in (await slots.json())["specialists"] if s["slots"]]
    exception = (await off.json())["exceptions"][0]["id"]
    removed = await client.delete(f"/api/specialists/{wang}/exceptions/{exception}",
                                  headers=await login(client, "coord.zhao"))
    assert removed.status == 200 and (await removed.json())["exceptions"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"hours": [{"weekday": 7, "start": "09:00", "end": "10:00"}]}, "hours.0.weekday"),
    ({"hours": [{"weekday": 1, "start": "10:00", "end": "09:00"}]}, "hours.0"),
    ({"hours": [{"weekday": 1, "start": "9am", "end": "10:00"}]}, "hours.0.start"),
    ({"hours": [{"weekday": 1, "start": "09:00", "end": "11:00"}, {"weekday": 1, "start": "10:00", "end": "12:00"}]},
     "hours.1"),
])
async def test_bad_hours_are_named_and_the_old_ones_kept(client: TestClient, body: dict, field: str) -> None:
    """Each row, a weekday out of range, an end before its start, a time that is not HH:MM or periods that overlap: 422
    naming that entry, and the hours kept are unchanged."""
    known = await ids(client)
    headers = await login(client, "dr.wang")
    before = await (await client.get(f"/api/specialists/{known['dr.wang']}/availability", headers=headers)).json()
    response = await client.put(f"/api/specialists/{known['dr.wang']}/availability", json=body, headers=headers)
    assert response.status == 422 and field in (await response.json())["error"]["fields"]
    after = await (await client.get(f"/api/specialists/{known['dr.wang']}/availability", headers=headers)).json()
    assert after == before



@pytest.mark.parametrize(("body", "field"), [
    ({"first_day": "2030-05-07", "last_day": "2030-05-03"}, "last_day"),
    ({"first_day": "2030-01-01", "last_day": "2030-06-01"}, "last_day"),  # over 92 days
    ({"first_day": "May 3rd"}, "first_day"),
    ({"first_day": "2030-05-03", "note": "x" * 201}, "note"),
])
async def test_bad_time_off_is_named(client: TestClient, body: dict, field: str) -> None:
    """Each row, a last day before the first, a span over 92 days, a day that is not a date or a note over 200
    characters: 422 naming that field."""
    known = await ids(client)
    response = await client.post(f"/api/specialists/{known['dr.wang']}/time-off", json=body,
                                 headers=await login(client, "dr.wang"))
    assert response.status == 422 and field in (await response.json())["error"]["fields"]


async def test_time_off_and_the_specialists_one_keeps(client: TestClient) -> None:
    """The specialist's coordinator enters time off over three days (another specialist and a county doctor get 403) and
    it is kept as one exception per day; the coordinator lists the specialists of their hospital, which a county doctor
    may not (403)."""
    known = await ids(client)
    body = {"first_day": "2030-05-03", "last_day": "2030-05-05", "note": "course"}
    for username, status in [("dr.zhou", 403), ("dr.li", 403), ("coord.zhao", 201)]:
        response = await client.post(f"/api/specialists/{known['dr.wang']}/time-off", json=body,
                                     headers=await login(client, username))
        assert response.status == status, username
    shown = await response.json()
    assert [e["day"] for e in shown["exceptions"]] == ["2030-05-03", "2030-05-04", "2030-05-05"]
    kept = await (await client.get("/api/specialists", headers=await login(client, "coord.zhao"))).json()
    assert sorted(s["id"] for s in kept["specialists"]) == sorted([known["dr.wang"], known["dr.zhou"], known["dr.he"]])
    refused = await client.get("/api/specialists", headers=await login(client, "dr.li"))
    assert refused.status == 403


@pytest.mark.parametrize(("locale", "summary"), [("zh-CN", "远程会诊: 心血管内科"),
                                                 ("en", "Remote consultation: Cardiology")])
async def test_the_feed_speaks_its_owners_language(client: TestClient, locale: str, summary: str) -> None:
    """Each row: an appointment's title in the feed is in the language of the account that subscribed (a calendar
    program says none), from the catalog; a refused link says why in the language the request asked for."""
    await booked_referral(client)
    async with client.app[DATABASE].session() as session:
        wang = (await session.exec(select(User).where(User.username == "dr.wang"))).one()
        wang.locale = locale
        await session.commit()
    [event] = await _events(client, "dr.wang")
    assert str(event["SUMMARY"]).startswith(summary), event["SUMMARY"]
    refused = await client.get("/calendar/not-a-token.ics", headers={"Accept-Language": locale})
    assert refused.status == 401
    assert await refused.text() == {"zh-CN": "访问令牌格式有误。\n", "en": "The access token is malformed.\n"}[locale]
