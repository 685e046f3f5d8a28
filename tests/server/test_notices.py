"""Notifications in the reader's words: their language, their hospital's time zone, whoever wrote them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server import notices
from server.appkeys import DATABASE
from server.i18n import SUPPORTED_LOCALES, translations
from server.models import Hospital, Notification, User
from server.notices import KINDS, Notice

from ..conftest import login
from .api.test_referrals import booked_referral

SLOT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 14:30 in Beijing, 12:30 in Ürümqi
SAMPLES = [Notice.referral_state(7, "accepted"), Notice.booked(7, SLOT), Notice.moved(7, SLOT, "away {at} a course"),
           Notice.reminder(7, 3, 15, SLOT), Notice.report("report.amended", 7, 2),
           Notice.report("report.acknowledged", 7, 1)]


def test_every_kind_has_a_sample() -> None:
    """The samples cover every kind of notification, so no kind escapes the every-language test."""
    assert {n.kind for n in SAMPLES} == set(KINDS)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("notice", SAMPLES, ids=lambda n: n.kind)
def test_every_kind_reads_in_every_language(locale: str, notice: Notice) -> None:
    """A translation that lost or renamed a placeholder would fail here, not on someone's dashboard."""
    text = notices.words(notice.kind, notice.params, translations(locale).gettext, ZoneInfo("Asia/Shanghai"))
    assert "#7" in text
    if "when" in notice.params:
        assert "2026-12-01 14:30 CST" in text


def test_chinese_words_and_local_time() -> None:
    """A Chinese reader gets Chinese words with the time in the zone given (12:30 +06 in Ürümqi for a slot at 06:30
    UTC), and a reason the user wrote keeps its braces instead of being taken for placeholders."""
    zh = translations("zh-CN").gettext
    assert notices.words("appointment.booked", Notice.booked(7, SLOT).params, zh,
                         ZoneInfo("Asia/Urumqi")) == "转诊 #7：已预约 2026-12-01 12:30 +06"
    assert notices.words("referral.state", {"referral": 7, "state": "accepted"}, zh, UTC) == "转诊 #7：已接受"
    # The reason is the user's text: braces in it are kept, not formatted.
    moved = Notice.moved(7, SLOT, "away {at} a course")
    assert "away {at} a course" in notices.words(moved.kind, moved.params, zh, UTC)


def test_the_stored_text_is_english_in_utc() -> None:
    """The text stored with a notification is English with the time in UTC; its kind and its link to the referral are
    stored with it."""
    row = Notice.booked(7, SLOT).to(user_id=1)
    assert row.text == "Referral #7: appointment booked for 2026-12-01 06:30 UTC"
    assert row.kind == "appointment.booked" and row.link == "/referrals/7"


def test_rows_without_a_kind_or_with_broken_facts_show_their_stored_text() -> None:
    """A notification stored without a kind, or whose stored facts no longer fill its words (a booking without its
    time), is shown with its stored text."""
    zh = translations("zh-CN").gettext
    old = Notification(id=1, user_id=1, text="Referral #2: accepted")
    broken = Notification(id=2, user_id=1, kind="appointment.booked", params='{"referral": 2}', text="stored")
    assert notices.readable(old, zh, ZoneInfo("Asia/Shanghai")) == "Referral #2: accepted"
    assert notices.readable(broken, zh, ZoneInfo("Asia/Shanghai")) == "stored"


async def _booked_notice(client: TestClient, headers: dict[str, str]) -> dict:
    listed = await client.get("/api/notifications", headers=headers)
    assert listed.status == 200
    return next(n for n in (await listed.json())["notifications"] if n["kind"] == "appointment.booked")


async def test_each_reader_gets_their_language_and_their_hospitals_time(client: TestClient) -> None:
    """A booking notice reads in Chinese by default and in English when asked, with the appointment in the reader's
    hospital's time (Beijing, CST) and its created_at at +08:00; once dr.li's hospital keeps Xinjiang time, the same
    notice reads two hours earlier, at +06."""
    booked, _ = await booked_referral(client)
    starts = datetime.fromisoformat(booked["appointment"]["starts_at"])
    li = await login(client, "dr.li")

    beijing = starts.astimezone(ZoneInfo("Asia/Shanghai"))
    chinese = await _booked_notice(client, li)  # no language asked for: the server's default, Chinese
    assert chinese["text"] == f"转诊 #{booked['id']}：已预约 {beijing:%Y-%m-%d %H:%M} CST"
    english = await _booked_notice(client, {**li, "Accept-Language": "en"})
    assert english["text"] == f"Referral #{booked['id']}: appointment booked for {beijing:%Y-%m-%d %H:%M} CST"
    assert english["created_at"].endswith("+08:00")

    # dr.li's hospital keeps Xinjiang time: the same appointment reads two hours earlier.
    database = client.app[DATABASE]
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        hospital = await session.get(Hospital, user.hospital_id)
        assert hospital is not None
        hospital.timezone = "Asia/Urumqi"
        session.add(hospital)
        await session.commit()
    urumqi = starts.astimezone(ZoneInfo("Asia/Urumqi"))
    assert (await _booked_notice(client, li))["text"].endswith(f"{urumqi:%Y-%m-%d %H:%M} +06")


async def test_the_dashboard_shows_notifications_in_the_readers_language(client: TestClient) -> None:
    """The dashboard shows dr.li's booking notice in Chinese, the server's default language, not in the stored English
    text."""
    booked, _ = await booked_referral(client)
    page = await client.get("/", headers=await login(client, "dr.li"))
    assert page.status == 200
    html = await page.text()
    assert f"转诊 #{booked['id']}：已预约" in html
    assert "appointment booked" not in html
