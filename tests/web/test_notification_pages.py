"""Notifications on the pages: an unread count in every page's top bar, a notification read once it is
opened, "mark all read", and nobody opening another's."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import User
from server.notices import Notice

from .test_pages import EN, form_login
from .test_patient_pages import ZH


async def _notify(client: TestClient, username: str, *referrals: int) -> list[int]:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        assert user.id is not None
        rows = [Notice.referral_state(r, "accepted").to(user.id) for r in referrals]
        session.add_all(rows)
        await session.commit()
        return [row.id for row in rows if row.id is not None]


def _count(page: str) -> int:
    found = re.search(r'id="unread-count" data-count="(\d+)"', page)
    return int(found[1]) if found else 0


async def test_the_count_drops_as_notifications_are_opened(client: TestClient) -> None:
    """A specialist's unread count shows in the top bar of every page (home, patients, hours, notifications), and their
    notices are linked from the list and the dashboard; opening one leads to its referral and drops the count by one,
    another user's notice is a 404 to them, and "mark all read" returns to the page named and leaves nothing unread."""
    mine = await _notify(client, "dr.wang", 7, 8, 9)
    theirs = await _notify(client, "dr.li", 7)
    await form_login(client, "dr.wang")
    for path in ("/", "/patients", "/specialists/2/hours", "/notifications"):
        assert _count(await (await client.get(path, headers=EN)).text()) == 3, path
    listed = await (await client.get("/notifications", headers=EN)).text()
    assert f'href="/notifications/{mine[0]}"' in listed and "Referral #7: Accepted" in listed
    dashboard = await (await client.get("/", headers=EN)).text()
    assert f'href="/notifications/{mine[0]}"' in dashboard, "the dashboard's notices are opened the same way"

    opened = await client.get(f"/notifications/{mine[0]}", headers=EN, allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/referrals/7"
    assert _count(await (await client.get("/notifications", headers=EN)).text()) == 2
    assert (await client.get(f"/notifications/{theirs[0]}", headers=EN, allow_redirects=False)).status == 404

    read = await client.post("/notifications/read", data={"next": "/patients"}, headers=EN, allow_redirects=False)
    assert read.status == 303 and read.headers["Location"] == "/patients"
    page = await (await client.get("/notifications", headers=EN)).text()
    assert _count(page) == 0 and 'class="unread"' not in page and "Mark all read" not in page


async def test_empty_and_in_chinese(client: TestClient) -> None:
    """With no notifications the page says so and the top bar shows no count; with one, the Chinese page has its
    heading, "mark all read" and the unread count in Chinese, and the notice itself too."""
    await form_login(client, "dr.zhou")
    page = await (await client.get("/notifications", headers=EN)).text()
    assert "You have no notifications." in page and 'id="unread-count"' not in page
    await _notify(client, "dr.zhou", 5)
    chinese = await (await client.get("/notifications", headers=ZH)).text()
    assert "<h1>通知</h1>" in chinese and "全部标为已读" in chinese and "条未读" in chinese
    assert re.search(r"转诊 #5", chinese), "the notice itself in the reader's language"


async def test_the_top_bar_shows_what_the_role_may_open(client: TestClient) -> None:
    """The top bar links each role only to what it may open: a county doctor their
    consultations, referrals, patients and notifications, a specialist and a coordinator clinic
    hours too, an auditor the audit trail, holds and notifications."""
    links = {}
    for username in ("dr.li", "dr.wang", "coord.zhao", "auditor"):
        client.session.cookie_jar.clear()
        await form_login(client, username)
        page = await (await client.get("/", headers=EN)).text()
        nav = page.split('<nav class="topbar-links"', 1)[1].split("</nav>", 1)[0]
        links[username] = re.findall(r'href="(/[^"]*)"', nav)
    assert links == {
        "dr.li": ["/consultations", "/referrals", "/patients", "/notifications"],
        "dr.wang": ["/consultations", "/referrals", "/patients", "/hours", "/notifications"],
        "coord.zhao": ["/consultations", "/referrals", "/patients", "/hours", "/notifications"],
        "auditor": ["/audit", "/holds", "/notifications"],
    }
