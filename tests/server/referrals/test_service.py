"""Finding referrals: the inbox and the rest list each referral once, a page at a time in the API's order,
and a search by the patient's name never finds a referral whose records the caller may not see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import col, select

from server.consent import templates as consent_templates
from server.consent.records import How
from server.db import Database
from server.demo import seed_demo
from server.errors import Conflict, Forbidden
from server.models import (
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Patient,
    Referral,
    ReferralState,
    Urgency,
)
from server.referrals import service as referrals
from server.referrals import views
from server.referrals.flow import WAITING_FOR_RECEIVER, ReferralAction
from server.referrals.inputs import ReferralCreate, ReferralSearch

from .test_views import BASE, add_referrals, principal

SEARCH = ReferralSearch()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The demo partnership with its consent texts, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    await consent_templates.publish(database)
    yield database
    await database.close()


async def _all_pages(database: Database, username: str, search: ReferralSearch,
                     box: referrals.Box) -> list[Referral]:
    found: list[Referral] = []
    async with database.session() as session:
        who = await principal(session, username)
        first = await referrals.find(session, who, search, box=box)
        found += first.items
        for page in range(2, first.pages + 1):
            key = "inbox_page" if box == "inbox" else "page"
            found += (await referrals.find(session, who, search.model_copy(update={key: page}), box=box)).items
        assert len(found) == first.total
    return found


@pytest.mark.parametrize("username", ["coord.zhao", "dr.li", "dr.wang"])
async def test_the_inbox_and_the_rest_list_each_referral_once(database: Database, username: str) -> None:
    """A coordinator's page showed the inbox and then every referral, so each waiting one twice: the rest now
    leaves out what the inbox lists. Together, page by page, they are the caller's list, each referral once,
    in the API's order."""
    await add_referrals(database, 70)
    inbox = await _all_pages(database, username, SEARCH, "inbox")
    others = await _all_pages(database, username, SEARCH, "others")
    async with database.session() as session:
        who = await principal(session, username)
        everything = await referrals.list_for(session, who)
        waiting = await referrals.list_for(session, who, inbox=True)
    assert [r.id for r in inbox] == [r.id for r in waiting]
    assert [r.id for r in others] == [r.id for r in everything if r.state not in WAITING_FOR_RECEIVER]
    assert not {r.id for r in inbox} & {r.id for r in others}
    assert sorted(r.id for r in inbox + others) == sorted(r.id for r in everything)
    assert len(everything) > referrals.PAGE_SIZE or username != "coord.zhao", "more than a page"


async def test_a_page_holds_page_size_rows_and_counts_them_all(database: Database) -> None:
    """The first page of the coordinator's other referrals is full and the page count covers the total; a page beyond
    the last is empty but still gives the total."""
    await add_referrals(database, 70)
    async with database.session() as session:
        who = await principal(session, "coord.zhao")
        first = await referrals.find(session, who, SEARCH, box="others")
        beyond = await referrals.find(session, who, SEARCH.model_copy(update={"page": first.pages + 1}), box="others")
    assert len(first.items) == referrals.PAGE_SIZE and first.pages == -(-first.total // referrals.PAGE_SIZE)
    assert beyond.items == [] and beyond.total == first.total


async def test_a_name_finds_only_referrals_whose_records_the_caller_sees(database: Database) -> None:
    """The coordinator searches by a part of a patient's name: only referrals shared with their hospital
    match (a withheld one would confirm the name it hides); the referring doctor finds their own, all."""
    await add_referrals(database, 40)
    for username in ("coord.zhao", "dr.chen"):
        search = ReferralSearch(name="patient 1")
        found = await _all_pages(database, username, search, "inbox") + \
            await _all_pages(database, username, search, "others")
        async with database.session() as session:
            who = await principal(session, username)
            described = await views.describe_many(session, who, await referrals.list_for(session, who))
        expected = {d["id"] for d in described if d["patient"] and "patient 1" in d["patient"]["name"].lower()}
        assert {r.id for r in found} == expected and expected, username
        if username == "coord.zhao":
            withheld = {d["id"] for d in described if d["records_withheld"]}
            async with database.session() as session:
                names = {r.id: (await session.get(Patient, r.patient_id)).name
                         for r in await referrals.list_for(session, who) if r.id in withheld}
            assert any("Patient 1" in name for name in names.values()), "a withheld match exists, and is not found"


async def test_a_name_is_matched_literally_and_a_state_filters(database: Database) -> None:
    """A name search for % or _ finds nothing (taken literally, not as wildcards); a state filter lists only
    referrals in that state, and a waiting state finds none outside the inbox."""
    await add_referrals(database, 30)
    async with database.session() as session:
        who = await principal(session, "dr.li")
        assert (await referrals.find(session, who, ReferralSearch(name="%"), box="all")).total == 0
        assert (await referrals.find(session, who, ReferralSearch(name="_"), box="all")).total == 0
        drafts = await referrals.find(session, who, ReferralSearch(state=ReferralState.DRAFT), box="all")
        assert drafts.total > 0 and {r.state for r in drafts.items} == {ReferralState.DRAFT}
        waiting = await referrals.find(session, who, ReferralSearch(state=ReferralState.SUBMITTED), box="others")
        assert waiting.total == 0, "a waiting state is the inbox's, not the rest's"


async def test_a_referral_with_several_consents_is_found_once(database: Database) -> None:
    """A patient who withdrew their consent to sharing and gave it again has two consent rows on the referral:
    a search that joined them listed the referral twice."""
    await add_referrals(database, 4)  # the fourth: dr.chen's, to the provincial hospital, shared
    async with database.session() as session:
        referral = (await session.exec(select(Referral).where(Referral.reason == "Reason 3"))).one()
        template = (await session.exec(select(ConsentTemplate).where(
            ConsentTemplate.purpose == ConsentPurpose.RECORD_SHARING))).first()
        assert template is not None
        for withdrawn in (BASE - timedelta(hours=3), None, None):
            session.add(Consent(
                purpose=ConsentPurpose.RECORD_SHARING, template_id=template.id, subject=ConsentSubject.PATIENT,
                identity=f"patient:{referral.patient_id}", patient_id=referral.patient_id, name="Patient 3",
                referral_id=referral.id, method=ConsentMethod.VERBAL, recorded_by=referral.referring_doctor_id,
                given_at=BASE - timedelta(hours=4), withdrawn_at=withdrawn))
        await session.commit()
    found = await _all_pages(database, "coord.zhao", ReferralSearch(name="Patient 3"), "all")
    assert [r.id for r in found] == [referral.id]


@pytest.mark.parametrize("username", ["coord.zhao", "dr.wang"])
async def test_a_draft_is_neither_listed_nor_shown_to_the_receiving_side(database: Database, username: str) -> None:
    """Guards a draft staying its doctor's alone: the receiving hospital's coordinator and the specialist a draft
    names find no draft in their lists (the inbox, the rest, a search by state) and are refused one by its
    number, while the referring doctor lists theirs."""
    await add_referrals(database, 30)
    async with database.session() as session:
        who = await principal(session, username)
        listed = await referrals.list_for(session, who)
        found = await referrals.find(session, who, ReferralSearch(state=ReferralState.DRAFT), box="all")
        drafts = (await session.exec(select(Referral).where(Referral.state == ReferralState.DRAFT))).all()
        assert listed and drafts, "the receiving side has referrals, and drafts exist"
        assert ReferralState.DRAFT not in {r.state for r in listed}
        assert found.total == 0
        for draft in drafts:
            assert draft.id is not None
            with pytest.raises(Forbidden):
                await referrals.load_visible(session, who, draft.id)
        li = await principal(session, "dr.li")
        assert ReferralState.DRAFT in {r.state for r in await referrals.list_for(session, li)}


async def test_two_submits_of_a_draft_at_once_send_it_once_with_one_consent(database: Database) -> None:
    """Guards a double tap on a draft's Submit (two requests recording the patient's consent at once): one sends
    the referral, the other is a 409 (`referral-changed`), never a 500 from the consent's unique key; exactly
    one consent stands."""
    async with database.session() as session:
        li = await principal(session, "dr.li")
        body = ReferralCreate(patient_id=1, specialty="cardiology", urgency=Urgency.URGENT, reason="Syncope",
                              target_hospital_id=1, question="Cardiac?", submit=False)
        draft = await referrals.refer(session, li, body, locale="en", how=How(ConsentMethod.VERBAL, li.user_id))
    assert draft.id is not None

    async def submit() -> Referral:
        async with database.session() as session:
            return await referrals.act(session, li, draft.id, ReferralAction.SUBMIT,
                                       sharing=referrals.SharingSaid(How(ConsentMethod.VERBAL, li.user_id), "en"))
    first, second = await asyncio.gather(submit(), submit(), return_exceptions=True)
    outcomes = sorted([first, second], key=lambda o: isinstance(o, Exception))
    assert isinstance(outcomes[0], Referral) and outcomes[0].state is ReferralState.SUBMITTED, outcomes
    assert isinstance(outcomes[1], Conflict) and outcomes[1].code == "referral-changed", outcomes
    async with database.session() as session:
        standing = (await session.exec(select(Consent).where(Consent.referral_id == draft.id,
                                                             col(Consent.withdrawn_at).is_(None)))).all()
    assert len(standing) == 1
