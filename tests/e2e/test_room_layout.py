"""The consultation room as people see it, in real Chromium, in English and in Chinese: a room not open yet
counts down on the reader's clock and starts by itself, a closed one says so and stops asking; the speaker
(or a shared screen, whole) is large and the self-view small in its corner, a click pins a tile and a second
unpins it; a patient on a phone gets the video first, thumb-sized controls and nothing to scroll sideways;
the specialist reads the referral and signs the report beside the call without leaving it.

Screenshots of each are saved to screenshots/ (not committed) for a person to look at."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.appkeys import DATABASE, SETTINGS
from server.demo import DEMO_PASSWORD
from server.i18n import translations
from server.models import Consultation
from server.settings import Settings

from ..conftest import login
from ..server.api.test_attachments import PNG, _upload
from ..server.api.test_referrals import booked_referral, ids
from ..support.visits import consent, invite
from .conftest import assert_accessible, pass_identity_check, screenshot

pytestmark = pytest.mark.e2e
LOCALES = ["en", "zh-CN"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# How the page draws a video: the picture's size inside the element's box, as object-fit places it.
SHOWN = """
(video) => {
  const box = video.getBoundingClientRect();
  const fit = getComputedStyle(video).objectFit;
  const [vw, vh] = [video.videoWidth, video.videoHeight];
  let [w, h] = [box.width, box.height];
  if (fit === "none") [w, h] = [vw, vh];
  else if (fit !== "fill") {
    const scale = (fit === "cover" ? Math.max : Math.min)(box.width / vw, box.height / vh);
    [w, h] = [vw * scale, vh * scale];
  }
  return {box: [box.width, box.height], video: [vw, vh], shown: [w, h], fit};
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A booked slot may be days away: let its room open now, as a clinic setting could. Every time below is
    # reckoned from this setting, so the countdown works as with any other.
    return replace(settings, room_opens_minutes_before=14 * 24 * 60)


def words(locale: str):  # type: ignore[no-untyped-def]
    """The page's own words in ``locale``, from the catalog the server renders it with."""
    return translations(locale).gettext


async def signed_in(browser: Browser, base: str, username: str, locale: str, **context: Any) -> Page:
    """A browser in ``locale`` with the user's session (logged in through the login form's endpoint)."""
    browser_context = await browser.new_context(locale=locale, **context)
    response = await browser_context.request.post(f"{base}/login", max_redirects=0, form={
        "username": username, "password": DEMO_PASSWORD, "next": "/"})
    assert response.status == 303, await response.text()
    page = await browser_context.new_page()
    page.on("pageerror", lambda error: print(f"[{username}] page error: {error}"))
    return page


async def plan(client: TestClient, consultation_id: int, start: datetime) -> None:
    async with client.app[DATABASE].session() as session:
        consultation = await session.get(Consultation, consultation_id)
        assert consultation is not None
        consultation.planned_start, consultation.planned_end = start, None
        session.add(consultation)
        await session.commit()


def token_requests(page: Page) -> list[str]:
    """Every room token the page asks for, from now on."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if request.url.endswith("room-token") else None)
    return asked


async def in_call(browser: Browser, base: str, locale: str, consultation: int = 1, **context: Any) -> tuple[Page, Page]:
    """The county doctor and the specialist in the room, peer to peer."""
    doctor = await signed_in(browser, base, "dr.li", locale, **context)
    await doctor.goto(f"{base}/consultations/{consultation}")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting", timeout=20_000)
    specialist = await signed_in(browser, base, "dr.wang", locale)
    await specialist.goto(f"{base}/consultations/{consultation}")
    for page in (doctor, specialist):
        await expect(page.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    return doctor, specialist


async def patient_on_a_phone(browser: Browser, base: str, client: TestClient, locale: str, *,
                             page: str = "room") -> tuple[Page, str]:
    """A patient invited and consenting, in a phone's browser (which has no screen capture), past the identity
    check and on their visit's ``page``: the page and the invitation link's token."""
    guest = await invite(client)
    await consent(client, guest)
    phone = await browser.new_context(locale=locale, **PHONE)
    await phone.add_init_script("delete MediaDevices.prototype.getDisplayMedia")
    patient = await phone.new_page()
    patient.on("pageerror", lambda error: print(f"[patient] page error: {error}"))
    await pass_identity_check(patient, base, guest)
    await patient.goto(f"{base}/visit/{guest}/{page}")
    return patient, guest


async def horizontal_overflow(page: Page) -> int:
    return await page.evaluate("document.scrollingElement.scrollWidth")


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_room_not_open_yet_counts_down_and_opens_by_itself(client: TestClient, browser: Browser,
                                                                   locale: str) -> None:
    """In English and in Chinese: a room opening in 35 s shows when, on the hospital's clock (CST), and counts down,
    with no video stage and no room token asked for; at the opening the page joins by itself, with one token."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    # (35 s: time for the sign-in, the page and its checks below on a slow machine before the room opens)
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=35)
    start = opens + timedelta(minutes=client.app[SETTINGS].room_opens_minutes_before)
    known = await ids(client)
    created = await client.post("/api/consultations", headers=await login(client, "dr.li"), json={
        "title": "Follow-up", "planned_start": start.isoformat(), "participant_ids": [known["dr.wang"]]})
    assert created.status == 201, await created.text()
    consultation = (await created.json())["id"]

    doctor = await signed_in(browser, base, "dr.li", locale)
    asked = token_requests(doctor)
    await doctor.goto(f"{base}/consultations/{consultation}")
    notice = doctor.locator("#room-not-open")
    await expect(notice.get_by_role("heading")).to_have_text(_("The room is not open yet"))
    # On the clock of the doctor's hospital (Beijing time), with the zone's short name.
    shanghai = opens.astimezone(ZoneInfo("Asia/Shanghai"))
    await expect(doctor.locator("#opens-at")).to_have_text(f"{shanghai:%Y-%m-%d %H:%M} CST")
    seconds = _("{s} s").replace("{s}", r"\d+")
    await expect(doctor.locator("#opens-in")).to_have_text(re.compile(rf"^{seconds}$"))
    before = await doctor.locator("#opens-in").text_content()
    await asyncio.sleep(1.5)
    assert await doctor.locator("#opens-in").text_content() != before, "it counts down"
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "not-open")
    await expect(doctor.locator("#stage")).to_be_hidden()
    assert asked == [], "no room token is asked for before the room opens"
    await screenshot(doctor, f"room-not-open-desktop-{locale}")
    await assert_accessible(doctor)

    # At the opening the page joins by itself.
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting", timeout=60_000)
    await expect(notice).to_be_hidden()
    await expect(doctor.locator("#stage")).to_be_visible()
    assert len(asked) == 1, asked


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_closed_room_says_so_and_stops_asking(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a closed room says so, links back to the consultations, and asks for no token and
    opens no socket; when the room closes while the page is open, the next reconnection is refused and the page says
    so, asks no more, and lets go of the camera."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    await plan(client, 1, datetime.now(UTC) - timedelta(days=1))
    doctor = await signed_in(browser, base, "dr.li", locale)
    asked = token_requests(doctor)
    sockets: list[str] = []
    doctor.on("websocket", lambda ws: sockets.append(ws.url))
    await doctor.goto(f"{base}/consultations/1")
    closed = doctor.locator("#room-closed")
    await expect(closed.get_by_role("heading")).to_have_text(_("This consultation room has closed"))
    await expect(closed.get_by_role("link", name=_("Back to my consultations"))).to_have_attribute("href", "/")
    await expect(doctor.locator("#stage")).to_be_hidden()
    await screenshot(doctor, f"room-closed-desktop-{locale}")
    await assert_accessible(doctor)
    await asyncio.sleep(4)
    assert asked == [] and sockets == [], "a closed room is not asked again and again"

    # A room that closes while the page is open: the next reconnection is refused as closed, and the page
    # says so once, lets go of the camera, and asks no more.
    await plan(client, 1, datetime.now(UTC) + timedelta(minutes=5))
    await doctor.goto(f"{base}/consultations/1")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "waiting", timeout=20_000)
    await plan(client, 1, datetime.now(UTC) - timedelta(days=1))
    await doctor.evaluate("window.telemedCall.signaling.dropConnection()")
    await expect(doctor.locator("#connection-state")).to_have_attribute("data-state", "room-closed")
    await expect(doctor.locator("#connection-state")).to_have_text(_("This consultation room has closed"))
    await expect(closed).to_be_visible()
    asked_by_then = len(asked)
    await asyncio.sleep(5)
    assert len(asked) == asked_by_then == 2, asked
    assert await doctor.evaluate(
        "window.telemedCall.localStream.getTracks().every((t) => t.readyState === 'ended')"), "camera let go"


@pytest.mark.parametrize("locale", LOCALES)
async def test_pin_enlarge_and_full_screen(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese, two in a call: the other person is large and oneself small at the bottom right; a
    click on a tile pins it large and a second unpins it, as Enter and Space do on its pin button; Enlarge widens the
    videos; Full screen shows the large tile through the Fullscreen API, and its button exits."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor, _specialist = await in_call(browser, base, locale)
    remote, local = doctor.locator("figure.remote"), doctor.locator("#local-tile")
    # The other person large, oneself small in the corner of their picture.
    await expect(remote).to_have_attribute("data-role", "main")
    await expect(local).to_have_attribute("data-role", "pip")
    big, small = await remote.bounding_box(), await local.bounding_box()
    assert big and small and small["width"] < big["width"] / 3
    assert big["x"] + big["width"] / 2 < small["x"] and big["y"] + big["height"] / 2 < small["y"], "bottom right"
    await screenshot(doctor, f"room-call-desktop-{locale}")
    await assert_accessible(doctor)

    # A click on a tile pins it large; a second click unpins it.
    await local.click()
    await expect(local).to_have_attribute("data-role", "main")
    await expect(remote).to_have_attribute("data-role", "strip")
    pin_self = local.get_by_role("button", name=_("Pin {name}").replace("{name}", _("You")))
    await expect(pin_self).to_have_attribute("aria-pressed", "true")
    await screenshot(doctor, f"room-pinned-self-desktop-{locale}")
    await local.click()
    await expect(remote).to_have_attribute("data-role", "main")
    await expect(pin_self).to_have_attribute("aria-pressed", "false")
    # And from the keyboard, by the tile's pin button.
    pin_other = remote.get_by_role("button", name=_("Pin {name}").replace("{name}", "王芳 Wang Fang"))
    await pin_other.focus()
    await doctor.keyboard.press("Enter")
    await expect(pin_other).to_have_attribute("aria-pressed", "true")
    await doctor.keyboard.press("Space")
    await expect(pin_other).to_have_attribute("aria-pressed", "false")

    # Enlarge: the videos across the window, the side panel below.
    width = (await doctor.locator("#videos").bounding_box() or {})["width"]
    enlarge = doctor.get_by_role("button", name=_("Enlarge"))
    await enlarge.click()
    await expect(enlarge).to_have_attribute("aria-pressed", "true")
    await expect(doctor.locator("#room")).to_have_attribute("data-enlarged", "")
    assert (await doctor.locator("#videos").bounding_box() or {})["width"] > width * 1.2
    await enlarge.click()

    # Full screen: the large tile through the Fullscreen API, and back.
    await doctor.get_by_role("button", name=_("Full screen")).click()
    await doctor.wait_for_function("document.fullscreenElement?.dataset.role === 'main'")
    await doctor.locator(".tile[data-role=main]").get_by_role("button", name=_("Exit full screen")).click()
    await doctor.wait_for_function("document.fullscreenElement === null")


async def test_the_large_tile_follows_whoever_speaks(client: TestClient, browser: Browser) -> None:
    """Three in the room (so through the relay): the one who speaks takes the large tile, a moment after they
    start. Muting a microphone sends silence, so whoever is left speaking is the speaker."""
    base = str(client.make_url("")).rstrip("/")
    doctor, specialist = await in_call(browser, base, "en")
    guest = await invite(client)
    await consent(client, guest)
    patient = await (await browser.new_context(locale="en")).new_page()
    await pass_identity_check(patient, base, guest)
    await patient.goto(f"{base}/visit/{guest}/room")
    await doctor.locator("#lobby-list li").get_by_role("button", name="Admit").click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(doctor.locator("figure.remote")).to_have_count(2, timeout=30_000)
    tile = {who: doctor.locator(f'figure[data-participant="{await page.evaluate("window.telemedCall.self.id")}"]')
            for who, page in (("specialist", specialist), ("patient", patient))}
    # (Both fake microphones beep, so either may be the speaker at first: each speaks alone in turn.)
    for speaking, silent in (("patient", specialist), ("specialist", patient)):
        await silent.locator("#toggle-mic").click()
        await expect(tile[speaking]).to_have_attribute("data-role", "main", timeout=15_000)
        await silent.locator("#toggle-mic").click()
    await screenshot(doctor, "room-three-desktop-en")


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_shared_screen_is_large_and_whole(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a shared screen is the viewer's large tile, shown whole (not cut off or stretched,
    filling its tile's width or height) with the self-view moved out of the way; the sharer's own view of it is not
    mirrored."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    doctor, specialist = await in_call(browser, base, locale)
    doctor_id = await doctor.evaluate("window.telemedCall.self.id")
    await doctor.get_by_role("button", name=_("Share screen")).click()
    tile = specialist.locator(f'figure[data-participant="{doctor_id}"]')
    await expect(tile).to_have_attribute("data-screen", "")
    await expect(tile).to_have_attribute("data-role", "main")
    video = tile.locator("video")
    await video.evaluate("(v) => new Promise((done) => { const check = () => v.videoWidth === 1280 ? done() "
                         ": setTimeout(check, 200); check(); })")
    drawn = await video.evaluate(SHOWN)
    (box_w, box_h), (w, h), (vw, vh) = drawn["box"], drawn["shown"], drawn["video"]
    assert w <= box_w + 1 and h <= box_h + 1, f"the screen is cut off: {drawn}"
    assert abs(w / h - vw / vh) < 0.01, f"the screen is stretched: {drawn}"
    assert w >= 0.95 * box_w or h >= 0.95 * box_h, f"the screen does not fill its tile: {drawn}"
    stage = await specialist.locator("#videos").bounding_box()
    assert stage and box_w > 0.8 * stage["width"], "the shared screen is the large tile"
    # Nothing lies over it: the self-view moves out of its corner into the strip.
    await expect(specialist.locator("#local-tile")).to_have_attribute("data-role", "strip")
    # The sharer's own view of the screen is not mirrored like a camera.
    assert await doctor.locator("#local-video").evaluate("(v) => getComputedStyle(v).transform") == "none"
    await screenshot(specialist, f"room-screen-desktop-{locale}")


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_patient_on_a_phone(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese: a patient on a 390x844 phone waits in the lobby and, once admitted, gets the video
    large, no recording, screen sharing or enlarge controls, controls at least 44 px square on screen between the
    video and the chat, and nothing to scroll sideways; the page passes axe-core."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    patient, _guest = await patient_on_a_phone(browser, base, client, locale)
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "lobby", timeout=20_000)
    assert await horizontal_overflow(patient) <= 390
    await screenshot(patient, f"room-lobby-phone-patient-{locale}")

    doctor = await signed_in(browser, base, "dr.li", locale)
    await doctor.goto(f"{base}/consultations/1")
    await doctor.locator("#lobby-list li").get_by_role("button", name=_("Admit")).click()
    await expect(patient.locator("#connection-state")).to_have_attribute("data-state", "connected", timeout=30_000)
    await expect(patient.locator("figure.remote")).to_have_attribute("data-role", "main")

    assert await horizontal_overflow(patient) <= 390, "nothing to scroll sideways"
    # The patient sees no control they may not use: no recording, no screen sharing on a phone.
    await expect(patient.locator("#toggle-recording")).to_be_hidden()
    await expect(patient.get_by_role("button", name=_("Start recording"))).to_have_count(0)
    await expect(patient.get_by_role("button", name=_("Share screen"))).to_have_count(0)
    await expect(patient.get_by_role("button", name=_("Enlarge"))).to_have_count(0)
    controls = patient.locator("#controls button:visible")
    assert await controls.count() >= 3
    for i in range(await controls.count()):
        box = await controls.nth(i).bounding_box()
        assert box and box["width"] >= 44 and box["height"] >= 44, (await controls.nth(i).text_content(), box)
    # The picture first, the controls under it and in view, the chat below.
    videos, bar = await patient.locator("#videos").bounding_box(), await controls.first.bounding_box()
    chat = await patient.locator("#chat-panel").bounding_box()
    assert videos and bar and chat and videos["y"] < bar["y"] < chat["y"]
    assert bar["y"] + bar["height"] <= 844, "the controls are on the screen"
    await screenshot(patient, f"room-call-phone-patient-{locale}")
    await screenshot(patient, f"room-call-phone-patient-full-{locale}", full_page=True)
    await assert_accessible(patient)
    await screenshot(doctor, f"room-call-desktop-doctor-with-patient-{locale}")


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_specialist_reads_the_referral_and_signs_the_report_without_leaving_the_call(
        client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese, in the call: the specialist reads the referral and its attachment's link in the
    side panel; a report of blanks is refused beside its field in the reader's words, and a signed one completes the
    referral, both without leaving the call; on a phone the panel fits the screen."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    referral, _known = await booked_referral(client)
    status, _attached = await _upload(client, referral["id"], PNG, "心电图 ECG.png")
    assert status == 201
    consultation = referral["consultation_id"]
    _doctor, specialist = await in_call(browser, base, locale, consultation)
    call = await specialist.evaluate_handle("window.telemedCall")

    await specialist.get_by_role("tab", name=_("Referral")).click()
    panel = specialist.locator("#referral-panel")
    await expect(panel).to_contain_text("Chest pain on exertion, ECG changes")
    await expect(panel).to_contain_text("ST depression in V4-V6")
    attachment = panel.get_by_role("link", name="心电图 ECG.png")
    await expect(attachment).to_have_attribute("target", "_blank")
    await screenshot(specialist, f"room-referral-desktop-specialist-{locale}")
    await assert_accessible(specialist)

    # A report of blanks (the browser's own check switched off) is refused beside its field, in the reader's
    # words, the panel replaced in place and the call going on.
    await specialist.evaluate("document.getElementById('report-form').noValidate = true")
    await panel.get_by_label(_("Findings")).fill("   ")
    await panel.get_by_label(_("Diagnosis (ICD-10 code)")).fill("I20.8")
    await panel.get_by_role("button", name=_("Sign the report and complete")).click()
    await expect(panel.locator("#error-findings")).to_be_visible()
    await expect(panel.get_by_role("alert")).to_have_text(_("Please correct the fields marked below."))
    await expect(panel.get_by_label(_("Findings"))).to_have_attribute("aria-invalid", "true")
    assert await specialist.evaluate("(call) => call === window.telemedCall", call)
    await screenshot(specialist, f"room-report-refused-{locale}")

    await panel.get_by_label(_("Findings")).fill("Stable angina. Start bisoprolol 2.5 mg daily.")
    await panel.get_by_label(_("Diagnosis (ICD-10 code)")).fill("I20.8")
    await panel.get_by_label(_("Recommendations")).fill("Exercise ECG in four weeks.")
    await panel.get_by_role("button", name=_("Sign the report and complete")).click()
    # Signing renders and signs a PDF in each language: seconds on a loaded machine.
    await expect(panel.locator("#referral-report")).to_contain_text("Stable angina.", timeout=20_000)
    await expect(panel.locator("form")).to_have_count(0)
    # The same page, the same call: still in it.
    assert await specialist.evaluate("(call) => call === window.telemedCall", call)
    await expect(specialist.locator("#connection-state")).to_have_attribute("data-state", "connected")
    answer = await client.get(f"/api/referrals/{referral['id']}", headers=await login(client, "dr.li"))
    assert (await answer.json())["state"] == "completed"

    phone = await signed_in(browser, base, "dr.wang", locale, **PHONE)
    await phone.goto(f"{base}/consultations/{consultation}#referral-panel")
    await expect(phone.locator("#referral-panel")).to_be_visible()
    assert await horizontal_overflow(phone) <= 390
    await screenshot(phone, f"room-referral-phone-specialist-{locale}", full_page=True)
