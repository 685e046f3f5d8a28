"""The referral pages keep the same rules as the API: outsiders get a 403 page, a refused action is
shown on the page with its reason and changes nothing, and the new-referral form names what is wrong."""

from __future__ import annotations

import dataclasses
import html
import re
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.db import Database
from server.models import Referral
from server.referrals.service import PAGE_SIZE
from server.settings import Settings

from ..conftest import _start, login
from ..server.referrals.test_views import add_referrals, statements
from .test_pages import EN, form_login


async def _referral(client: TestClient) -> int:
    response = await client.post("/api/referrals", headers=await login(client, "dr.li"), json={
        "patient_id": 1, "specialty": "cardiology", "urgency": "emergency", "reason": "Syncope at rest",
        "target_hospital_id": 1, "question": "Is this cardiac syncope?", "sharing_consent": "verbal"})
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def test_outsider_gets_a_403_page(client: TestClient) -> None:
    """A doctor of another county hospital gets a 403 page for a referral, with nothing of its reason."""
    referral = await _referral(client)
    await form_login(client, "dr.chen")
    page = await client.get(f"/referrals/{referral}", headers=EN)
    assert page.status == 403 and "Syncope at rest" not in await page.text()


async def test_refused_action_is_explained_on_the_page(client: TestClient) -> None:
    """A coordinator who tries to complete a referral gets a 403 page saying only the booked specialist completes it by
    signing its report, and a decline without a reason is a 422 asking for one; accepting then works, and the page
    shows the referral accepted with its booking calendar."""
    referral = await _referral(client)
    await form_login(client, "coord.zhao")
    refused = await client.post(f"/referrals/{referral}/action", data={"action": "complete"},
                                headers=EN, allow_redirects=False)
    assert refused.status == 403
    assert "Only the booked specialist completes a referral, by signing its report." in await refused.text()
    no_reason = await client.post(f"/referrals/{referral}/action", data={"action": "decline", "reason": " "},
                                  headers=EN, allow_redirects=False)
    assert no_reason.status == 422 and "Reason: give a reason" in await no_reason.text()
    accepted = await client.post(f"/referrals/{referral}/action", data={"action": "accept"}, headers=EN,
                                 allow_redirects=False)
    assert accepted.status == 303 and accepted.headers["Location"] == f"/referrals/{referral}"
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'data-state="accepted"' in page and 'id="booking"' in page


async def test_new_referral_form_names_the_problem_and_keeps_the_input(client: TestClient) -> None:
    """A referral to the doctor's own hospital is refused: the form comes back as a 422 page keeping the reason, with
    "not a partner hospital of yours" beside the hospital list and tied to it for a screen reader."""
    await form_login(client, "dr.li")
    form = {"patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "2",
            "reason": "Palpitations", "summary": "kept"}  # 2: the doctor's own hospital
    response = await client.post("/referrals/new", data=form, headers=EN, allow_redirects=False)
    text = await response.text()
    assert response.status == 422 and "Palpitations" in text
    hospital = re.search(r'<select name="target_hospital_id"[^>]*>', text)
    assert hospital and 'aria-describedby="error-target_hospital_id"' in hospital.group(0)
    assert '<span class="field-error" id="error-target_hospital_id">not a partner hospital of yours</span>' in text


async def test_the_form_records_the_patients_consent_and_refuses_to_send_without_it(client: TestClient) -> None:
    """The new-referral form asks for the patient's consent to sharing and will not send without it (422, the
    reason beside the checkbox in the reader's language and tied to it for screen readers); sent with it, the
    referral offers to record a withdrawal, and once it is withdrawn the receiving coordinator sees the
    records withheld, neither the reason nor the summary."""
    await form_login(client, "dr.li")
    form = {"patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
            "reason": "Palpitations", "summary": "Holter attached"}
    refused = await client.post("/referrals/new", data=form, headers=EN, allow_redirects=False)
    assert refused.status == 422
    english = re.search(r'<span class="field-error" id="error-sharing_consent">([^<]+)</span>', await refused.text())
    assert english and html.unescape(english.group(1)) == (
        "the patient's consent to sharing their records with the partner hospital is needed to send the referral")
    # the refusal sits beside the checkbox too, tied to it for a screen reader, in the reader's language
    chinese = await (await client.post("/referrals/new", data=form, headers={"Accept-Language": "zh-CN"},
                                       allow_redirects=False)).text()
    checkbox = re.search(r'<input type="checkbox" name="sharing_consent"[^>]*>', chinese)
    assert checkbox and 'aria-invalid="true"' in checkbox.group(0) and 'aria-describedby="error-sharing_consent"' \
        in checkbox.group(0)
    beside = re.search(r'<span class="field-error" id="error-sharing_consent">([^<]+)</span>', chinese)
    assert beside and re.search(r"[\u4e00-\u9fff]", beside.group(1)), "the reason beside the box is in Chinese"
    page = await (await client.get("/referrals/new", headers=EN)).text()
    assert "Consent to sharing your records with the partner hospital" in page
    sent = await client.post("/referrals/new", data={**form, "question": "Is this cardiac syncope?",
                                                     "sharing_consent": "verbal"}, headers=EN, allow_redirects=False)
    assert sent.status == 303
    referral = sent.headers["Location"]
    shown = await (await client.get(referral, headers=EN)).text()
    assert 'data-state="submitted"' in shown and "Record the patient's withdrawal" in shown
    await form_login(client, "coord.zhao")  # the receiving side may read it, not withdraw the patient's consent
    refused = await client.post(f"{referral}/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert refused.status == 403 and "Only the person who consented" in await refused.text()
    assert "Palpitations" in await (await client.get(referral, headers=EN)).text(), "the consent still stands"
    await form_login(client, "dr.li")
    withdrawn = await client.post(f"{referral}/sharing-consent/withdraw", headers=EN, allow_redirects=False)
    assert withdrawn.status == 303
    await form_login(client, "coord.zhao")
    seen = await (await client.get(referral, headers=EN)).text()
    assert 'id="records-withheld"' in seen and "Holter attached" not in seen and "Palpitations" not in seen


@pytest.mark.parametrize(("changes", "field"), [
    ({"reason": "x" * 600}, "reason"),
    ({"summary": "y" * 20_001}, "summary"),
    ({"specialty": ""}, "specialty"),
    ({"patient_id": "١"}, "patient_id"),
    ({"urgency": "whenever"}, "urgency"),
])
async def test_the_form_and_the_api_refuse_the_same_input_alike(settings: Settings, database_url: str,
                                                                 changes: dict, field: str) -> None:
    """The new-referral form parses into the API's own model: what POST /api/referrals refuses with 422
    naming a field, the form refuses with a 422 page naming it, on SQLite and PostgreSQL (where a reason
    over the column's 500 characters used to reach the database and answer 500), and neither writes."""
    if not database_url.startswith("sqlite"):
        database = Database(database_url)
        await database.upgrade()
        await database.close()
    client = await _start(dataclasses.replace(settings, database_url=database_url))
    try:
        form = {"patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
                "reason": "Palpitations", "question": "Is this cardiac syncope?", "sharing_consent": "verbal",
                **changes}
        api_body = {**form, "patient_id": form["patient_id"], "target_hospital_id": 1}
        api = await client.post("/api/referrals", json=api_body, headers=await login(client, "dr.li"))
        assert api.status == 422 and field in (await api.json())["error"]["fields"]
        await form_login(client, "dr.li")
        page = await client.post("/referrals/new", data=form, headers=EN, allow_redirects=False)
        assert page.status == 422 and field in await page.text()
        async with client.app[DATABASE].session() as session:
            assert (await session.exec(select(Referral))).all() == [], "nothing half-written"
    finally:
        await client.close()


async def test_ids_in_the_forms_are_ascii_digits_within_range(client: TestClient) -> None:
    """Guards the forms' ids: 30 digits passed isdigit() and overflowed the database (a 500 page), ``²``
    crashed int(); each is now the form again, naming the field (or asking to choose from the lists), and
    nothing is made."""
    referral = await _referral(client)
    await form_login(client, "dr.li")
    form = {"patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
            "reason": "Palpitations", "question": "Is this cardiac syncope?", "sharing_consent": "verbal"}
    for field, value in [("patient_id", "9" * 30), ("target_hospital_id", "²"), ("target_specialist_id", "9" * 30),
                         ("sharing_template_id", "9" * 30), ("patient_id", "١")]:
        response = await client.post("/referrals/new", data={**form, field: value}, headers=EN,
                                     allow_redirects=False)
        assert response.status == 422 and field in await response.text(), (field, value)
    listed = await client.get("/api/referrals", headers=await login(client, "dr.li"))
    assert [r["id"] for r in (await listed.json())["referrals"]] == [referral]
    await form_login(client, "coord.zhao")
    redirect = await client.post(f"/referrals/{referral}/action", headers=EN, allow_redirects=False,
                                 data={"action": "redirect", "hospital_id": "9" * 30})
    assert redirect.status in (400, 422) and "Choose from the lists." in await redirect.text()


async def test_the_list_page_costs_the_same_queries_for_five_referrals_as_for_two_hundred(
        client: TestClient) -> None:
    """/referrals describes the coordinator's inbox and list in one batch: as many statements for two
    hundred referrals as for five, and each section shows the rows, in the order, the API lists (its first
    page; the rest leaves out what the inbox holds)."""
    database = client.app[DATABASE]
    headers = await login(client, "coord.zhao")
    await form_login(client, "coord.zhao")

    async def shown() -> tuple[str, list[str]]:
        with statements(database) as sent:
            page = await client.get("/referrals", headers=EN)
            assert page.status == 200
            text = await page.text()
        return text, sent

    await add_referrals(database, 5)
    _, with_few = await shown()
    await add_referrals(database, 195, first=5)
    text, with_many = await shown()
    assert len(with_many) == len(with_few), with_many

    inbox, _, rest = text.partition('id="inbox"')[2].partition('id="others"')
    waiting = (await (await client.get("/api/referrals?inbox=1", headers=headers)).json())["referrals"]
    everything = (await (await client.get("/api/referrals", headers=headers)).json())["referrals"]
    others = [r for r in everything if r["id"] not in {w["id"] for w in waiting}]
    for section, listed in ((inbox, waiting), (rest, others)):
        assert re.findall(r'data-referral-id="(\d+)"', section) == [str(r["id"]) for r in listed][:PAGE_SIZE]
        assert len(listed) > PAGE_SIZE
    assert "Page 1 of" in inbox and "Page 1 of" in rest


async def test_the_inbox_lists_each_referral_once_with_its_sender_and_when_it_came(client: TestClient) -> None:
    """A waiting referral is in the coordinator's inbox once (it was listed again below it), naming the
    referring hospital and doctor, its urgency, and when it came on the hospital's clock (CST, not UTC);
    accepted, it moves to the other section, still once."""
    referral = await _referral(client)
    await form_login(client, "coord.zhao")
    text = await (await client.get("/referrals", headers=EN)).text()
    assert text.count(f'data-referral-id="{referral}"') == 1
    inbox = text.partition('id="inbox"')[2].partition('id="others"')[0]
    row = inbox.partition(f'data-referral-id="{referral}"')[2].partition("</tr>")[0]
    assert "青山县人民医院 Qingshan County People&#39;s Hospital" in row and "李明 Li Ming" in row
    assert "urgency-emergency" in row and "Emergency" in row
    async with client.app[DATABASE].session() as session:
        submitted = (await session.get(Referral, referral)).submitted_at
    local = submitted.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f">{local} CST</time>" in row and "UTC" not in text
    assert "Times in Asia/Shanghai (CST)." in text
    await client.post(f"/referrals/{referral}/action", data={"action": "accept"}, headers=EN)
    text = await (await client.get("/referrals", headers=EN)).text()
    assert text.count(f'data-referral-id="{referral}"') == 1
    assert f'data-referral-id="{referral}"' in text.partition('id="others"')[2]


async def test_the_list_is_searched_by_patient_name_and_state(client: TestClient) -> None:
    """The referral list is searched by patient name (only matching patients, with a way to show
    all) and by state (drafts only); a search with no match says so, and a page number below 1 or
    a state there is not is said in an alert naming both fields on the list, which answers 422
    and shows the first page unsearched (every state, the same referrals as with no search), with the
    name typed kept in its field."""
    await add_referrals(client.app[DATABASE], 30)
    await form_login(client, "dr.li")
    found = await (await client.get("/referrals?name=patient+2&state=", headers=EN)).text()
    names = re.findall(r'<td data-label="Patient" class="patient">([^<]+)</td>', found)
    assert names and all(name.startswith("Patient 2") for name in names) and "Show all" in found
    drafts = await (await client.get("/referrals?state=draft", headers=EN)).text()
    assert set(re.findall(r'data-state="(\w+)"', drafts.partition('id="others"')[2])) == {"draft"}
    nothing = await (await client.get("/referrals?name=nobody", headers=EN)).text()
    assert "No referral matches this search." in nothing
    wrong = await client.get("/referrals?page=0&state=lost&name=patient+2", headers=EN)
    text = await wrong.text()
    alert = re.search(r'<p class="error" role="alert">([^<]+)</p>', text)
    assert wrong.status == 422 and alert and alert.group(1) == "State: Choose one of the options.; Page: At least 1."
    unsearched = await (await client.get("/referrals", headers=EN)).text()
    assert re.findall(r'data-referral-id="(\d+)"', text) == re.findall(r'data-referral-id="(\d+)"', unsearched)
    assert len(set(re.findall(r'data-state="(\w+)"', text))) > 1, "no state filter was applied"
    assert '<input name="name" value="patient 2"' in text, "what was typed is kept, to be put right"


async def test_a_refused_search_pages_through_the_unsearched_list(client: TestClient) -> None:
    """Under a search that could not be read (422), the list shown is the unsearched one, and so are the pages
    its pager leads to: not the refused search again, which would be refused on every page."""
    await add_referrals(client.app[DATABASE], 60)
    await form_login(client, "dr.li")
    response = await client.get("/referrals?page=0&state=lost&name=x", headers=EN)
    text = await response.text()
    assert response.status == 422
    assert re.findall(r'href="([^"]*)" rel="next"', text) == ["/referrals?page=2"]


async def test_attachments_open_in_the_viewer_in_the_reader_s_language(client: TestClient) -> None:
    """Each attachment link says how the viewer shows it (image, PDF, DICOM), the viewer and its script come
    only with attachments, its words are the reader's, and the PDF's own policy lets this origin frame it."""
    from ..server.api.test_attachments import PDF, PNG, _upload
    from ..support.dicom import dicom_file

    referral = await _referral(client)
    await form_login(client, "dr.li")
    empty = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    assert 'id="attachment-viewer"' not in empty and "attachment-viewer.js" not in empty
    for data, name in ((PNG, "ECG.png"), (PDF, "report.pdf"), (dicom_file(), "CT.dcm")):
        assert (await _upload(client, referral, data, name))[0] == 201
    page = await (await client.get(f"/referrals/{referral}", headers=EN)).text()
    kinds = re.findall(r'data-kind="(\w+)">([^<]+)</a>', page)
    assert kinds == [("image", "ECG.png"), ("pdf", "report.pdf"), ("dicom", "CT.dcm")]
    assert 'id="attachment-viewer"' in page and '<script type="module" src="/static/js/attachment-viewer.js">' in page
    assert "Rotate" in page and "Zoom in" in page
    chinese = await (await client.get(f"/referrals/{referral}", headers={"Accept-Language": "zh-CN"})).text()
    assert "旋转" in chinese and "放大" in chinese and "Rotate" not in chinese and "Zoom in" not in chinese
    pdf = re.search(r'href="(/api/attachments/\d+)" data-id="\d+" data-kind="pdf"', page)
    assert pdf is not None
    served = await client.get(pdf.group(1))
    policy = served.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "frame-ancestors 'self'" in policy


async def test_a_draft_is_submitted_from_its_page_with_the_patients_consent(client: TestClient) -> None:
    """Guards sending a draft from the pages (before, its page offered only cancelling it): the draft's page shows
    dr.li a submit form with the sharing text to read out; submitting without ticking the patient's consent is a
    422 naming it, and leaves the draft unsent with no consent recorded; with it ticked, the referral is
    submitted, its consent recorded by dr.li, and the receiving coordinator then sees it."""
    doctor = await login(client, "dr.li")
    response = await client.post("/api/referrals", headers=doctor, json={
        "patient_id": 1, "specialty": "cardiology", "urgency": "urgent", "reason": "Palpitations",
        "target_hospital_id": 1, "question": "Holter needed?", "submit": False})
    assert response.status == 201, await response.text()
    draft = (await response.json())["id"]
    await form_login(client, "dr.li")
    page = await (await client.get(f"/referrals/{draft}", headers=EN)).text()
    form = page.partition('id="submit-form"')[2].partition("</form>")[0]
    assert 'name="sharing_consent"' in form and 'name="sharing_template_id"' in form
    template = re.search(r'name="sharing_template_id" value="(\d+)"', form)
    assert template is not None

    unticked = await client.post(f"/referrals/{draft}/action", headers=EN, allow_redirects=False,
                                 data={"action": "submit", "sharing_template_id": template[1]})
    assert unticked.status == 422
    refused = await unticked.text()
    assert "The patient&#39;s consent to sharing their records: " in refused
    assert re.search(r'name="sharing_consent"[^>]*aria-invalid="true"', refused), "the box marked beside it"
    described = await (await client.get(f"/api/referrals/{draft}", headers=doctor)).json()
    assert described["state"] == "draft" and described["sharing_consent"] is None

    sent = await client.post(f"/referrals/{draft}/action", headers=EN, allow_redirects=False, data={
        "action": "submit", "sharing_consent": "verbal", "sharing_template_id": template[1]})
    assert sent.status == 303, await sent.text()
    described = await (await client.get(f"/api/referrals/{draft}", headers=doctor)).json()
    assert described["state"] == "submitted" and described["sharing_consent"]["method"] == "verbal"
    page = await (await client.get(f"/referrals/{draft}", headers=EN)).text()
    assert 'id="submit-form"' not in page
    coordinator = await client.get(f"/api/referrals/{draft}", headers=await login(client, "coord.zhao"))
    assert coordinator.status == 200
