"""The database layer on SQLite and on a real PostgreSQL: migrations, round trips, constraints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from server.db import Database, Outage, unreachable
from server.demo import seed_demo
from server.models import (
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    ConsultationParticipant,
    ConsultationStatus,
    Hospital,
    HospitalLevel,
    Role,
    User,
)


@pytest.fixture
async def database(database_url: str):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    await db.upgrade()
    yield db
    await db.close()


async def test_migrations_reach_head_and_match_the_models(database: Database) -> None:
    """A model change without a migration fails here, on both databases."""
    assert await database.current_revision() == Database.head_revision()
    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                       SQLModel.metadata))
    assert diff == []


async def test_upgrade_twice_is_harmless(database: Database) -> None:
    """Upgrading a database already at head again succeeds and leaves it at head, on both databases: an operator may run
    ``telemed db upgrade`` once too often."""
    await database.upgrade()
    assert await database.current_revision() == Database.head_revision()


async def test_times_come_back_aware_and_in_utc(database: Database) -> None:
    """A Beijing-time appointment is stored as the same instant on every database."""
    beijing = timezone(timedelta(hours=8))
    planned = datetime(2026, 12, 1, 9, 30, tzinfo=beijing)
    await seed_demo(database)
    async with database.session() as session:
        doctor = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        consultation = Consultation(title="t", hospital_id=doctor.hospital_id, planned_start=planned,
                                    created_by=doctor.id)
        session.add(consultation)
        await session.commit()
        consultation_id = consultation.id
    async with database.session() as session:
        loaded = await session.get(Consultation, consultation_id)
    assert loaded is not None
    assert loaded.planned_start == planned
    assert loaded.planned_start.tzinfo is not None and loaded.planned_start.utcoffset() == timedelta(0)
    assert loaded.status is ConsultationStatus.SCHEDULED


async def test_naive_datetimes_are_refused(database: Database) -> None:
    """A time without a time zone is refused at commit, on both databases, rather than stored as an instant nobody can
    be sure of."""
    await seed_demo(database)
    async with database.session() as session:
        doctor = (await session.exec(select(User).where(User.username == "dr.li"))).one()
        session.add(Consultation(title="t", hospital_id=doctor.hospital_id, planned_start=datetime(2026, 1, 1),
                                 created_by=doctor.id))
        with pytest.raises(sa.exc.StatementError, match="naive datetimes"):
            await session.commit()


async def test_demo_seed_is_idempotent(database: Database) -> None:
    """Seeding the demo says it seeded the first time and not the second, and leaves accounts of every role and the demo
    consultation's two participants, not twice as many."""
    assert await seed_demo(database) is True
    assert await seed_demo(database) is False
    async with database.session() as session:
        users = (await session.exec(select(User))).all()
        participants = (await session.exec(select(ConsultationParticipant))).all()
    assert {u.role for u in users} == set(Role)
    assert len(participants) == 2


async def test_usernames_are_unique(database: Database) -> None:
    """A second account with a taken username is refused by the database itself (an integrity error), on both
    databases."""
    await seed_demo(database)
    async with database.session() as session:
        hospital = (await session.exec(select(Hospital))).first()
        session.add(User(username="dr.li", display_name="x", password_hash="x", role=Role.SPECIALIST,
                         hospital_id=hospital.id))
        with pytest.raises(sa.exc.IntegrityError):
            await session.commit()


async def test_foreign_keys_are_enforced(database: Database) -> None:
    """SQLite ignores foreign keys unless told; the engine tells it."""
    async with database.session() as session:
        session.add(User(username="ghost", display_name="x", password_hash="x", role=Role.SPECIALIST,
                         hospital_id=424242))
        with pytest.raises(sa.exc.IntegrityError):
            await session.commit()


async def test_enums_are_checked_on_the_way_in(database: Database) -> None:
    """A hospital level written as text comes back as the enum member, and a level the enum does not know (village) is
    refused when the insert is made, on both databases."""
    async with database.session() as session:
        await session.exec(sa.insert(Hospital).values(name="h", level="county", region="r", timezone="Asia/Shanghai"))
        await session.commit()
        hospital = (await session.exec(select(Hospital))).one()
        assert hospital.level is HospitalLevel.COUNTY
        with pytest.raises(sa.exc.StatementError):
            await session.exec(sa.insert(Hospital).values(name="h2", level="village", region="r"))


async def test_ping_returns_while_the_database_answers(database: Database) -> None:
    """/readyz reports ready when ping returns: it must, on a live database, every time it is asked."""
    for _ in range(3):
        assert await database.ping() is None


@pytest.mark.parametrize("where", ["postgres-nothing-listening", "sqlite-cannot-open"])
async def test_ping_raises_at_once_when_the_database_cannot_answer(where: str, tmp_path: Path) -> None:
    """/readyz reports not ready only if ping raises: a server that refuses connections, or a database
    file that cannot be opened, must raise (the driver's error), and promptly, not hang the probe."""
    url = {"postgres-nothing-listening": "postgresql+asyncpg://nobody@127.0.0.1:9/none",  # port 9: refused
           "sqlite-cannot-open": f"sqlite+aiosqlite:///{tmp_path}"}[where]  # a directory, not a file
    unreachable = Database(url)
    try:
        async with asyncio.timeout(10):
            with pytest.raises((OSError, sa.exc.DBAPIError)):
                await unreachable.ping()
    finally:
        await unreachable.close()
        # After a failed open aiosqlite's worker thread is still closing; it must not outlive this loop.
        for thread in threading.enumerate():
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, 5)


async def test_created_at_defaults_to_now(database: Database) -> None:
    """A row committed without a created_at gets the current time, aware of its zone and within 30 s of now."""
    async with database.session() as session:
        hospital = Hospital(name="h", level=HospitalLevel.COUNTY, region="r")
        session.add(hospital)
        await session.flush()
        user = User(username="u", display_name="u", password_hash="x", role=Role.ADMIN, hospital_id=hospital.id)
        session.add(user)
        await session.commit()
        assert abs(user.created_at - datetime.now(UTC)) < timedelta(seconds=30)


async def test_recording_consents_move_into_consent_records_keeping_their_ids(database_url: str) -> None:
    """Recordings name the consents they relied on: the move to consent by purpose keeps every id, and a
    withdrawal row becomes the withdrawal of the consent it ended."""
    db = Database(database_url)
    try:
        await db.upgrade("0004")
        now = datetime(2026, 11, 1, tzinfo=UTC)
        async with db.engine.begin() as conn:  # the tables as revision 0004 had them
            await conn.execute(sa.text("INSERT INTO hospital (id, name, level, region, timezone) "
                                       "VALUES (1, 'h', 'county', 'r', 'Asia/Shanghai')"))
            await conn.execute(sa.text(
                "INSERT INTO user_account (id, username, display_name, password_hash, role, hospital_id, is_active, "
                "created_at) VALUES (1, 'u', 'u', 'x', 'county_doctor', 1, true, :now)"), {"now": now})
            await conn.execute(sa.text(
                "INSERT INTO consultation (id, title, hospital_id, planned_start, status, created_by, created_at) "
                "VALUES (1, 't', 1, :now, 'scheduled', 1, :now)"), {"now": now})
        rows = [(3, "user:1", 1, True, "2026-11-01 09:00:00"), (5, "user:1", 1, False, "2026-11-01 09:05:00"),
                (8, "user:1", 1, True, "2026-11-01 09:10:00"), (9, "guest:x", None, True, "2026-11-01 09:11:00")]
        async with db.engine.begin() as conn:
            for number, identity, user_id, given, at in rows:
                await conn.execute(sa.text(
                    "INSERT INTO recording_consent (id, consultation_id, identity, user_id, name, given, at) "
                    "VALUES (:id, 1, :identity, :user_id, 'n', :given, :at)"),
                    {"id": number, "identity": identity, "user_id": user_id, "given": given,
                     "at": datetime.fromisoformat(at)})
        await db.upgrade()
        async with db.session() as session:
            moved = (await session.exec(select(Consent).order_by(Consent.id))).all()
            template = await session.get(ConsentTemplate, moved[0].template_id)
            session.add(Consent(purpose=ConsentPurpose.VIDEO, template_id=template.id,
                                subject=ConsentSubject.PATIENT, identity="patient:1", name="n",
                                method=ConsentMethod.CLICKED))
            await session.commit()  # new ids continue after the moved ones
            newest = (await session.exec(select(Consent).order_by(Consent.id.desc()))).first()
        assert [(c.id, c.identity, c.subject, c.withdrawn_at is not None) for c in moved] == [
            (3, "user:1", ConsentSubject.PARTICIPANT, True), (8, "user:1", ConsentSubject.PARTICIPANT, False),
            (9, "guest:x", ConsentSubject.PATIENT, False)]
        assert moved[0].withdrawn_at == datetime(2026, 11, 1, 9, 5, tzinfo=UTC)
        assert (template.purpose, template.version) == (ConsentPurpose.RECORDING, 0)
        assert newest.id == 10
    finally:
        await db.close()


# ---- outages: which errors are the database being out of reach, and what is logged about them ----


def _raised_in(module: str, exc: BaseException) -> BaseException:
    """``exc`` as raised by code of ``module``, so its traceback runs through that module's frames."""
    namespace: dict = {"__name__": module}
    exec("def throw(exc):\n    raise exc\n", namespace)  # noqa: S102  (a fixed, local snippet)
    try:
        namespace["throw"](exc)
    except BaseException as caught:  # noqa: BLE001
        return caught
    raise AssertionError("unreachable")


def _wrapped(cls: type[sa.exc.DBAPIError], orig: BaseException, *, invalidated: bool = False) -> sa.exc.DBAPIError:
    return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)


OUTAGES = [
    ("refused while the pool connects", _raised_in("sqlalchemy.pool.base", ConnectionRefusedError(111, "refused"))),
    ("timed out in asyncpg's connect", _raised_in("asyncpg.connect_utils", TimeoutError())),
    ("cut mid-statement", _wrapped(sa.exc.DBAPIError, Exception("connection was closed"), invalidated=True)),
    ("cut mid-commit", _wrapped(sa.exc.InterfaceError, Exception("connection is closed"), invalidated=True)),
    ("PostgreSQL starting up", asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
    ("PostgreSQL out of connection slots", asyncpg.exceptions.TooManyConnectionsError("too many clients")),
    ("PostgreSQL shutting down, wrapped", _wrapped(sa.exc.OperationalError,
                                                   asyncpg.exceptions.AdminShutdownError("terminating"))),
    ("the pool exhausted", sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")),
    ("SQLite locked past busy_timeout",
     _wrapped(sa.exc.OperationalError, sqlite3.OperationalError("database is locked"))),
]
FAULTS = [
    ("a file that cannot be written", _raised_in("server.consultations.recordings", OSError(28, "No space left"))),
    ("a unique constraint", _wrapped(sa.exc.IntegrityError, asyncpg.exceptions.UniqueViolationError("duplicate"))),
    ("SQLite: a missing table", _wrapped(sa.exc.OperationalError, sqlite3.OperationalError("no such table: x"))),
    ("SQLite: a constraint", _wrapped(sa.exc.IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed"))),
    ("a bug", KeyError("id")),
]


@pytest.mark.parametrize(("what", "exc"), OUTAGES, ids=[what for what, _ in OUTAGES])
def test_outages_are_told_from_faults(what: str, exc: BaseException) -> None:
    """Guards the line between a 503 and a 500: a database out of reach is an outage (503, retry later)."""
    assert unreachable(exc), what


@pytest.mark.parametrize(("what", "exc"), FAULTS, ids=[what for what, _ in FAULTS])
def test_faults_are_not_outages(what: str, exc: BaseException) -> None:
    """...and a fault of ours, or a statement the database refused, stays a 500 with its traceback."""
    assert not unreachable(exc), what


REFUSED = ConnectionRefusedError(111, "Connect call failed")

# (time, event) -> the line logged, if any; "x" is a failure, "ok" a connection that works.
OUTAGE_LOGS = [
    ("one short outage: a warning, then an info line", [
        (0, "x", "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); answering 503 "
                 "until it is back"),
        (1, "x", None), (2, "x", None),
        (3, "ok", "database reachable again after 3.0 s (2 more failures meanwhile)"),
        (4, "ok", None)]),
    ("a long outage: reminded once a minute", [
        (0, "x", "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); answering 503 "
                 "until it is back"),
        (30, "x", None),
        (61, "x", "database still unreachable after 61 s (ConnectionRefusedError: [Errno 111] Connect call "
                  "failed); 2 failures since the last warning"),
        (70, "ok", "database reachable again after 70.0 s")]),
    ("a flapping database: one warning a minute, the rest counted", [
        (0, "x", "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); answering 503 "
                 "until it is back"),
        (1, "ok", "database reachable again after 1.0 s"),
        (2, "x", None), (3, "ok", None), (4, "x", None), (5, "ok", None),
        (70, "x", "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); answering 503 "
                  "until it is back; 3 failures since the last warning"),
        (71, "ok", "database reachable again after 1.0 s")]),
    ("an outage begun during the quiet minute is warned of when it outlasts it", [
        (0, "x", "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed); answering 503 "
                 "until it is back"),
        (1, "ok", "database reachable again after 1.0 s"),
        (10, "x", None),
        (65, "x", "database unreachable for 55 s (ConnectionRefusedError: [Errno 111] Connect call failed); "
                  "answering 503 until it is back; 2 failures since the last warning"),
        (66, "ok", "database reachable again after 56.0 s")]),
]


@pytest.mark.parametrize(("what", "events"), OUTAGE_LOGS, ids=[what for what, _ in OUTAGE_LOGS])
def test_an_outage_is_logged_once_not_per_request(what: str, events: list) -> None:
    """Guards the log through an outage: a line when it starts, a reminder a minute, a line when it ends,
    however many requests it fails (the issue counted sixty tracebacks)."""
    outage = Outage()
    for now, event, expected in events:
        line = outage.failed(REFUSED, now) if event == "x" else outage.answered(now)
        assert line == expected, (what, now)


async def test_a_deployment_with_records_upgrades_from_0012_keeping_them(database_url: str) -> None:
    """The migrations after 0012 run on a database that has rows in every table they alter: accounts that
    consultations and referrals refer to, referrals with appointments, report versions with renditions and
    amendments, invitations. (On SQLite a migration that copies such a table fails: foreign keys are on.)
    Every row is kept, with the new columns' defaults; of a consent standing twice, the older record is ended
    and the newer one keyed."""
    db = Database(database_url)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    statements = [
        "INSERT INTO hospital (id, name, level, region, timezone) VALUES (1, 'h', 'county', 'r', 'Asia/Shanghai')",
        "INSERT INTO user_account (id, username, display_name, password_hash, role, hospital_id, is_active, "
        "created_at) VALUES (1, 'dr', 'Dr', 'x', 'specialist', 1, true, :now)",
        "INSERT INTO patient (id, hospital_id, name, sex, created_at) VALUES (1, 1, 'p', 'unknown', :now)",
        "INSERT INTO consultation (id, title, hospital_id, planned_start, status, created_by, created_at) "
        "VALUES (1, 't', 1, :now, 'scheduled', 1, :now)",
        "INSERT INTO partnership (id, name, lead_hospital_id) VALUES (1, 'p', 1)",
        "INSERT INTO specialty (id, code, name_zh, name_en) VALUES (1, 'c', '心内科', 'Cardiology')",
        "INSERT INTO referral (id, patient_id, referring_doctor_id, referring_hospital_id, partnership_id, "
        "specialty_id, target_hospital_id, urgency, reason, summary, state, decline_reason, cancel_reason, opinion, "
        "recommendations, created_at, updated_at, version, consultation_id) VALUES (1, 1, 1, 1, 1, 1, 1, 'routine', "
        "'r', '', 'completed', '', '', 'o', '', :now, :now, 3, 1)",
        "INSERT INTO appointment (id, referral_id, specialist_id, starts_at, ends_at, status, booked_by, booked_at, "
        "cancel_reason, reminded) VALUES (1, 1, 1, :now, :now, 'booked', 1, :now, '', false)",
        "INSERT INTO consultation_report (id, referral_id, version, author_id, findings, diagnosis_code, "
        "diagnosis_text, recommendations, locale, created_at, file, pdf_sha256, signer_subject) VALUES "
        "(1, 1, 1, 1, 'f', 'I20.8', 'd', '', 'zh-CN', :now, 'a.sealed', 'aa', 's')",
        "INSERT INTO consultation_report (id, referral_id, version, author_id, findings, diagnosis_code, "
        "diagnosis_text, recommendations, locale, created_at, file, pdf_sha256, signer_subject, supersedes_id) "
        "VALUES (2, 1, 2, 1, 'f2', 'I20.8', 'd', '', 'zh-CN', :now, 'b.sealed', 'bb', 's', 1)",
        "INSERT INTO consultation_report_rendition (id, report_id, locale, file, pdf_sha256) "
        "VALUES (1, 1, 'en', 'c.sealed', 'cc')",
        "INSERT INTO patient_invitation (id, consultation_id, patient_id, created_by, created_at, expires_at) "
        "VALUES (1, 1, 1, 1, :now, :now)",
        "INSERT INTO recording (id, consultation_id, file, status, started_by, started_at, tracks, participants, "
        "consent_ids) VALUES (1, 1, '1/a.rec', 'recording', 'user:1', :now, '[]', '[]', '[]')",
        "INSERT INTO consent_template (id, purpose, version, locale, title, body, sha256, published_at) "
        "VALUES (1, 'recording', 1, 'zh-CN', 't', 'b', 's', :now)",
        *(f"INSERT INTO consent (id, purpose, template_id, subject, identity, user_id, patient_id, name, "
          f"consultation_id, referral_id, method, given_at, ip, user_agent, withdrawn_at, withdrawn_by) VALUES "
          f"({values}, '')" for values in [
              # the same consent standing twice (two gives at once), one withdrawn, one standing alone
              "1, 'recording', 1, 'participant', 'user:1', 1, NULL, 'Dr', 1, NULL, 'clicked', :now, '', '', NULL",
              "2, 'recording', 1, 'participant', 'user:1', 1, NULL, 'Dr', 1, NULL, 'clicked', :later, '', '', NULL",
              "3, 'record_sharing', 1, 'patient', 'patient:1', NULL, 1, 'p', 1, 1, 'verbal', :now, '', '', :later",
              "4, 'record_sharing', 1, 'patient', 'patient:1', NULL, 1, 'p', 1, 1, 'verbal', :later, '', '', NULL"]),
    ]
    try:
        await db.upgrade("0012")
        async with db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement), {"now": now, "later": now + timedelta(minutes=1)})
        await db.upgrade()
        assert await db.current_revision() == Database.head_revision()
        async with db.engine.connect() as conn:
            counts = {table: (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
                      for table in ("user_account", "referral", "appointment", "consultation_report",
                                    "consultation_report_rendition", "patient_invitation", "recording")}
            user = (await conn.execute(sa.text(
                "SELECT licence_number, professional_title, licence_verified_at FROM user_account"))).one()
            referral = (await conn.execute(sa.text("SELECT question, title_wanted FROM referral"))).one()
            invitation = (await conn.execute(sa.text(
                "SELECT failed_identity_attempts, locked_at FROM patient_invitation"))).one()
            report = (await conn.execute(sa.text(
                "SELECT data_key_id, purged_at, supersedes_id FROM consultation_report WHERE id = 2"))).one()
            recording = (await conn.execute(sa.text("SELECT status, node FROM recording"))).one()
            consents = (await conn.execute(sa.select(  # (by the model: its times come back aware, on both)
                Consent.id, Consent.withdrawn_at, Consent.withdrawn_by, Consent.standing_key)
                .order_by(Consent.id))).all()
        assert counts == {"user_account": 1, "referral": 1, "appointment": 1, "consultation_report": 2,
                          "consultation_report_rendition": 1, "patient_invitation": 1, "recording": 1}
        assert tuple(user) == ("", "none", None), "existing clinicians start unverified"
        assert tuple(referral) == ("", "any") and tuple(invitation) == (0, None)
        assert tuple(report) == (None, None, 1), "older reports stay under the deployment's key"
        assert tuple(recording) == ("recording", None), "a recording made before names no node"
        later = now + timedelta(minutes=1)
        assert [tuple(row) for row in consents] == [
            (1, later, "user:1", None),  # the older of the two, ended as a newer give would end it
            (2, None, "", "recording|user:1|consultation:1"),
            (3, later, "", None),
            (4, None, "", "record_sharing|patient:1|referral:1")], "one standing record per consent, keyed"
    finally:
        await db.close()
