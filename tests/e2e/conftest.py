"""Real Chromium for end-to-end tests: Debian's build driven by Playwright, with fake camera and microphone."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

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
