"""The auditor's audit trail in real Chromium, in English and in Chinese: entries read as people, phrases and
labelled details on the auditor's clock (the raw entry one click away), the action and day filters find what
the table shows on a day, a day range the wrong way round is refused beside its field, and every state of
the page passes axe-core (no serious or critical violation).

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each state there (for looking at them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.appkeys import DATABASE
from server.audit import trail as audit
from server.i18n import translations
from web.audit_view import ACTIONS

from ..server.api.test_referrals import booked_referral
from ..support.visits import consent, invite
from .conftest import checked

pytestmark = pytest.mark.e2e


async def _trail(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A referral accepted and booked, a patient invited who consents, a failed login, and a record viewed
    at 2030-05-03 23:30 UTC (2030-05-04 07:30 on the auditor's Shanghai clock)."""
    await booked_referral(client)
    guest = await invite(client)
    await consent(client, guest, "video")
    await consent(client, guest, "recording")
    await client.post("/login", data={"username": "dr.nobody", "password": "wrong-password"})
    client.session.cookie_jar.clear()
    monkeypatch.setattr(audit, "utcnow", lambda: datetime(2030, 5, 3, 23, 30, tzinfo=UTC))
    await audit.record(client.app[DATABASE], actor="user:1", action="patient.viewed", subject="patient:1",
                       detail={"via": "chart"})
    monkeypatch.undo()



@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_an_auditor_reads_and_filters_the_trail(client: TestClient, browser: Browser, locale: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """In English and in Chinese: the auditor reads entries as people and phrases, the raw entry folded away; a
    record viewed at 23:30 UTC shows, and is found, on the next day of the auditor's Shanghai clock; a day range the
    wrong way round is refused beside its field; a name shows that person's entries only; each state passes axe-core."""
    t = translations(locale).gettext
    await _trail(client, monkeypatch)
    base = str(client.make_url("")).rstrip("/")
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda error: print(f"[auditor] page error: {error}"))
    await page.goto(f"{base}/login")
    await page.locator("input[name=username]").fill("auditor")
    await page.locator("input[name=password]").fill("telemed-demo")
    await page.get_by_role("button", name=t("Log in")).click()
    await page.get_by_role("link", name=t("Audit trail"), exact=True).click()
    await expect(page.get_by_role("heading", name=t("Audit trail"))).to_be_visible()

    table = page.locator("#audit-entries")
    header = t("When (%(zone)s)") % {"zone": "CST"}
    await expect(table.get_by_role("columnheader", name=header)).to_be_visible()
    accepted = table.locator("tr[data-action='referral.accept']")
    await expect(accepted.locator("td.action")).to_have_text(t(ACTIONS["referral.accept"]))
    await expect(accepted.locator("td.who")).to_contain_text("赵丽 Zhao Li")
    await expect(accepted.locator("td.who")).to_contain_text(t("Coordinator"))
    await expect(table).not_to_contain_text("user:4", use_inner_text=True)  # only in the folded raw entries
    failed = table.locator("tr[data-action='auth.login_failed']")
    await expect(failed.locator("td.who")).to_have_text(t("Someone not logged in"))
    raw = accepted.locator("details.raw")
    await expect(raw.locator("pre")).to_be_hidden()
    await raw.locator("summary").click()
    await expect(raw.locator("pre")).to_contain_text('"action": "referral.accept"')
    await checked(page, f"audit-trail-{locale}")

    # The record viewed at 23:30 UTC shows on 05-04 of the auditor's clock, and that day's filter finds it.
    form = page.locator("#audit-filter")
    await form.get_by_label(t("Action"), exact=True).select_option("patient.")
    await form.get_by_label(t("From"), exact=True).fill("2030-05-04")
    await form.get_by_label(translations(locale).pgettext("date range", "To"), exact=True).fill("2030-05-04")
    await form.get_by_role("button", name=t("Filter")).click()
    await expect(table.locator("tbody tr")).to_have_count(1)
    await expect(table.locator("td.when")).to_have_text("2030-05-04 07:30:00")
    await expect(table.locator("td.action")).to_have_text(t(ACTIONS["patient.viewed"]))
    await checked(page, f"audit-filtered-{locale}")

    # The day range the wrong way round: refused beside the To field, in the page's language.
    await form.get_by_label(t("From"), exact=True).fill("2030-05-05")
    await form.get_by_role("button", name=t("Filter")).click()
    until = form.locator("input[name=until]")
    await expect(until).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#error-until")).to_have_text(t("The last day comes before the first day."))
    await expect(page.get_by_role("alert")).to_be_visible()
    await checked(page, f"audit-refused-{locale}")

    # A name in the table shows that person's entries only.
    await page.goto(f"{base}/audit")
    await table.locator("tr[data-action='referral.accept'] td.who a").click()
    await expect(page.locator("input[name=actor]")).to_have_value("user:4")
    actions = await table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions and "referral.accept" in actions and "referral.created" not in actions
    await context.close()
