"""Every page of every role, as that person reaches it: a crawler in real Chromium logs in as each demo role,
follows every link the pages show, and on each kind of page (one per route, not one per row) runs axe-core in
both languages. A link that leads to a refusal or a missing page is a control its reader may not use, and
fails the test as surely as an accessibility violation does. The patient's pages are walked the same way, at
the size of a phone."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page

from server.demo import DEMO_PASSWORD

from ..server.api.test_referrals import booked_referral
from ..support.visits import consent, invite
from .conftest import assert_accessible, checked, pass_identity_check

pytestmark = pytest.mark.e2e

ROLES = ["dr.li", "dr.wang", "coord.zhao", "admin", "auditor", "supervisor"]
LOCALES = ["en", "zh-CN"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# Not pages: files, feeds, exports and the way out. Their own tests check them.
NOT_PAGES = re.compile(r"^/(static|api|fhir|logout)\b|\.(ics|csv|json|pdf|png|jpe?g|webm|mp4|svg)$|/download$|"
                       r"/media$|/content$")
# Each kind of page once: /referrals/12 and /referrals/13 are the same page with other data.
IDS = re.compile(r"/(\d+|[0-9a-f]{8}-[0-9a-f-]{27}|[A-Za-z0-9_-]{20,})(?=/|$)")
MOST_PAGES = 60  # a crawl that finds more kinds of page than this is following something it should not


def kind_of(path: str) -> str:
    return IDS.sub("/{id}", path)


async def crawl(page: Page, base: str, start: str, shot_prefix: str = "") -> dict[str, tuple[int, str]]:
    """Visit each kind of page reachable from ``start`` by links; run axe on each; return kind -> (status,
    the page whose link led there)."""
    seen: dict[str, tuple[int, str]] = {}
    queue = [(start, "")]
    while queue:
        path, linked_from = queue.pop(0)
        kind = kind_of(path)
        if kind in seen:
            continue
        assert len(seen) < MOST_PAGES, f"more than {MOST_PAGES} kinds of page: {sorted(seen)}"
        response = await page.goto(base + path)
        assert response is not None
        seen[kind] = (response.status, linked_from)
        if response.status != 200:
            continue
        await page.wait_for_load_state("load")
        await checked(page, f"{shot_prefix}-{re.sub(r'[^A-Za-z0-9]+', '_', kind).strip('_') or 'home'}")
        hrefs = await page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        for href in hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/") or NOT_PAGES.search(parts.path):
                continue  # another site, an anchor in this page, or not a page
            target = parts.path + (f"?{parts.query}" if parts.query and "page=" not in parts.query else "")
            if kind_of(parts.path) not in seen:
                queue.append((target, path))
    return seen


async def logged_in(browser: Browser, base: str, username: str, locale: str) -> Page:
    context = await browser.new_context(locale=locale)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(DEMO_PASSWORD)
    await page.locator("form[action='/login'] button[type=submit]").click()
    await page.wait_for_url(lambda url: "/login" not in url)
    return page


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("username", ROLES)
async def test_every_page_a_role_can_reach_is_accessible_and_allowed(client: TestClient, browser: Browser,
                                                                     username: str, locale: str) -> None:
    """Each role's pages pass axe-core (no serious or critical violation) in each language, and no page
    links to something its reader is refused: every link a role is shown leads to a page it may open."""
    await booked_referral(client)  # so that referral, booking and notification pages have something to show
    base = str(client.make_url("")).rstrip("/")
    page = await logged_in(browser, base, username, locale)
    seen = await crawl(page, base, "/", f"{username}-{locale}")
    refused = {kind: found for kind, found in seen.items() if found[0] != 200}
    assert not refused, f"{username} is shown links to pages it cannot open (status, linked from): {refused}"
    assert len(seen) >= 4, f"the crawl found too little to be a test: {sorted(seen)}"
    await page.context.close()


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_patients_pages_are_accessible_on_a_phone(client: TestClient, browser: Browser,
                                                            locale: str) -> None:
    """The patient's way in (who they are, consent, device check, waiting room), at 390x844, passes axe-core
    in each language, before and after consenting."""
    base = str(client.make_url("")).rstrip("/")
    guest = await invite(client)
    page = await (await browser.new_context(locale=locale, **PHONE)).new_page()
    await page.goto(f"{base}/visit/{guest}")
    assert page.url.endswith("/identity"), "the browser has not answered the identity check yet"
    await assert_accessible(page)
    await pass_identity_check(page, base, guest)
    await assert_accessible(page)
    await consent(client, guest)
    for path in (f"/visit/{guest}/check", f"/visit/{guest}/room"):
        response = await page.goto(base + path)
        assert response is not None and response.status == 200, path
        await assert_accessible(page)
    await page.context.close()
