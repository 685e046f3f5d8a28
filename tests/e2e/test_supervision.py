"""The supervision page in real Chromium, in English and in Chinese: a supervisor opens it from the top bar,
narrows it to a hospital and months of a crafted history, reads the charts' numbers and the per-hospital rows,
and downloads the CSV; every view passes axe-core, on a desktop and a phone-sized screen.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each view there (for looking at them)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.i18n import translations

from ..server.supervision.history import craft
from .conftest import checked
from .test_admin_console import PHONE, _context, _log_in

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_supervisor_reads_and_exports_the_statistics(client: TestClient, browser: Browser,
                                                             locale: str) -> None:
    """In English and in Chinese: a supervisor narrows the statistics to two months, then to one hospital, reads a
    chart's numbers and the per-hospital rows, and downloads that hospital's CSV, which names no patient; every view
    passes axe-core, on a desktop and on a phone."""
    t = translations(locale).gettext
    ids = await craft(client)
    base = str(client.make_url("")).rstrip("/")
    page = await (await _context(browser, locale)).new_page()
    await _log_in(page, base, locale, "supervisor", "telemed-demo")
    await page.locator("header.topbar").get_by_role("link", name=t("Supervision"), exact=True).click()
    await expect(page.get_by_role("heading", name=t("Supervision"), exact=True)).to_be_visible()
    await checked(page, f"supervision-default-{locale}")

    form = page.locator("#supervision-filter")
    await form.get_by_label(t("From month")).fill("2026-03")
    await form.get_by_label(t("To month")).fill("2026-04")
    await form.get_by_role("button", name=t("Show")).click()
    await expect(page.locator(f'#hospital-rows tr[data-month="2026-03"][data-hospital-id="{ids["provincial"]}"]')
                 ).to_contain_text("4.0 / 6.0")
    chart = page.locator("#chart-referrals_received")
    await expect(chart.locator("svg title").first).to_have_text(t("Referrals received per month"))
    await chart.get_by_text(t("The numbers of this chart")).click()
    await expect(chart.locator("tbody tr").first).to_contain_text("3")
    await checked(page, f"supervision-march-{locale}")

    await form.get_by_label(t("Hospital"), exact=True).select_option(str(ids["qingshan"]))
    await form.get_by_role("button", name=t("Show")).click()
    await expect(page.locator("#hospital-rows tbody tr")).to_have_count(2)
    href = await page.locator("#export-csv").get_attribute("href")
    assert href and f"hospital_id={ids['qingshan']}" in href
    answer = await page.request.get(base + href)  # the page's own session
    text = await answer.text()
    assert answer.status == 200 and text.startswith("month,hospital_id,hospital_name,") and "Qian" not in text

    await page.set_viewport_size(PHONE)
    await page.reload()
    await checked(page, f"supervision-phone-{locale}")
