"""A patient's consent recorded and withdrawn by a clinician, as services: who may, and the audit entry
written with the record."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from server.appkeys import DATABASE
from server.consent import records as consents
from server.consent import templates as consent_templates
from server.consent.records import How, VerbalConsent
from server.consent.rules import Consenter, Scope, patient_identity
from server.db import Database
from server.demo import seed_demo
from server.errors import Conflict, Forbidden
from server.models import (
    AuditEvent,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    User,
)
from server.permissions import Principal

VIDEO = VerbalConsent(purpose=ConsentPurpose.VIDEO)


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def demo_consultation(database: Database) -> int:
    async with database.session() as session:
        found = (await session.exec(select(Consultation.id))).first()
    assert found is not None
    return found


async def demo_patient(session: AsyncSession, consultation_id: int) -> Consenter:
    """The demo consultation's patient, as one who consents on their own device."""
    consultation = await session.get(Consultation, consultation_id)
    assert consultation is not None
    return Consenter(ConsentSubject.PATIENT, patient_identity(consultation.patient_id), "张伟",
                     patient_id=consultation.patient_id)


async def audit_tail(database: Database) -> list[AuditEvent]:
    async with database.session() as session:
        return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


def verbal(who: Principal) -> How:
    return How(ConsentMethod.VERBAL, who.user_id, "127.0.0.1", "test")


@pytest.mark.parametrize("username", ["dr.zhou", "coord.zhao", "dr.chen", "admin", "auditor"])
async def test_only_a_participating_clinician_records_a_patients_verbal_consent(client: TestClient,
                                                                                username: str) -> None:
    """Those who may not join the consultation are refused, and nothing is written or audited."""
    database = client.app[DATABASE]
    who = await principal(database, username)
    consultation = await demo_consultation(database)
    before = await audit_tail(database)
    async with database.session() as session:
        kept = (await session.exec(select(Consent))).all()  # the demo's: the patient's consent to sharing
    with pytest.raises(Forbidden):
        await consents.record_verbal(database, None, who, consultation, VIDEO, locale="en", how=verbal(who))
    assert await audit_tail(database) == before
    async with database.session() as session:
        assert (await session.exec(select(Consent))).all() == kept


async def test_the_recorded_consent_names_the_clinician_and_is_audited_with_it(client: TestClient) -> None:
    """A participating doctor records a patient's verbal consent to video: the record names them as recorder, against
    the video text, and the audit entry names them, the consultation and the consent; consent to share records with
    the other hospital taking part is the consultation's (no referral), and the demo's already stands: the same one;
    a specialist of that other hospital may not record it (only the patient's own hospital does)."""
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    consultation = await demo_consultation(database)
    consent, template = await consents.record_verbal(database, None, li, consultation, VIDEO, locale="en",
                                                     how=verbal(li))
    assert (consent.method, consent.recorded_by, template.purpose) == (
        ConsentMethod.VERBAL, li.user_id, ConsentPurpose.VIDEO)
    entry = (await audit_tail(database))[-1]
    assert (entry.actor, entry.action, entry.consultation_id, entry.subject) == (
        f"user:{li.user_id}", "consent.given", consultation, f"consent:{consent.id}")
    sharing = VerbalConsent(purpose=ConsentPurpose.RECORD_SHARING)
    shared, _ = await consents.record_verbal(database, None, li, consultation, sharing, locale="zh-CN",
                                             how=verbal(li))  # the text the demo's was read in
    assert (shared.consultation_id, shared.referral_id, shared.withdrawn_at) == (consultation, None, None)
    assert (await audit_tail(database))[-1].subject == f"consent:{consent.id}", "the same consent: nothing written"
    wang = await principal(database, "dr.wang")
    with pytest.raises(Forbidden):
        await consents.record_verbal(database, None, wang, consultation, sharing, locale="en", how=verbal(wang))


@pytest.mark.parametrize("username", ["dr.zhou", "coord.zhao", "auditor"])
async def test_a_patients_consent_is_withdrawn_only_by_a_clinician_of_the_consultation(client: TestClient,
                                                                                       username: str) -> None:
    """Each row: a specialist who is no participant, a coordinator or an auditor is forbidden to withdraw a patient's
    consent, and nothing is audited; a participating specialist other than the doctor who recorded it withdraws it,
    named in the record and in the audit entry."""
    database = client.app[DATABASE]
    li, wang, other = [await principal(database, name) for name in ("dr.li", "dr.wang", username)]
    consultation = await demo_consultation(database)
    consent, _ = await consents.record_verbal(database, None, li, consultation, VIDEO, locale="en", how=verbal(li))
    assert consent.id is not None
    before = await audit_tail(database)
    with pytest.raises(Forbidden):
        await consents.withdraw_as(database, None, other, consent.id)
    assert await audit_tail(database) == before

    withdrawn = await consents.withdraw_as(database, None, wang, consent.id)
    assert withdrawn.withdrawn_at is not None and withdrawn.withdrawn_by == f"user:{wang.user_id}"
    entry = (await audit_tail(database))[-1]
    assert (entry.actor, entry.action, entry.subject) == (
        f"user:{wang.user_id}", "consent.withdrawn", f"consent:{consent.id}")


async def test_two_withdrawals_at_once_end_the_consent_once(database_url: str) -> None:
    """Guards concurrent withdrawals (the patient's click on their page and their doctor's button at the same moment),
    on SQLite and PostgreSQL: both read the consent standing, one ends it and the other is told 409
    ``consent-withdrawn``, and the audit trail says it was withdrawn once, by whoever won, as the row does."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    try:
        async with database.session() as session:
            demo = (await session.exec(select(Consent).where(
                Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.withdrawn_at).is_(None)))).one()
        assert demo.id is not None
        outcomes = await asyncio.gather(*(consents.withdraw(database, None, demo.id, by)
                                          for by in ("patient:1", "user:1")), return_exceptions=True)
        won = [o for o in outcomes if isinstance(o, Consent)]
        lost = [o for o in outcomes if not isinstance(o, Consent)]
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], Conflict), outcomes
        assert lost[0].code == "consent-withdrawn" and won[0].withdrawn_at is not None
        async with database.session() as session:
            row = await session.get(Consent, demo.id)
            entries = (await session.exec(select(AuditEvent).where(
                AuditEvent.action == "consent.withdrawn", AuditEvent.subject == f"consent:{demo.id}"))).all()
        assert row is not None and [e.actor for e in entries] == [row.withdrawn_by] == [won[0].withdrawn_by]
    finally:
        await database.close()


async def test_two_gives_of_the_same_consent_at_once_leave_one_standing(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the patient's click and their doctor's button giving the same consent at the same moment. Both find
    none standing (made certain here: each waits for the other before writing); the database lets one record
    stand, and the other give, made again, finds it: both answer that record, and the trail says consent.given
    once. Withdrawing it then leaves none standing (two would have let the patient back into the call), and
    their consent for another purpose (recording) stands on."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    try:
        consultation_id = await demo_consultation(database)
        scope = Scope(consultation_id=consultation_id)
        async with database.session() as session:
            patient = await demo_patient(session, consultation_id)
            video = await consent_templates.current(session, ConsentPurpose.VIDEO, "zh-CN")
            recording = await consent_templates.current(session, ConsentPurpose.RECORDING, "zh-CN")
        kept = await consents.give(database, None, recording, patient, scope, How(ConsentMethod.CLICKED))
        before = len(await audit_tail(database))
        first_reads: list[Consent | None] = []
        both_read = asyncio.Barrier(2)
        read = consents.standing_in

        async def standing_in_together(*args, **kwargs):  # type: ignore[no-untyped-def]
            found = await read(*args, **kwargs)
            if len(first_reads) < 2:
                first_reads.append(found)
                await both_read.wait()
            return found

        monkeypatch.setattr(consents, "standing_in", standing_in_together)
        given = await asyncio.gather(*(consents.give(database, None, video, patient, scope,
                                                     How(ConsentMethod.CLICKED)) for _ in range(2)))
        assert first_reads == [None, None], "both looked before either wrote"
        assert given[0].id == given[1].id
        async with database.session() as session:
            rows = (await session.exec(select(Consent).where(
                Consent.purpose == ConsentPurpose.VIDEO, Consent.identity == patient.identity))).all()
        assert [(row.id, row.withdrawn_at) for row in rows] == [(given[0].id, None)]
        assert [e.action for e in (await audit_tail(database))[before:]] == ["consent.given"]
        withdrawn = await consents.withdraw_own(database, None, ConsentPurpose.VIDEO, patient, scope)
        assert withdrawn is not None and withdrawn.id == given[0].id and withdrawn.standing_key is None
        async with database.session() as session:
            assert await read(session, ConsentPurpose.VIDEO, patient.identity, scope) is None
            assert (await read(session, ConsentPurpose.RECORDING, patient.identity, scope)).id == kept.id
    finally:
        await database.close()


async def test_consent_to_a_newer_text_replaces_the_older(database_url: str) -> None:
    """Guards ``give`` to a newer version of a consent's text: the older record is ended, by the person, and
    the new one alone stands; the same text given again writes nothing new."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    try:
        consultation_id = await demo_consultation(database)
        scope = Scope(consultation_id=consultation_id)
        async with database.session() as session:
            patient = await demo_patient(session, consultation_id)
            older = await consent_templates.current(session, ConsentPurpose.VIDEO, "zh-CN")
            newer = ConsentTemplate(purpose=ConsentPurpose.VIDEO, version=older.version + 1, locale="zh_CN",
                                    title="视频问诊知情同意（第二版）", body=older.body + "\n\n第二版。",
                                    sha256="0" * 64)
            session.add(newer)
            await session.commit()
        first = await consents.give(database, None, older, patient, scope, How(ConsentMethod.CLICKED))
        given = await consents.give(database, None, newer, patient, scope, How(ConsentMethod.CLICKED))
        again = await consents.give(database, None, newer, patient, scope, How(ConsentMethod.CLICKED))
        assert again.id == given.id != first.id
        async with database.session() as session:
            rows = {c.id: c for c in (await session.exec(select(Consent).where(
                Consent.purpose == ConsentPurpose.VIDEO, Consent.identity == patient.identity))).all()}
        assert set(rows) == {first.id, given.id}
        assert rows[first.id].withdrawn_at is not None and rows[first.id].withdrawn_by == patient.identity
        assert rows[given.id].withdrawn_at is None and rows[given.id].template_id == newer.id
    finally:
        await database.close()
