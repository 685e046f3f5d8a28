"""The browser follows the relay when the room moves it: real Chromium pages on two server nodes sharing a
real Redis, the node running the relay stops gracefully, and the pages left connect to the new relay."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, expect

from server.app import create_app
from server.devprocs import RedisServer
from server.settings import Settings

from ..conftest import _start
from .test_consultation_call import assert_receiving, open_consultation, patient_arrives

pytestmark = pytest.mark.e2e


async def test_pages_connect_to_the_new_relay_when_its_node_stops(settings: Settings, redis_server: RedisServer,
                                                                 browser: Browser) -> None:
    """call.js once ignored a second `mode: relay` and kept its connection to a dead relay. Here the patient's
    arrival on node b starts the relay there; node b stops (SIGTERM's path: the room moves the relay to node a
    with a new epoch); the doctor's and specialist's pages, on node a, connect to the new relay and decode
    each other again."""
    # (The default presence TTL: node b withdraws its own when it stops. A short one would let a slow machine
    # declare a live node lost, both nodes and the browsers sharing one loop here, before the stop is tried.)
    shared = dataclasses.replace(settings, redis_url=redis_server.url, drain_seconds=2.0)
    a = await _start(dataclasses.replace(shared, node_id="node-a"))
    b = TestClient(TestServer(create_app(dataclasses.replace(shared, node_id="node-b")), host="127.0.0.1", port=0))
    await b.start_server()
    b_closed = False
    try:
        base_a, base_b = (str(node.make_url("")).rstrip("/") for node in (a, b))
        doctor = await open_consultation(browser, base_a, "dr.li")
        specialist = await open_consultation(browser, base_a, "dr.wang")
        await doctor.get_by_role("button", name="Invite the patient").click()
        await expect(doctor.locator("#invite-result")).to_be_visible()
        link = (await doctor.locator("#invite-link").input_value()).replace(base_a, base_b)
        patient = await patient_arrives(browser, link)  # through node b
        await doctor.locator("#lobby-list li").get_by_role("button", name="Admit").click()
        await asyncio.gather(*(assert_receiving(page, peers=2) for page in (doctor, specialist, patient)))
        first_epoch = await doctor.evaluate("window.telemedCall.relayEpoch")
        assert first_epoch >= 1 and await doctor.evaluate("window.telemedCall.mode") == "relay"

        await b.close()  # node b stops: its relay moves to node a
        b_closed = True
        for page in (doctor, specialist):
            await expect(page.locator("#connection-state")).to_have_text("In call", timeout=15_000)
            await page.wait_for_function("epoch => window.telemedCall.relayEpoch > epoch", arg=first_epoch,
                                         timeout=15_000)
        assert await doctor.evaluate("window.telemedCall.relayEpoch") > first_epoch
        await asyncio.gather(assert_receiving(doctor, peers=1), assert_receiving(specialist, peers=1))
    finally:
        if not b_closed:
            await b.close()
        await a.close()
