"""The whole deployment, through its front door: Chromium pages on https:// via nginx, media through TURN over
TLS alone (relayed by coturn behind nginx's port), two nodes on one Redis and one PostgreSQL; a node killed
mid-call, and a recording played back through the node that is left."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ..e2e.conftest import CHROMIUM_FLAGS, chromium_path, screenshot
from ..e2e.test_consultation_call import assert_receiving, open_consultation, patient_arrives
from ..e2e.test_relay_recording import play_a_ready_recording
from .conftest import SERVER_NAME, TURN_SERVER_NAME

pytestmark = pytest.mark.deploy

# Each connection's selected path: the local candidate's type and how it reaches the TURN server.
SELECTED_PATHS = """
async () => {
  const call = window.telemedCall;
  const pcs = call.relay ? [call.relay.pc] : [...call.peers.values()].map((peer) => peer.pc);
  const paths = [];
  for (const pc of pcs) {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    const local = pair && stats.get(pair.localCandidateId);
    paths.push(local ? {type: local.candidateType, relayProtocol: local.relayProtocol ?? null, url: local.url ?? null,
                        policy: pc.getConfiguration().iceTransportPolicy} : null);
  }
  return paths;
}
"""

REMOTE_VIDEO_WIDTHS = "() => [...document.querySelectorAll('figure.remote video')].map((v) => v.videoWidth)"


@pytest.fixture
async def tls_browser(deployment: Any) -> AsyncIterator[Browser]:
    """Chromium that finds the deployment's names on 127.0.0.1 and accepts its self-signed certificate, for
    the site and for TURN over TLS alike."""
    rules = f"MAP {SERVER_NAME} 127.0.0.1, MAP {TURN_SERVER_NAME} 127.0.0.1"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True,
            args=[*CHROMIUM_FLAGS, f"--host-resolver-rules={rules}", "--ignore-certificate-errors"])
        yield browser
        await browser.close()


async def through_turn_over_tls(page: Page, connections: int) -> None:
    """Every connection of the page's call runs on a relay candidate that reached TURN over TLS, through
    nginx's HTTPS port, and was built with iceTransportPolicy "relay"."""
    deadline = time.monotonic() + 20
    paths: list[Any] = []
    while time.monotonic() < deadline:
        paths = await page.evaluate(SELECTED_PATHS)
        if len(paths) == connections and all(paths):
            break
        await asyncio.sleep(0.25)
    assert len(paths) == connections and all(paths), paths
    for path in paths:
        assert path["type"] == "relay" and path["relayProtocol"] == "tls", paths
        assert path["url"].startswith(f"turns:{TURN_SERVER_NAME}:"), paths
        assert path["policy"] == "relay", paths


async def videos_shown(page: Page, count: int) -> None:
    """``count`` remote videos on the page, each with a picture (a decoded frame sets videoWidth)."""
    await page.wait_for_function(f"() => {{ const w = ({REMOTE_VIDEO_WIDTHS})(); "
                                 f"return w.length === {count} && w.every((x) => x > 0); }}", timeout=20_000)


async def receiving_again(page: Page, peers: int, within: float = 30) -> None:
    """``assert_receiving`` once the call has settled after a node was lost: meanwhile the relay may move
    (a new connection, new slots) and a participant who resumed may take a new slot, so a pair of readings
    a moment apart can straddle the change; such a pair is read again, until ``within`` runs out."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await assert_receiving(page, peers=peers)
        except (AssertionError, KeyError, TypeError):  # a slot without its video or audio yet
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def signaling_sockets(http: aiohttp.ClientSession, port: int) -> int:
    """Signaling WebSockets open on one node, from its own /metrics (scraped directly, as an operator does)."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
        text = await answer.text()
    match = re.search(r"^telemed_signaling_connections(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
    assert match, text[:500]
    return int(float(match.group(1)))


async def test_a_call_through_nginx_and_turn_over_tls_survives_a_killed_node(deployment: Any,
                                                                            tls_browser: Browser) -> None:
    """The deployment as shipped, started from deploy/'s own files: two clinicians join through https:// and
    see each other with media carried by TURN over TLS alone; the patient joins and the room switches to the
    relay; a recording is made; the node holding one participant is killed with SIGKILL and they resume through
    nginx on the other node; the recording plays back through that node."""
    base = deployment.public_url
    assert base.startswith(f"https://{SERVER_NAME}:")
    doctor = await open_consultation(tls_browser, base, "dr.li")
    specialist = await open_consultation(tls_browser, base, "dr.wang")
    await asyncio.gather(assert_receiving(doctor), assert_receiving(specialist))
    for page in (doctor, specialist):
        assert await page.evaluate("window.telemedCall.mode") == "p2p"
        await through_turn_over_tls(page, connections=1)
        await videos_shown(page, 1)
    await screenshot(doctor, "deploy-two-clinicians-through-turn")

    await doctor.get_by_role("button", name="Invite the patient").click()
    await expect(doctor.locator("#invite-result")).to_be_visible()
    link = await doctor.locator("#invite-link").input_value()
    assert link.startswith(f"{base}/visit/"), link
    patient = await patient_arrives(tls_browser, link, record=True)
    await doctor.locator("#lobby-list li").get_by_role("button", name="Admit").click()
    pages = (doctor, specialist, patient)
    await asyncio.gather(*(assert_receiving(page, peers=2) for page in pages))
    for page in pages:
        assert await page.evaluate("window.telemedCall.mode") == "relay"
        await through_turn_over_tls(page, connections=1)
        await videos_shown(page, 2)
    await screenshot(doctor, "deploy-relay-three-through-turn")

    for page in (doctor, specialist):
        await page.locator("#recording-consent").check()
    await expect(doctor.locator("[data-badge=no-consent]")).to_have_count(0)
    await doctor.get_by_role("button", name="Start recording").click()
    for page in pages:
        await expect(page.locator("#recording-indicator")).to_be_visible()
    await asyncio.sleep(4)  # the recording's length: four seconds of the call
    await doctor.get_by_role("button", name="Stop recording").click()
    for page in pages:
        await expect(page.locator("#recording-indicator")).to_be_hidden()
    consultation = re.search(r"/consultations/(\d+)", doctor.url)
    assert consultation, doctor.url
    recordings_url = f"/api/consultations/{consultation.group(1)}/recordings"
    # The node that ran the relay seals the file a moment after the stop: wait for that, since a node killed
    # before it has finished leaves the recording unfinished until that node starts again.
    statuses: list[str] = []
    for _ in range(80):  # a look every quarter second, for 20 s
        statuses = await doctor.evaluate(
            "async (url) => (await (await fetch(url)).json()).recordings.map((r) => r.status)", recordings_url)
        if statuses == ["ready"]:
            break
        await asyncio.sleep(0.25)
    assert statuses == ["ready"], statuses

    ports = dict(zip(deployment.node_names, deployment.node_ports(deployment.values), strict=True))
    async with aiohttp.ClientSession() as http:
        sockets = {name: await signaling_sockets(http, port) for name, port in ports.items()}
        assert sum(sockets.values()) == 3, sockets
        victim = max(sockets, key=lambda name: sockets[name])
        [survivor] = [name for name in ports if name != victim]
        deployment.processes[victim].send_signal(signal.SIGKILL)
        await asyncio.to_thread(deployment.processes[victim].wait, 10)

        # Whoever was on the killed node comes back through nginx, which now has only the other node to offer.
        for page in pages:
            await expect(page.locator("#connection-state")).to_have_text("In call", timeout=30_000)
        await asyncio.gather(*(receiving_again(page, peers=2) for page in pages))
        deadline, now = time.monotonic() + 20, 0
        for _ in range(80):  # a scrape at most every quarter second, for 20 s
            now = await signaling_sockets(http, ports[survivor])
            if now == 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert now == 3, f"{survivor} holds {now} of the 3 sockets after {victim} was killed (before: {sockets})"
    for page in pages:
        await through_turn_over_tls(page, connections=1)
        await videos_shown(page, 2)
    await screenshot(patient, "deploy-patient-after-a-node-was-killed")

    played = await play_a_ready_recording(doctor, recordings_url)
    assert played["tracks"] == 6 and 3 <= played["duration"] <= 8, played
    # Decoded pictures, not a frame rate: three browsers and TURN over TLS on a busy machine send the camera
    # at a few frames a second.
    assert played["width"] > 0 and played["currentTime"] > 0.5 and played["decoded"] >= 3, played
