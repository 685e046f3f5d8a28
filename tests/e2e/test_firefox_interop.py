"""A county doctor in Firefox and a specialist in Chromium: the same consultation works across browsers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from ..support.firefox import Firefox, firefox_path
from .test_consultation_call import assert_receiving, open_consultation
from .test_p2p_audio_only import frames_come_back, video_stalls

pytestmark = pytest.mark.e2e

FIREFOX_INBOUND = """
(async () => {
  const call = window.telemedCall;
  const peer = call && [...call.peers.values()][0];
  if (!peer) return null;
  const result = {state: peer.pc.connectionState, video: 0, width: 0, audio: 0};
  (await peer.pc.getStats()).forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    if (r.kind === "video") { result.video = r.framesDecoded || 0; result.width = r.frameWidth || 0; }
    if (r.kind === "audio") result.audio = r.packetsReceived || 0;
  });
  return result;
})()
"""


@pytest.fixture
async def firefox(tmp_path: Path) -> AsyncIterator[Firefox]:
    if firefox_path() is None:
        pytest.fail("No Firefox found: install Debian's `firefox-esr` (the test command does).")
    browser = Firefox(tmp_path / "firefox-profile")
    await browser.start()
    yield browser
    await browser.close()


async def test_firefox_and_chromium_see_and_hear_each_other(client: TestClient, browser: Browser,
                                                            firefox: Firefox) -> None:
    """Each decodes the other's video and hears its audio; audio only chosen in Chromium stops Firefox's
    video on the call (Firefox's setParameters), and video comes back when asked for."""
    base = str(client.make_url("")).rstrip("/")
    await firefox.goto(f"{base}/login")
    await firefox.evaluate("""(() => {
        document.querySelector('input[name=username]').value = 'dr.li';
        document.querySelector('input[name=password]').value = 'telemed-demo';
        document.querySelector('form.stack').requestSubmit();
        return true;
    })()""")
    await firefox.wait_for("location.pathname === '/' && !!document.querySelector('a.button.primary')")
    await firefox.evaluate("(() => { document.querySelector('a.button.primary').click(); return true; })()")
    await firefox.wait_for("document.querySelector('#connection-state')?.dataset.state === 'waiting'")

    specialist = await open_consultation(browser, base, "dr.wang")
    await assert_receiving(specialist)  # Chromium decodes Firefox's video and hears its audio

    first = await firefox.wait_for(f"{FIREFOX_INBOUND}.then((s) => s && s.video > 0 && s.audio > 0 && s)")
    # Firefox refreshes its stats coarsely, so wait for both counters to move rather than sleeping a guess.
    later = await firefox.wait_for(
        f"{FIREFOX_INBOUND}.then((s) => s && s.video > {first['video']} && s.audio > {first['audio']} && s)")
    assert later["width"] > 0 and later["state"] == "connected"
    assert await firefox.evaluate("document.querySelector('#connection-state').dataset.state") == "connected"
    await expect(specialist.locator("#connection-state")).to_have_attribute("data-state", "connected")

    # Audio only, chosen in Chromium: Firefox turns its video to the specialist off, and on again.
    await specialist.get_by_role("button", name="Audio only").click()
    stalled = await video_stalls(specialist)
    await specialist.get_by_role("button", name="Show video").click()
    await frames_come_back(specialist, stalled)
