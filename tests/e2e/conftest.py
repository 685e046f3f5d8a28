"""Real Chromium for end-to-end tests: Debian's build driven by Playwright, with fake camera and microphone."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from server.i18n import translations
from web import STATIC_DIR

AXE = STATIC_DIR / "vendor" / "axe-core" / "axe.min.js"  # vendored by web/vendor.py
AXE_FAILING_IMPACTS = ("serious", "critical")
# A folder to keep a picture of each page the tests check there, for a person to look at (none by default).
SCREENSHOTS = os.environ.get("TELEMED_TEST_SCREENSHOTS")

CHROMIUM_FLAGS = [
    "--use-fake-device-for-media-stream",  # a synthetic camera (moving pattern) and microphone (beeps)
    "--use-fake-ui-for-media-stream",  # grant camera and microphone without a prompt
    "--auto-select-desktop-capture-source=Entire screen",  # getDisplayMedia picks the (fake) screen
    "--allow-loopback-in-peer-connection",  # ICE over 127.0.0.1, where the test server lives
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-background-networking",  # this machine has no outside network; don't try
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("TELEMED_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("No Chromium found: install Debian's `chromium` (the test command does) "
                    "or set TELEMED_TEST_CHROMIUM to its path.")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                                   args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


@functools.cache
def _axe_source() -> str:
    return AXE.read_text()


async def assert_accessible(page: Page) -> None:
    """Run axe-core on the page as it is now; fail listing every violation of serious or critical impact.

    axe is injected as a script file and run in the page, so it sees what a screen reader would: labels,
    names, contrast, landmarks and language, in whichever language the page is in."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated rather than added with page.add_script_tag(path=...): that inserts an inline <script>, which
        # the pages' Content-Security-Policy (script-src 'self') rightly blocks; evaluation comes through the
        # DevTools protocol, which the policy does not govern, and leaves the page's own policy in force.
        await page.evaluate(f"{_axe_source()}\n;0")
    results = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    failing = [v for v in results["violations"] if v.get("impact") in AXE_FAILING_IMPACTS]
    lines = [f"{v['impact']}: {v['id']}: {v['help']} ({v['helpUrl']})\n" + "\n".join(
        f"    {', '.join(map(str, node['target']))}: {node.get('failureSummary', '').splitlines()[-1:]}"
        for node in v["nodes"][:5]) for v in failing]
    assert not failing, f"{page.url} has accessibility violations:\n" + "\n".join(lines)


async def screenshot(page: Page, name: str, *, full_page: bool = True, phone: bool = False) -> None:
    """With TELEMED_TEST_SCREENSHOTS set, keep a picture of the page there as ``name``.png (with ``phone``, taken
    at the 390x844 viewport, as ``name``-390x844.png, and the viewport put back); nothing otherwise."""
    if not SCREENSHOTS:
        return
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (a folder, once, in a test)
    if not phone:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)
        return
    size = page.viewport_size
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-390x844.png"), full_page=full_page)
    if size is not None:
        await page.set_viewport_size(size)


async def checked(page: Page, name: str) -> None:
    """The page passes axe-core as it is now; with TELEMED_TEST_SCREENSHOTS set, a full-page picture of it is
    kept there as ``name``.png."""
    await assert_accessible(page)
    await screenshot(page, name)


async def pass_identity_check(page: Page, base: str, guest: str, *, name: str = "张伟 Zhang Wei",
                              last4: str = "") -> None:
    """The patient's browser answers its link's identity check (the demo patient's name by default; the
    demo record has no national ID) and lands on the consent page, the proof kept in its cookie."""
    await page.goto(f"{base}/visit/{guest}/identity")
    await page.locator("input[name=name]").fill(name)
    await page.locator("input[name=id_last4]").fill(last4)
    await page.locator("form[action$='/identity'] button[type=submit]").click()
    await page.wait_for_url(f"{base}/visit/{guest}")


async def submit_login(page: Page, locale: str, username: str, password: str) -> None:
    """Fill in the login form the page shows, as a person would, and send it (the button in ``locale``)."""
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(password)
    await page.get_by_role("button", name=translations(locale).gettext("Log in")).click()
