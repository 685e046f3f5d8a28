"""The demo works on any day it is started: README's walk-through opens the demo consultation's room."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from server.app import prepare_database
from server.consent import records as consents
from server.consultations.room_window import RoomWindow
from server.db import Database
from server.demo import DEMO_TITLE, seed_demo, seed_demo_referrals
from server.models import (
    AuditEvent,
    Consent,
    Consultation,
    ConsultationStatus,
    Referral,
    ReferralState,
    TitleWanted,
    User,
    utcnow,
)
from server.referrals import service as referrals
from server.settings import Settings


async def test_a_later_start_plans_the_demo_consultation_for_now(tmp_path: Path) -> None:
    """Seeded days ago and long closed, the demo consultation's room is open again after the next
    ``telemed serve --demo`` (which seeds again), and nothing else is seeded twice."""
    settings = Settings.load(environ={}, data_dir=tmp_path / "var", port=0)
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    try:
        assert await seed_demo(database) is True
        async with database.session() as session:
            demo = (await session.exec(select(Consultation).where(Consultation.title == DEMO_TITLE))).one()
            demo.planned_start = utcnow() - timedelta(days=3)
            demo.status = ConsultationStatus.COMPLETED
            session.add(demo)
            await session.commit()
            assert utcnow() > RoomWindow.of(demo, settings).closes, "closed, as the next day finds it"

        assert await seed_demo(database) is False, "the partnership is not seeded twice"
        async with database.session() as session:
            [demo] = (await session.exec(select(Consultation).where(Consultation.title == DEMO_TITLE))).all()
        assert demo.status is ConsultationStatus.SCHEDULED
        window = RoomWindow.of(demo, settings)
        assert window.opens <= utcnow() and utcnow() + timedelta(hours=1) < window.closes
    finally:
        await database.close()


async def test_the_demo_referrals_carry_a_whole_request_once(tmp_path: Path) -> None:
    """``telemed demo`` and ``serve --demo`` add a sent referral with its consultation request in Chinese
    (question, diagnosis and code, history, results, title wanted) and the patient's consent, and a draft;
    starting again adds none."""
    settings = Settings.load(environ={}, data_dir=tmp_path / "var", port=0)
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    try:
        await seed_demo(database)
        assert await seed_demo_referrals(database) is True
        assert await seed_demo_referrals(database) is False, "not seeded twice"
        async with database.session() as session:
            sent, draft = (await session.exec(select(Referral).order_by(Referral.id))).all()
            consent = await referrals.sharing_consent(session, sent)
        assert sent.state is ReferralState.SUBMITTED and consent is not None
        assert "冠脉造影" in sent.question and sent.diagnosis_code == "I20.0" and sent.history and sent.results
        assert sent.title_wanted is TitleWanted.ASSOCIATE_CHIEF
        assert draft.state is ReferralState.DRAFT and draft.question == "" and draft.results
    finally:
        await database.close()


async def test_the_demo_patients_consent_to_sharing_is_on_the_audit_trail(tmp_path: Path) -> None:
    """The consent to sharing the demo seeds for its consultation is on the audit trail as any consent given:
    recorded by dr.li (verbal), for the patient; the trail of a fresh demo names every consent it holds. Once
    withdrawn, the next start does not give it again (nor write that dr.li recorded it)."""
    settings = Settings.load(environ={}, data_dir=tmp_path / "var", port=0)
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    try:
        await seed_demo(database)
        async with database.session() as session:
            [consent] = (await session.exec(select(Consent))).all()
            entries = (await session.exec(select(AuditEvent).where(AuditEvent.action == "consent.given"))).all()
            li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        assert [e.subject for e in entries] == [f"consent:{consent.id}"]
        assert entries[0].actor == f"user:{li.id}" and json.loads(entries[0].detail)["for"] == consent.identity

        assert consent.id is not None
        await consents.withdraw(database, None, consent.id, consent.identity)
        await seed_demo(database)  # the next start: the withdrawal stands, and nobody is said to have given it again
        async with database.session() as session:
            assert len((await session.exec(select(Consent))).all()) == 1
            assert len((await session.exec(select(AuditEvent).where(AuditEvent.action == "consent.given"))).all()) == 1
    finally:
        await database.close()
