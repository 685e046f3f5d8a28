"""Refusals and errors in the reader's words (web/refusals.py, web/forms.py, web/room_texts.py): every error
code, field and browser-side code has its words in both languages; pages name fields by their labels; the
404 and 405 pages are translated pages with a way on that fits the reader; a word with two meanings is
translated by its context."""

from __future__ import annotations

import html
import re

import pydantic
import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE
from server.errors import N_, NC_, ErrorCode, TelemedError, ValidationFailed
from server.http import refusal
from server.i18n import translations
from server.models import ReferralState
from server.referrals.flow import IllegalTransition, ReferralAction
from signaling.errors import ErrorCode as SignalingCode
from web import STATIC_DIR
from web.forms import FIELD_LABELS, field_errors, field_lines, say
from web.refusals import BY_CODE, ILLEGAL, error_text
from web.room_texts import SIGNALING_ERRORS, api_errors, signaling_errors

from ..server.referrals.test_views import add_referrals
from ..support.visits import invite
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
zh = translations("zh-CN").gettext
en = translations("en").gettext


def chinese(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def test_every_error_code_has_words_in_chinese() -> None:
    """BY_CODE covers server/errors.py's whole table, and each sentence (and each refused referral action's,
    and each signaling code's) has its Chinese: what the pages and the room's script show for a code."""
    assert set(BY_CODE) == set(ErrorCode)
    assert set(ILLEGAL) == set(ReferralAction)
    for text in [*BY_CODE.values(), *ILLEGAL.values(), *SIGNALING_ERRORS.values()]:
        assert chinese(zh(text)), text
    assert set(api_errors(zh)) == {row.code for row in ErrorCode}
    assert all(chinese(text) for text in api_errors(zh).values())
    assert set(signaling_errors(zh)) == {row.code for row in SignalingCode}
    assert all(chinese(text) for text in signaling_errors(zh).values())


def test_every_field_label_has_words_in_chinese() -> None:
    """Every field label the pages use to name a refused field has Chinese words."""
    assert all(chinese(zh(label)) for label in FIELD_LABELS.values())


class _Form(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=5)
    year: int = pydantic.Field(ge=1900)
    state: ReferralState
    when: pydantic.AwareDatetime
    people: list[int] = pydantic.Field(min_length=1)

    @pydantic.field_validator("name")
    @classmethod
    def no_digits(cls, value: str) -> str:
        if any(c.isdigit() for c in value):
            raise ValueError(N_("Enter a date."))  # any message of ours: it is translated where shown
        return value


@pytest.mark.parametrize(("values", "field", "english", "chinese_words"), [
    ({}, "name", "Please fill this in.", "请填写此项。"),
    ({"name": ""}, "name", "Please fill this in.", "请填写此项。"),
    ({"name": "abcdefgh"}, "name", "At most 5 characters.", "最多 5 个字符。"),
    ({"name": "a1"}, "name", "Enter a date.", "请输入日期。"),
    ({"year": "1800"}, "year", "At least 1900.", "不能小于 1900。"),
    ({"year": "soon"}, "year", "Enter a whole number.", "请输入整数。"),
    ({"state": "lost"}, "state", "Choose one of the options.", "请从选项中选择。"),
    ({"when": "2030-01-01T08:00"}, "when", "Enter a date and a time.", "请输入日期和时间。"),
    ({"people": []}, "people", "Choose at least one.", "请至少选择一项。"),
])
def test_pydantic_refusals_are_said_by_their_type(values: dict, field: str, english: str,
                                                   chinese_words: str) -> None:
    """pydantic's refusals reach a page by their error type, in either language, whatever pydantic's English."""
    with pytest.raises(pydantic.ValidationError) as caught:
        _Form.model_validate(values)
    error = refusal(caught.value)
    assert field_errors(error, en)[field] == english
    assert field_errors(error, zh)[field] == chinese_words


def test_a_reason_without_words_is_never_shown_in_english_to_a_chinese_reader() -> None:
    """A field's reason the catalog lacks (an f-string, another library's) is said as "not accepted", and
    fields are named by their labels, never their code names."""
    error = ValidationFailed({"sharing_consent": "some English nobody translated", "mystery_field": "x"})
    lines = field_lines(error, zh)
    assert lines == ["患者对提供病历信息的同意：此项的值不被接受，请检查。", "某一项：此项的值不被接受，请检查。"]
    assert field_lines(error, en)[0] == "Consent to sharing the patient's records: some English nobody translated"
    assert say("Field required", zh) == "请填写此项。", "a refusal that kept no type is read by its English"


def test_a_refused_transition_names_the_state_in_the_readers_words() -> None:
    """A refused referral transition names the referral's state in the reader's words: 已安排 in
    Chinese, the English sentence as written."""
    error = IllegalTransition("A referral that is scheduled cannot be accepted.", state="scheduled",
                              action="accept")
    assert error_text(error, zh) == "该转诊当前状态为“已安排”，无法接受。"
    assert error_text(error, en) == "A referral that is scheduled cannot be accepted."


def test_a_message_with_values_in_it_falls_back_to_its_codes_sentence() -> None:
    """A refusal whose message has a value in it (an id) has no words of its own in the catalog, so the reader gets its
    error code's sentence instead, in Chinese and in English alike."""
    assert error_text(TelemedError("There is no referral 999.", code="not-found"), zh) == "这里没有内容，或您无权查看。"
    assert error_text(TelemedError("'abc' is not a referral id.", code="bad-id"), en) == \
        "This address does not name anything: its number is not valid."


def test_a_word_with_two_meanings_is_translated_by_its_context() -> None:
    """"Recording" is 录像 as the consent's heading and 录像中 as the room's live indicator."""
    assert zh(NC_("consent purpose", "Recording")) == "录像"
    assert translations("zh-CN").pgettext("live indicator", "Recording") == "录像中"
    assert en(NC_("consent purpose", "Recording")) == "Recording"


@pytest.mark.parametrize(("headers", "words"), [(ZH, ("抱歉 (404)", "此地址下没有页面。")),
                                                (EN, ("Sorry (404)", "There is no page at this address."))])
async def test_an_unknown_address_is_a_translated_page(client: TestClient, headers: dict, words: tuple) -> None:
    """404 is the error page in the reader's language; to a visitor without a session it offers nothing of an
    account ("back to my consultations" would lead to a login they may not have), to a signed-in user home."""
    anonymous = await client.get("/no-such-page", headers=headers)
    text = await anonymous.text()
    assert anonymous.status == 404 and "text/html" in anonymous.headers["Content-Type"]
    assert all(w in text for w in words) and 'id="error-hint"' in text and 'id="error-home"' not in text
    await form_login(client, "dr.li")
    signed_in = await client.get("/no-such-page", headers=headers)
    text = await signed_in.text()
    assert signed_in.status == 404 and all(w in text for w in words)
    assert 'id="error-home" href="/"' in text and "李明 Li Ming" in text, "the caller's own top bar"
    api = await client.get("/api/no-such-thing", headers=headers)
    assert api.status == 404 and (await api.json())["error"]["code"] == "not-found", "the API still answers JSON"


@pytest.mark.parametrize(("headers", "words"), [(ZH, "无法以这种方式打开此页面。"),
                                                (EN, "This page cannot be opened that way.")])
async def test_a_wrong_method_is_a_translated_page_that_says_what_is_allowed(client: TestClient, headers: dict,
                                                                              words: str) -> None:
    """Each row, a language: opening the POST-only logout address with GET is a 405 page in the
    reader's language, with an Allow header naming POST."""
    response = await client.get("/logout", headers=headers)
    assert response.status == 405 and words in await response.text()
    assert response.headers["Allow"] == "POST"


async def test_the_patients_error_page_offers_nothing_of_an_account(client: TestClient) -> None:
    """A patient's bad invitation link gets an error page, in either language, with a hint and
    nothing of an account: no home link, no "my consultations"."""
    for headers in (ZH, EN):
        text = await (await client.get("/visit/not-a-token", headers=headers)).text()
        assert 'id="error-home"' not in text and "我的会诊" not in text and "my consultations" not in text
        assert 'id="error-hint"' in text


@pytest.mark.parametrize(("headers", "label", "reason"), [
    (ZH, "患者对提供病历信息的同意：", "提交转诊前，需要患者同意向合作医院提供其病历信息"),
    (EN, "Consent to sharing the patient's records: ", "the patient's consent to sharing their records"),
])
async def test_a_refused_form_names_the_field_by_its_label(client: TestClient, headers: dict, label: str,
                                                           reason: str) -> None:
    """Each row, a language: a referral sent without the patient's consent to sharing is a 422 naming the field by its
    label with the reason, never by its code name sharing_consent."""
    await form_login(client, "dr.li")
    refused = await client.post("/referrals/new", headers=headers, allow_redirects=False, data={
        "patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
        "reason": "心悸"})
    text = html.unescape(await refused.text())
    assert refused.status == 422 and label + reason in text and "sharing_consent:" not in text


@pytest.mark.parametrize(("headers", "words"), [(ZH, "该转诊当前状态为“已接受”，无法接受。"),
                                                (EN, "A referral that is accepted cannot be accepted.")])
async def test_accepting_an_accepted_referral_is_refused_in_the_readers_words(client: TestClient, headers: dict,
                                                                             words: str) -> None:
    """Each row, a language: a coordinator accepting a referral already accepted gets a 409 saying, in the
    reader's words, that an accepted referral cannot be accepted."""
    await form_login(client, "dr.li")
    created = await client.post("/referrals/new", headers=headers, allow_redirects=False, data={
        "patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
        "reason": "心悸", "question": "是否为心源性晕厥？", "sharing_consent": "verbal"})
    referral = created.headers["Location"]
    client.session.cookie_jar.clear()
    await form_login(client, "coord.zhao")
    assert (await client.post(f"{referral}/action", data={"action": "accept"}, allow_redirects=False)).status == 303
    again = await client.post(f"{referral}/action", data={"action": "accept"}, headers=headers)
    assert again.status == 409 and words in await again.text()


async def test_the_consent_heading_is_not_the_rooms_live_indicator(client: TestClient) -> None:
    """The patient's consent page heads the recording consent 录像 ("recording"); the room's indicator that a
    recording is running says 录像中 ("recording now")."""
    guest = await invite(client)
    page = await (await client.get(f"/visit/{guest}", headers=ZH)).text()
    heading = re.search(r'id="recording".*?<h2>(.*?)[<(]', page, re.DOTALL)
    assert heading and heading[1].strip() == "录像"
    await form_login(client, "dr.li")
    room = await (await client.get("/consultations/1", headers=ZH)).text()
    assert 'id="recording-indicator"' in room and "● 录像中" in room


async def test_the_referral_list_counts_referrals_not_patients(client: TestClient) -> None:
    """The pager's words are shared by every list: in Chinese they count 条 (entries), never 位患者 (patients)
    on the referral list."""
    await add_referrals(client.app[DATABASE], 50)
    await form_login(client, "dr.li")
    text = await (await client.get("/referrals", headers=ZH)).text()
    assert re.search(r"第 1 / \d+ 页，共 \d+ 条", text) and "位患者" not in text
    english = await (await client.get("/referrals", headers=EN)).text()
    assert re.search(r"Page 1 of \d+; \d+ in all", english)


def test_the_rooms_script_shows_refusals_by_their_code() -> None:
    """The room's script says a refused request of its own (an invitation, a consent) by the API error code's
    sentence that the page hands it (``apiErrors``), never by the API's English ``message``."""
    script = (STATIC_DIR / "js" / "room-page.js").read_text()
    assert "error?.message" not in script
    assert "strings.apiErrors[code]" in script
