"""Every time on a page is on its reader's clock, labelled with the zone's short name: a clinician's hospital's
(here hospitals moved to London and New York, to prove nothing reads Beijing time by default), and for a
patient their browser's, with the hospital's labelled time as what shows before the script rewrites it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server import zones
from server.appkeys import DATABASE
from server.models import Consultation, Notification, User
from server.notices import Notice
from server.settings import Settings

from ..support.visits import consent, invite
from .test_pages import EN, form_login
from .test_recording_pages import _set_zone
from .test_room_page import _plan

ZH = {"Accept-Language": "zh-CN"}


def _on(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


async def _planned_start(client: TestClient) -> datetime:
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, 1)
        assert consultation is not None
        return consultation.planned_start


async def _booked_notice(client: TestClient, username: str, when: datetime) -> Notification:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        assert user.id is not None
        row = Notice.booked(7, when).to(user.id)
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


async def test_the_dashboard_and_notifications_read_the_hospitals_clock(client: TestClient) -> None:
    """A specialist in London reads their consultations' starts, their notices' times and the times inside
    the notices on London's clock, labelled GMT/BST, and no Beijing time or raw zone name anywhere."""
    await _set_zone(client, "dr.wang", "Europe/London")
    when = datetime(2030, 7, 1, 6, 0, tzinfo=UTC)  # summer: BST, 07:00 in London
    notice = await _booked_notice(client, "dr.wang", when)
    planned = await _planned_start(client)
    await form_login(client, "dr.wang")
    for path in ("/", "/notifications"):
        page = await (await client.get(path, headers=EN)).text()
        assert "2030-07-01 07:00 BST" in page, f"{path}: the time inside the notice, in London"
        assert f">{_on(notice.created_at, 'Europe/London')}</time>" in page, f"{path}: when it was sent"
        assert "CST" not in page and "Asia/Shanghai" not in page and "Europe/London" not in page, path
    dashboard = await (await client.get("/", headers=ZH)).text()
    assert f">{_on(planned, 'Europe/London')}</time>" in dashboard, "the consultation's start, in London"


async def test_the_room_opens_on_the_clinicians_clock(client: TestClient, settings: Settings) -> None:
    """The clinician's room page says when it opens on their hospital's clock, labelled, as the server
    wrote it (no rewriting into the browser's zone: clinicians plan on the hospital's wall clock)."""
    await _set_zone(client, "dr.wang", "America/New_York")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    await _plan(client, 1, start)
    opens = start - timedelta(minutes=settings.room_opens_minutes_before)
    await form_login(client, "dr.wang")
    page = await (await client.get("/consultations/1", headers=EN)).text()
    found = re.search(r'<time id="opens-at" datetime="([^"]+)"([^>]*)>([^<]*)</time>', page)
    assert found is not None and found[3] == _on(opens, "America/New_York") and found[3].endswith(("EST", "EDT"))
    assert "data-local" not in found[2]


async def test_the_chart_and_the_invitations_read_the_readers_clock(client: TestClient) -> None:
    """The county doctor's hospital moved to New York: the patient's chart and the consultation's
    invitation links (made, and valid until) are on New York's clock, labelled."""
    await _set_zone(client, "dr.li", "America/New_York")
    planned = await _planned_start(client)
    await invite(client)
    await form_login(client, "dr.li")
    chart = await (await client.get("/patients/1", headers=EN)).text()
    assert f">{_on(planned, 'America/New_York')}</time>" in chart
    links = await (await client.get("/consultations/1/invitations", headers=EN)).text()
    assert f">{_on(planned, 'America/New_York')}</time>" in links
    works_until = re.search(r"works until (\d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3})", links)
    assert works_until is not None and works_until[1].endswith(("EST", "EDT")), "the link's expiry, labelled"
    assert "CST" not in chart + links


async def test_the_patient_reads_the_opening_on_their_browsers_clock(client: TestClient,
                                                                      settings: Settings) -> None:
    """The patient's waiting room marks the opening for local-time.js (UTC in datetime, data-local), with the
    hospital's labelled time as the text a browser without script shows; the module is a file (CSP)."""
    await _set_zone(client, "dr.li", "America/New_York")
    guest = await invite(client)
    await consent(client, guest)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    await _plan(client, 1, start)
    opens = start - timedelta(minutes=settings.room_opens_minutes_before)
    for headers in (EN, ZH):
        page = await (await client.get(f"/visit/{guest}/room", headers=headers)).text()
        found = re.search(r'<time id="opens-at" datetime="([^"]+)"[^>]* data-local>([^<]*)</time>', page)
        assert found is not None, "the opening is marked for the browser's zone"
        assert datetime.fromisoformat(found[1]) == opens and found[1].endswith("+00:00")
        assert found[2] == _on(opens, "America/New_York")
        assert '<script type="module" src="/static/js/local-time.js"></script>' in page
    script = await client.get("/static/js/local-time.js")
    assert script.status == 200 and "timeZoneName" in await script.text()


async def test_a_reader_without_a_hospital_reads_the_default_zone(client: TestClient) -> None:
    """Without a hospital on record the deployment's zone (TELEMED_DEFAULT_TIMEZONE) is used, not UTC."""
    async with client.app[DATABASE].session() as session:
        assert await zones.hospital_zone(session, 9999, "Europe/Paris") == "Europe/Paris"
        assert await zones.hospital_zone(session, None) == "Asia/Shanghai"
