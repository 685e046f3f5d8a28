"""A full room in real Chromium, in English and in Chinese: a clinician made a host while waiting in the lobby of a
full room is told they will join as soon as someone leaves, and takes the first seat that frees, with nobody
admitting them. Rooms here hold two, so that a host and an admitted patient fill one.

Set TELEMED_TEST_SCREENSHOTS to a directory to keep a screenshot of each page there (for looking at them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from server.i18n import translations
from server.settings import Settings

from ..support.signaling_client import connect, guest_token, room_token
from ..support.signaling_client import expect as expect_message
from .conftest import checked, screenshot
from .test_licences import unverified
from .test_session_ended import _in_the_room

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Rooms of two seats (and two lobby places)."""
    return Settings.load(environ={"TELEMED_ROOM_MAX_PARTICIPANTS": "2"}, data_dir=tmp_path / "var", port=0)


async def _answer_pings(ws: ClientWebSocketResponse) -> None:
    """Keep a signaling client that takes no further part alive: answer the server's pings, drop the rest."""
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            return
        data = json.loads(message.data)
        if data["type"] == "ping":
            await ws.send_json({"type": "pong", "id": data.get("id")})


@contextlib.asynccontextmanager
async def _answering_pings(*sockets: ClientWebSocketResponse) -> AsyncIterator[None]:
    """While inside, ``sockets`` answer the server's pings (``_answer_pings``): a silent socket is dropped after
    45 s, which a slow machine's page checks can outlast."""
    keep_alive = asyncio.ensure_future(asyncio.gather(*(_answer_pings(ws) for ws in sockets)))
    try:
        yield
    finally:
        keep_alive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keep_alive


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_clinician_made_a_host_in_a_full_room_takes_the_first_seat_that_frees(
        client: TestClient, browser: Browser, locale: str) -> None:
    """Guards the way in for a clinician whose licence is verified while they wait in a full room: dr.li, waiting
    in the lobby (her licence not yet verified) while dr.wang and the patient he admitted fill the room of two, is
    told in her language, once an administrator verifies her licence, that she can now host and that she will join
    as soon as someone leaves (not that a doctor will let her in); when the patient leaves she takes the seat with
    nobody admitting her, and the lobby notice goes. The page passes axe-core and is looked at on a 390 px phone."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    verify = await unverified(client, "dr.li")
    wang = await connect(client, await room_token(client, "dr.wang"))
    await expect_message(wang, "joined")
    patient = await connect(client, await guest_token(client))
    waiting = await expect_message(patient, "lobby")
    await expect_message(wang, "lobby-update")
    await wang.send_json({"type": "admit", "participant_id": waiting["self"]["id"]})
    await expect_message(patient, "joined")
    try:
        async with _answering_pings(wang, patient):
            page = await _in_the_room(browser, base, locale, state="lobby")  # the room is full
            guest_notice, full_notice = page.locator("#lobby-notice-guest"), page.locator("#lobby-notice-full")
            await expect(guest_notice).to_be_visible()
            await expect(full_notice).to_be_hidden()

            await verify()
            await expect(page.locator("#call-message")).to_have_text(t(
                "An administrator verified your licence: you can now admit, record and remove participants in this "
                "call."))
            await expect(full_notice).to_have_text(t(
                "The room is full: you will join the call as soon as someone leaves. Keep this page open."))
            await expect(guest_notice).to_be_hidden()
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "lobby")
            await checked(page, f"room-full-host-waits-{locale}")
            await screenshot(page, f"room-full-host-waits-{locale}", phone=True)

            await patient.send_json({"type": "leave"})
            await expect(page.locator("#lobby-notice")).to_be_hidden()
            # seated with dr.wang, whose test client answers no offer: the call is connecting to him
            await expect(page.locator("#connection-state")).to_have_attribute("data-state", "connecting")
            await expect(page.locator("#waiting-note")).to_be_hidden()
    finally:
        await patient.close()
        await wang.close()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_a_host_is_told_the_seat_of_a_patient_who_reloaded_is_kept_for_them(
        client: TestClient, browser: Browser, locale: str) -> None:
    """Guards the seat a patient's reload leaves, as the host meets it: dr.li admits the patient from her lobby
    list (the room of two full); the patient's page reloads and they wait in the lobby again, beside dr.wang (his
    licence not verified, so he waits too). Her lobby list marks the patient's seat as kept; admitting dr.wang is
    refused, and dr.li is told in her language that a seat is kept for someone who joined again (not that nobody
    more can join); admitting the patient seats them.
    The page passes axe-core."""
    t = translations(locale).gettext
    base = str(client.make_url("")).rstrip("/")
    page = await _in_the_room(browser, base, locale)
    lobby = page.locator("#lobby-list li")
    token = await guest_token(client)
    patient = await connect(client, token)
    waiting = (await expect_message(patient, "lobby"))["self"]
    await lobby.filter(has_text=waiting["name"]).get_by_role("button", name=t("Admit")).click()
    await expect_message(patient, "joined")
    await unverified(client, "dr.wang")
    wang = await connect(client, await room_token(client, "dr.wang"))
    wang_name = (await expect_message(wang, "lobby"))["self"]["name"]
    reloaded = await connect(client, token)  # the patient's page reloads
    await expect_message(reloaded, "lobby")
    try:
        async with _answering_pings(wang, patient):
            await expect(lobby).to_have_count(2)
            await expect(lobby.filter(has_text=waiting["name"])).to_contain_text(t("was in the call: seat kept"))
            await expect(lobby.filter(has_text=wang_name)).not_to_contain_text(t("was in the call: seat kept"))
            await lobby.filter(has_text=wang_name).get_by_role("button", name=t("Admit")).click()
            await expect(page.locator("#call-message")).to_have_text(t(
                "A seat is kept for someone who joined again and waits in the lobby: admit them or turn them away "
                "first."))
            await checked(page, f"seat-kept-{locale}")
            await lobby.filter(has_text=waiting["name"]).get_by_role("button", name=t("Admit")).click()
            assert (await expect_message(reloaded, "joined"))["participants"][0]["name"] == "李明 Li Ming"
            await expect(lobby).to_have_count(1)
    finally:
        await reloaded.close()
        await wang.close()
