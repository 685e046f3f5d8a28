"""The consultation request a referral carries: what it needs to be sent, who may rewrite it, and what the
receiving side reads of it (the patient and the clinical content only while the patient's consent stands;
the consent's status read from the consent records)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pydantic
import pytest
from sqlmodel import select

from server.consent import records as consents
from server.consent import templates as consent_templates
from server.consent.records import How
from server.db import Database
from server.demo import seed_demo
from server.errors import Forbidden, ValidationFailed
from server.models import AuditEvent, Consent, ConsentMethod, Hospital, Referral, ReferralState, TitleWanted, utcnow
from server.referrals import request as consultation_request
from server.referrals import service as referrals
from server.referrals.inputs import ReferralCreate, ReferralRequestEdit

from .test_views import principal

REQUEST = {"reason": "胸痛三天", "question": "是否需要冠脉造影？", "working_diagnosis": "不稳定型心绞痛？",
           "diagnosis_code": "i20.0", "history": "高血压十年，吸烟四十年。",
           "results": "心电图：V4-V6 导联 ST 段压低。",
           "summary": "68岁男性，活动后胸痛。", "title_wanted": "associate_chief"}


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The demo partnership with its consent texts, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    await consent_templates.publish(database)
    yield database
    await database.close()


async def _refer(database: Database, **changes: object) -> Referral:
    async with database.session() as session:
        who = await principal(session, "dr.li")
        provincial = (await session.exec(select(Hospital.id).where(Hospital.name.startswith("江南省")))).one()
        body = ReferralCreate.model_validate({
            "patient_id": 1, "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": provincial,
            "sharing_consent": "verbal", **REQUEST, **changes})
        return await referrals.refer(session, who, body, locale="zh-CN", how=How(ConsentMethod.VERBAL, who.user_id))


async def test_a_referral_keeps_its_request_with_the_code_as_the_list_spells_it(database: Database) -> None:
    """Every field of the request is stored as sent (stripped), the ICD-10 code normalised to the list's."""
    referral = await _refer(database, history="  高血压十年，吸烟四十年。\n")
    assert (referral.question, referral.working_diagnosis, referral.diagnosis_code, referral.history,
            referral.results, referral.title_wanted) == (
        REQUEST["question"], REQUEST["working_diagnosis"], "I20.0", "高血压十年，吸烟四十年。", REQUEST["results"],
        TitleWanted.ASSOCIATE_CHIEF)
    assert referral.state is ReferralState.SUBMITTED


@pytest.mark.parametrize(("changes", "field"), [
    ({"question": ""}, "question"),  # nothing asked: the specialist would not know what to answer
    ({"question": "   "}, "question"),
    ({"diagnosis_code": "X99.99"}, "diagnosis_code"),  # not a code of the list in use
])
async def test_a_request_is_refused_naming_the_field(database: Database, changes: dict, field: str) -> None:
    """Each row: a referral sent with an empty or blank question, or with a diagnosis code not on the ICD-10 list in
    use, is refused naming the field at fault."""
    with pytest.raises(ValidationFailed) as refused:
        await _refer(database, **changes)
    assert field in refused.value.details["fields"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"question": "a\x00b"}, "question"),  # PostgreSQL refuses NUL; an escape would be invisible on paper
    ({"history": "\x1b[31mred"}, "history"),
    ({"title_wanted": "professor"}, "title_wanted"),
    ({"working_diagnosis": "x" * 501}, "working_diagnosis"),
])
def test_the_input_model_refuses_what_cannot_be_printed_or_is_not_offered(changes: dict, field: str) -> None:
    """Each row: the referral's input refuses a NUL or a terminal escape in a text field, a title not offered, or a
    working diagnosis over 500 characters, with one validation error, located at that field."""
    with pytest.raises(pydantic.ValidationError) as refused:
        ReferralCreate.model_validate({"patient_id": 1, "specialty": "cardiology", "urgency": "urgent",
                                       "target_hospital_id": 1, **REQUEST, **changes})
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


async def test_a_draft_needs_no_question_but_submitting_it_does(database: Database) -> None:
    """A draft may wait for the question; submitting it without one is refused, and the referrer writes it
    into the draft (and nobody else may, nor once it is sent)."""
    draft = await _refer(database, question="", submit=False)
    assert draft.state is ReferralState.DRAFT and draft.id is not None
    async with database.session() as session:
        li = await principal(session, "dr.li")
        with pytest.raises(ValidationFailed) as refused:
            await referrals.act(session, li, draft.id, referrals.ReferralAction.SUBMIT)
        assert list(refused.value.details["fields"]) == ["question"]
    async with database.session() as session:
        zhao = await principal(session, "coord.zhao")
        with pytest.raises(Forbidden):
            await referrals.edit_request(session, zhao, draft.id,
                                         ReferralRequestEdit.model_validate({**REQUEST, "question": "我的问题"}))
    async with database.session() as session:
        li = await principal(session, "dr.li")
        edited = await referrals.edit_request(session, li, draft.id, ReferralRequestEdit.model_validate(
            {**REQUEST, "question": "能否在县医院继续保守治疗？", "diagnosis_code": "i10"}))
        assert (edited.question, edited.diagnosis_code, edited.state) == (
            "能否在县医院继续保守治疗？", "I10", ReferralState.DRAFT)
    async with database.session() as session:
        li = await principal(session, "dr.li")
        sent = await referrals.act(session, li, draft.id, referrals.ReferralAction.SUBMIT)
        assert sent.state is ReferralState.SUBMITTED
    async with database.session() as session:
        li = await principal(session, "dr.li")
        with pytest.raises(Forbidden):
            await referrals.edit_request(session, li, draft.id, ReferralRequestEdit.model_validate(REQUEST))
        actions = (await session.exec(select(AuditEvent.action).where(
            AuditEvent.subject == f"referral:{draft.id}"))).all()
    assert "referral.request_edited" in actions


async def test_the_receiving_side_reads_the_request_only_while_consent_stands(database: Database) -> None:
    """The coordinator reads every field and the consent as given; once the patient withdraws, the heading
    stays (hospitals, doctor, specialty, title) and the patient and clinical content are withheld, the
    status saying withdrawn; the referring doctor still reads it all."""
    referral = await _refer(database)
    assert referral.id is not None
    async with database.session() as session:
        zhao = await principal(session, "coord.zhao")
        facts = await consultation_request.gather(session, zhao, referral.id)
    assert facts.clinical is not None and facts.clinical.question == REQUEST["question"]
    assert facts.clinical.patient_name.startswith("张伟") and facts.clinical.diagnosis_title("en")
    assert (facts.consent.status, facts.consent.method, facts.consent.recorded_by) == (
        "given", ConsentMethod.VERBAL, "李明 Li Ming")
    shown = facts.to_json("zh-CN")
    assert shown["working_diagnosis"]["code"] == "I20.0" and shown["title_wanted"] == "associate_chief"

    async with database.session() as session:
        consent = await referrals.sharing_consent(session, referral)
    assert consent is not None and consent.id is not None
    await consents.withdraw(database, None, consent.id, "user:1")
    async with database.session() as session:
        zhao = await principal(session, "coord.zhao")
        withheld = await consultation_request.gather(session, zhao, referral.id)
        li = await principal(session, "dr.li")
        own = await consultation_request.gather(session, li, referral.id)
    assert withheld.clinical is None and withheld.consent.status == "withdrawn"
    assert withheld.consent.withdrawn_at is not None
    data = withheld.to_json("en")
    assert data["patient"] is None and data["question"] is None and data["records_withheld"] is True
    assert REQUEST["question"] not in str(data) and "张伟" not in str(data)
    assert data["requesting_doctor"] == "李明 Li Ming" and data["title_wanted"] == "associate_chief"
    assert own.clinical is not None and own.consent.status == "withdrawn"


async def test_a_stranger_cannot_read_the_request(database: Database) -> None:
    """The request is the referral's: another county's doctor is refused, as for the referral."""
    referral = await _refer(database)
    assert referral.id is not None
    async with database.session() as session:
        chen = await principal(session, "dr.chen")
        with pytest.raises(Forbidden):
            await consultation_request.gather(session, chen, referral.id)


async def test_a_draft_without_consent_shows_none_on_file(database: Database) -> None:
    """A draft saved without a sharing consent reads as having none on file, not as given or withdrawn."""
    draft = await _refer(database, submit=False, sharing_consent=None)
    assert draft.id is not None
    async with database.session() as session:
        facts = await consultation_request.gather(session, await principal(session, "dr.li"), draft.id)
    assert facts.consent == consultation_request.SharingConsent("none")


async def test_reading_the_request_with_the_patient_is_audited(database: Database) -> None:
    """As the referral page's reads: ``patient.viewed``, naming the referral and the form it was read in;
    a read with the records withheld shows no patient and records nothing."""
    referral = await _refer(database)
    assert referral.id is not None
    async with database.session() as session:
        zhao = await principal(session, "coord.zhao")
        facts = await consultation_request.gather(session, zhao, referral.id)
    await consultation_request.audit_read(database, zhao, facts, "pdf")
    async with database.session() as session:
        entry = (await session.exec(select(AuditEvent).where(AuditEvent.action == "patient.viewed"))).one()
    assert (entry.actor, entry.subject) == (f"user:{zhao.user_id}", "patient:1")
    assert json.loads(entry.detail) == {"via": f"referral:{referral.id}", "format": "request-pdf"}


async def test_the_status_is_the_consent_in_force_when_a_newer_one_was_withdrawn(database: Database) -> None:
    """Two sharing consents on file, the newer withdrawn and the older standing (rows written before a withdrawal
    ended every standing record of it, which ``consents.withdraw`` now does): the request's status is the one in
    force, not the latest row, so it says given and shows the clinical content, as disclosure does."""
    referral = await _refer(database)
    assert referral.id is not None
    async with database.session() as session:
        first = await referrals.sharing_consent(session, referral)
        assert first is not None
        second = Consent(**first.model_dump(exclude={"id"}))
        second.withdrawn_at, second.withdrawn_by, second.standing_key = utcnow(), "user:1", None
        session.add(second)
        await session.commit()
        await session.refresh(second)
        assert second.id is not None and second.id > (first.id or 0)
    async with database.session() as session:
        facts = await consultation_request.gather(session, await principal(session, "coord.zhao"), referral.id)
    assert facts.consent.status == "given" and facts.clinical is not None
