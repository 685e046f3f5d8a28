"""The attachment viewer in real Chromium, in English and in Chinese: on the referral page the partner
hospital's coordinator opens an image, zooms it with the buttons, the wheel and the keys, rotates and fits it;
opens a three-frame DICOM image the server draws, steps through its frames and reads its facts (never the
patient's name from the file); opens a PDF in the browser's own viewer; and the specialist in the call opens
an image beside the video without leaving the call. Each state is checked by axe."""

from __future__ import annotations

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from server.referrals.dicom import encode_png

from ..server.api.test_attachments import _upload
from ..server.api.test_referrals import booked_referral
from ..support.dicom import JPEG_DICOM_SYNTAX, PATIENT_ID, PATIENT_NAME, dicom_file, gradient
from .conftest import assert_accessible, screenshot
from .test_room_layout import LOCALES, PHONE, in_call, settings, signed_in, words  # noqa: F401 (settings: fixture)

pytestmark = pytest.mark.e2e


# A one-page PDF the browser's viewer draws (its text is the check that the frame shows the file).
PDF = b"""%PDF-1.1
1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj
4 0 obj<</Length 47>>stream
BT /F1 24 Tf 20 100 Td (ECG report: sinus) Tj ET
endstream endobj
5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj
trailer<</Root 1 0 R>>
"""


def photo() -> bytes:
    """A real 300×200 RGB picture (a colour ramp), so the browser decodes it and has a size to fit."""
    x = np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None]
    y = np.linspace(0, 255, 200, dtype=np.uint8)[:, None, None]
    return encode_png(np.concatenate([np.broadcast_to(x, (200, 300, 1)), np.broadcast_to(y, (200, 300, 1)),
                                      np.full((200, 300, 1), 128, dtype=np.uint8)], axis=2))


async def scale(page: Page) -> float:
    return float(await page.locator("#attachment-viewer [data-part='stage']").get_attribute("data-scale") or 0)


async def attached_referral(client: TestClient) -> dict:
    referral, _known = await booked_referral(client)
    frames = np.stack([gradient() // 4 + 1000 * k for k in range(3)])
    for data, name in ((photo(), "心电图 ECG.png"), (dicom_file(frames, window=(1500, 3000)), "胸部 CT.dcm"),
                       (PDF, "报告 report.pdf"), (dicom_file(syntax=JPEG_DICOM_SYNTAX), "压缩 JPEG.dcm")):
        status, row = await _upload(client, referral["id"], data, name)
        assert status == 201, row
    return referral


@pytest.mark.parametrize("locale", LOCALES)
async def test_images_dicom_and_pdf_on_the_referral_page(client: TestClient, browser: Browser, locale: str) -> None:
    """In English and in Chinese, on the referral page: an image zooms by buttons, wheel and keys, rotates and fits
    again; a three-frame DICOM image steps through its frames and shows its facts, never the patient's name or ID
    from the file; a PDF opens in the browser's own viewer; a DICOM compression the server cannot draw is said
    plainly, with a download; each passes axe-core, and closing the viewer gives focus back to the link."""
    _ = words(locale)
    base = str(client.make_url("")).rstrip("/")
    referral = await attached_referral(client)
    page = await signed_in(browser, base, "coord.zhao", locale)
    await page.goto(f"{base}/referrals/{referral['id']}")
    viewer = page.locator("#attachment-viewer")
    stage = viewer.locator("[data-part='stage']")

    await page.get_by_role("link", name="心电图 ECG.png").click()
    await expect(viewer).to_have_attribute("data-loaded", "true")
    await expect(viewer.get_by_role("heading", name="心电图 ECG.png")).to_be_focused()
    assert await viewer.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [300, 200]
    fit = await scale(page)
    assert fit > 0
    await viewer.get_by_role("button", name=_("Zoom in")).click()
    assert await scale(page) == pytest.approx(fit * 1.25, rel=1e-3)
    await stage.hover()
    await page.mouse.wheel(0, -300)
    assert await scale(page) > fit * 1.25 * 1.2, "the wheel zooms the picture"
    await stage.focus()
    await page.keyboard.press("0")
    assert await scale(page) == pytest.approx(fit, rel=1e-3)
    await page.keyboard.press("+")
    assert await scale(page) == pytest.approx(fit * 1.25, rel=1e-3)
    await page.keyboard.press("ArrowLeft")
    await viewer.get_by_role("button", name=_("Rotate")).click()
    await expect(stage).to_have_attribute("data-rotation", "90")
    await expect(viewer.get_by_role("link", name=_("Open full size"))).to_have_attribute(
        "href", await page.get_by_role("link", name="心电图 ECG.png").get_attribute("href") or "")
    await screenshot(page, f"attachment-viewer-image-{locale}", full_page=True)
    await assert_accessible(page)

    await page.get_by_role("link", name="胸部 CT.dcm").click()
    await expect(viewer).to_have_attribute("data-loaded", "true")
    assert await viewer.locator("img").evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [64, 64]
    facts = viewer.locator("[data-part='facts']")
    await expect(facts.locator("[data-fact='modality']")).to_have_text("CT")
    await expect(facts.locator("[data-fact='studyDate']")).to_have_text("2026-12-01")
    await expect(facts.locator("[data-fact='bodyPart']")).to_have_text("CHEST")
    await expect(facts).to_contain_text(_("from the file"))
    for identity in (PATIENT_NAME, "Zhang San", PATIENT_ID):
        await expect(viewer).not_to_contain_text(identity)
    frames = viewer.get_by_role("group", name=_("Frames"))
    await expect(frames).to_contain_text(_("{n} of {total}").format(n=1, total=3))
    brightness = "(img) => { const c = document.createElement('canvas'); c.width = c.height = 64;" \
                 " const g = c.getContext('2d'); g.drawImage(img, 0, 0);" \
                 " return g.getImageData(0, 0, 64, 64).data.reduce((a, v) => a + v, 0); }"
    first = await viewer.locator("img").evaluate(brightness)
    await frames.get_by_role("button", name=_("Next frame")).click()
    await expect(viewer).to_have_attribute("data-frame", "1")
    await expect(viewer).to_have_attribute("data-loaded", "true")
    await expect(frames).to_contain_text(_("{n} of {total}").format(n=2, total=3))
    assert await viewer.locator("img").evaluate(brightness) > first, "frame 2 is the brighter one"
    before = await scale(page)
    await viewer.get_by_role("button", name=_("Zoom in")).click()
    assert await scale(page) > before
    await screenshot(page, f"attachment-viewer-dicom-{locale}", full_page=True)
    await assert_accessible(page)

    await page.get_by_role("link", name="报告 report.pdf").click()
    pdf = viewer.locator("iframe")
    await expect(pdf).to_be_visible()
    await expect(pdf).to_have_attribute("title", "报告 report.pdf")
    await expect(stage).to_be_hidden()
    # Chromium's own PDF viewer came up inside the frame: the file's policy let this page frame it.
    for _attempt in range(50):
        if any(f.url.startswith("chrome-extension://") for f in page.frames):
            break
        await page.wait_for_timeout(100)
    assert any(f.url.startswith("chrome-extension://") for f in page.frames), [f.url for f in page.frames]
    await page.wait_for_timeout(500)
    await screenshot(page, f"attachment-viewer-pdf-{locale}")
    await assert_accessible(page)

    # A compression the server cannot decode is said plainly, in the reader's language, with the download.
    await page.get_by_role("link", name="压缩 JPEG.dcm").click()
    await expect(viewer.locator("[data-part='status']")).to_have_text(_(
        "This DICOM image is compressed in a way the viewer cannot show. Download the file and open it in a "
        "DICOM viewer."))
    await expect(stage).to_be_hidden()
    await expect(viewer.get_by_role("button", name=_("Zoom in"))).to_be_hidden()
    await expect(viewer.get_by_role("link", name=_("Download the DICOM file"))).to_be_visible()
    await screenshot(page, f"attachment-viewer-compressed-{locale}")
    await assert_accessible(page)

    await viewer.get_by_role("button", name=_("Close the viewer")).click()
    await expect(viewer).to_be_hidden()
    await expect(page.get_by_role("link", name="压缩 JPEG.dcm")).to_be_focused()


async def test_the_specialist_opens_an_image_beside_the_call(client: TestClient, browser: Browser) -> None:
    """In the room, the referral's image opens in the panel beside the video, and the call goes on."""
    _ = words("zh-CN")
    base = str(client.make_url("")).rstrip("/")
    referral = await attached_referral(client)
    _doctor, specialist = await in_call(browser, base, "zh-CN", referral["consultation_id"])
    call = await specialist.evaluate_handle("window.telemedCall")
    await specialist.get_by_role("tab", name=_("Referral")).click()
    panel = specialist.locator("#referral-panel")
    await panel.get_by_role("link", name="胸部 CT.dcm").click()
    viewer = panel.locator("#attachment-viewer")
    await expect(viewer).to_have_attribute("data-loaded", "true")
    await viewer.get_by_role("button", name=_("Zoom in")).click()
    await panel.get_by_role("link", name="心电图 ECG.png").click()
    await expect(viewer).to_have_attribute("data-loaded", "true")
    assert await viewer.locator("img").evaluate("(img) => img.naturalWidth") == 300
    assert len(specialist.context.pages) == 1, "opened beside the call, not in a new tab"
    assert await specialist.evaluate("(call) => call === window.telemedCall", call)
    await expect(specialist.locator("#connection-state")).to_have_attribute("data-state", "connected")
    await screenshot(specialist, "attachment-viewer-room-zh-CN")
    await assert_accessible(specialist)


PINCH = """
(stage) => {
  // Two fingers 100 px apart spreading to 200 px about the stage's centre, as a touch screen sends them.
  const box = stage.getBoundingClientRect();
  const [cx, cy] = [box.left + box.width / 2, box.top + box.height / 2];
  const send = (type, id, x) => stage.dispatchEvent(new PointerEvent(type, {
    pointerId: id, pointerType: "touch", isPrimary: id === 11, clientX: x, clientY: cy, bubbles: true }));
  send("pointerdown", 11, cx - 50); send("pointerdown", 12, cx + 50);
  send("pointermove", 11, cx - 100); send("pointermove", 12, cx + 100);
  send("pointerup", 11, cx - 100); send("pointerup", 12, cx + 100);
}
"""


async def test_drag_and_pinch_on_a_phone(client: TestClient, browser: Browser) -> None:
    """On a 390×844 phone the viewer fits the screen (nothing to scroll sideways); a drag moves the picture by
    as much as the finger moved, and two fingers spreading to twice their distance zoom it twice as large."""
    base = str(client.make_url("")).rstrip("/")
    referral = await attached_referral(client)
    page = await signed_in(browser, base, "coord.zhao", "en", **PHONE)
    await page.goto(f"{base}/referrals/{referral['id']}")
    await page.get_by_role("link", name="心电图 ECG.png").click()
    viewer = page.locator("#attachment-viewer")
    await expect(viewer).to_have_attribute("data-loaded", "true")
    stage = viewer.locator("[data-part='stage']")
    image = viewer.locator("img")
    assert await page.evaluate("document.scrollingElement.scrollWidth") <= 390
    for button in await viewer.get_by_role("button").all():
        box = await button.bounding_box()
        if box is not None:  # (hidden ones have none)
            assert box["width"] >= 44 and box["height"] >= 44, await button.inner_text()

    before = await image.bounding_box()
    box = await stage.bounding_box()
    assert before is not None and box is not None
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.move(*middle)
    await page.mouse.down()
    await page.mouse.move(middle[0] + 40, middle[1] + 25, steps=5)
    await page.mouse.up()
    after = await image.bounding_box()
    assert after is not None
    assert (after["x"] - before["x"], after["y"] - before["y"]) == (pytest.approx(40, abs=1), pytest.approx(25, abs=1))

    fit = await scale(page)
    await stage.evaluate(PINCH)
    assert await scale(page) == pytest.approx(fit * 2, rel=1e-3)
    await screenshot(page, "attachment-viewer-phone-en", full_page=True)
    await assert_accessible(page)
