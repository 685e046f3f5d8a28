"""The legal holds page through a real server, in English and Chinese: administrators and auditors place and
release holds (each form refusing what the API refuses, beside the field), others are turned away, the hold
shows on the patient's chart and the consultation's recordings, and the Chinese page is all Chinese."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import LegalHold, User

from .test_admin_pages import EN, ZH, _Visible, form_login, post


async def _holds(client: TestClient) -> list[LegalHold]:
    async with client.app[DATABASE].session() as session:
        return list((await session.exec(select(LegalHold))).all())


@pytest.mark.parametrize(("language", "headers", "placed", "released"), [
    ("en", EN, "The legal hold was placed.", "The legal hold was released."),
    ("zh-CN", ZH, "法律保全已设立。", "法律保全已解除。"),
])
async def test_an_auditor_places_and_releases_a_hold(client: TestClient, language: str, headers: dict, placed: str,
                                                     released: str) -> None:
    """Each row, a language: an auditor opens the holds page (linked from the top bar), places a hold on a consultation
    with its reason and releases it, each answer saying so in that language and listing the hold as active, then not."""
    await form_login(client, "auditor")
    page = await client.get("/holds", headers=headers)
    assert page.status == 200 and page.headers["Content-Language"] == language
    assert 'href="/holds"' in await page.text(), "the top bar links the page"
    done = await client.post("/holds", data={"subject": "consultation", "number": "1", "reason": "Complaint 17"},
                             headers=headers)
    assert done.status == 200 and placed in await done.text()
    [hold] = await _holds(client)
    assert hold.consultation_id == 1 and hold.patient_id is None and hold.reason == "Complaint 17"
    listed = await done.text()
    assert f'data-hold-id="{hold.id}" data-active="true"' in listed
    ended = await client.post(f"/holds/{hold.id}/release", data={"reason": "Closed"}, headers=headers)
    assert ended.status == 200 and released in await ended.text()
    assert f'data-hold-id="{hold.id}" data-active="false"' in await ended.text()


@pytest.mark.parametrize(("headers", "required"), [(EN, "Please fill this in."), (ZH, "请填写此项。")])
async def test_a_refused_form_says_why_beside_the_field_and_keeps_what_was_typed(client: TestClient, headers: dict,
                                                                                 required: str) -> None:
    """Each row, a language: a hold without a number or a reason is a 422 with the reason beside the field,
    keeping the reason typed, and a patient who does not exist is a 404, none of them placing a hold; a release
    without a reason is a 422 and the hold stays in force."""
    await form_login(client, "admin")
    empty = await post(client, "/holds", {"subject": "patient", "number": "", "reason": "kept"}, headers)
    text = await empty.text()
    assert empty.status == 422 and 'id="error-number"' in text and required in text and ">kept</textarea>" in text
    no_reason = await post(client, "/holds", {"subject": "patient", "number": "1", "reason": ""}, headers)
    assert no_reason.status == 422 and 'id="error-reason"' in await no_reason.text()
    nobody = await post(client, "/holds", {"subject": "patient", "number": "999", "reason": "x"}, headers)
    assert nobody.status == 404 and 'id="failure"' in await nobody.text()
    assert await _holds(client) == []
    await post(client, "/holds", {"subject": "patient", "number": "1", "reason": "x"}, headers)
    [hold] = await _holds(client)
    blank = await post(client, f"/holds/{hold.id}/release", {"reason": ""}, headers)
    assert blank.status == 422 and 'id="error-reason"' in await blank.text()
    assert (await _holds(client))[0].released_at is None


@pytest.mark.parametrize("username", ["dr.li", "coord.zhao", "dr.wang"])
async def test_others_are_turned_away(client: TestClient, username: str) -> None:
    """Each row (a county doctor, a coordinator, a specialist): the holds page and its form are
    403, and their top bar has no link to it."""
    await form_login(client, username)
    assert (await client.get("/holds", headers=EN)).status == 403
    assert (await post(client, "/holds", {"subject": "patient", "number": "1", "reason": "x"})).status == 403
    assert 'href="/holds"' not in await (await client.get("/", headers=EN)).text()


@pytest.mark.parametrize(("headers", "words"), [(EN, "Under legal hold"), (ZH, "法律保全中")])
async def test_the_hold_shows_on_the_chart_and_the_recordings(client: TestClient, headers: dict, words: str) -> None:
    """Clinicians see that a hold stands (not why: the reason may name a lawsuit) on the patient's chart, and
    the consultation's recordings page says its recordings are kept."""
    await form_login(client, "dr.li")
    assert words not in await (await client.get("/patients/1", headers=headers)).text()
    client.session.cookie_jar.clear()
    await form_login(client, "admin")
    await post(client, "/holds", {"subject": "patient", "number": "1", "reason": "Lawsuit 2026-3"})
    client.session.cookie_jar.clear()
    await form_login(client, "dr.li")
    chart = await (await client.get("/patients/1", headers=headers)).text()
    assert 'id="legal-hold"' in chart and words in chart and "Lawsuit" not in chart
    shelf = await (await client.get("/consultations/1/recordings", headers=headers)).text()
    assert 'id="legal-hold"' in shelf and words in shelf


async def test_the_chinese_page_has_no_english_left(client: TestClient) -> None:
    """The Chinese holds page, with holds placed and one released, has no English word left but for people's names,
    zone names, the language switcher's "English" and CST."""
    await form_login(client, "admin")
    await post(client, "/holds", {"subject": "patient", "number": "1", "reason": "诉讼"})
    await post(client, "/holds", {"subject": "consultation", "number": "1", "reason": "投诉"})
    [first, _] = await _holds(client)
    await post(client, f"/holds/{first.id}/release", {"reason": "结案"})
    async with client.app[DATABASE].session() as session:
        names = {u.display_name for u in (await session.exec(select(User))).all()}
    response = await client.get("/holds", headers=ZH)
    parser = _Visible()
    parser.feed(await response.text())
    leftovers = []
    for text in parser.texts:
        for name in names:
            text = text.replace(name, " ")
        text = re.sub(r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+", " ", text)
        leftovers += [w for w in re.findall(r"[A-Za-z][A-Za-z'’]+", text) if w not in {"English", "CST"}]
    assert not leftovers, leftovers


@pytest.mark.parametrize(("headers", "words"), [(EN, "Deleted at the end of its retention period"),
                                                (ZH, "保存期满，已删除")])
async def test_purged_files_show_as_deleted_not_as_links(client: TestClient, headers: dict, words: str) -> None:
    """After the purge a recording is listed without Play or Download, and an attachment by name without a
    link, each saying why."""
    from datetime import timedelta

    from server.appkeys import SETTINGS
    from server.models import utcnow
    from server.retention import purge

    from ..server.api.test_attachments import PDF, _upload
    from ..server.api.test_referrals import create, ids
    from ..server.retention.test_purge import PERIODS, recorded

    row = await recorded(client, 1)
    referral = await create(client, await ids(client))
    status, attached = await _upload(client, referral["id"], PDF, "ecg.pdf")
    assert status == 201
    await form_login(client, "dr.li")
    shelf = await (await client.get("/consultations/1/recordings", headers=headers)).text()
    assert f'href="/recordings/{row.id}"' in shelf and words not in shelf
    await purge.run(client.app[DATABASE], client.app[SETTINGS].recordings_dir, PERIODS,
                    now=utcnow() + timedelta(days=16 * 365))
    shelf = await (await client.get("/consultations/1/recordings", headers=headers)).text()
    assert f'href="/recordings/{row.id}"' not in shelf and words in shelf
    page = await (await client.get(f"/referrals/{referral['id']}", headers=headers)).text()
    assert "ecg.pdf" in page and attached["url"] not in page and words in page


@pytest.mark.parametrize(("headers", "purged", "placed"), [(EN, "Deleted at the end of its retention period",
                                                             "Legal hold placed"),
                                                            (ZH, "保存期满，已删除", "设立法律保全")])
async def test_the_audit_page_tells_purges_and_holds_in_words(client: TestClient, headers: dict, purged: str,
                                                              placed: str) -> None:
    """Each row, a language: the audit page tells a recording's purge and a hold placed in words, and filtered to
    retention actions it keeps the purge and leaves out the hold."""
    from datetime import timedelta

    from server.appkeys import SETTINGS
    from server.models import utcnow
    from server.retention import purge

    from ..server.retention.test_purge import PERIODS, recorded

    await recorded(client, 1)
    await purge.run(client.app[DATABASE], client.app[SETTINGS].recordings_dir, PERIODS,
                    now=utcnow() + timedelta(days=4 * 365))
    await form_login(client, "auditor")
    await post(client, "/holds", {"subject": "consultation", "number": "1", "reason": "x"})
    page = await client.get("/audit", headers=headers)
    entries = (await page.text()).split("<tbody>", 1)[1]
    assert page.status == 200 and purged in entries and placed in entries
    filtered = await client.get("/audit?action=retention.", headers=headers)
    entries = (await filtered.text()).split("<tbody>", 1)[1]
    assert filtered.status == 200 and purged in entries and placed not in entries
