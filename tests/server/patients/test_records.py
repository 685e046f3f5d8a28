"""The patient operations called directly, on the demo database: who may register, look up and view a
record, each audited in the transaction that does it, and a change that fails leaves no entry behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, RECORDING_KEY
from server.audit import trail as audit
from server.db import Database
from server.errors import Conflict, Forbidden, ValidationFailed
from server.models import AuditEvent, Patient, Role, User
from server.patients import records
from server.patients.inputs import NewPatient, PatientSearch
from server.permissions import Principal

NATIONAL_ID = "11010519491231002X"
DEMO_PATIENT = 1  # 张伟 Zhang Wei, of the Qingshan county hospital, where dr.li works

Operation = Callable[..., Awaitable[object]]
OPERATIONS: dict[str, Operation] = {
    "register": lambda session, who, key: records.register(session, who, NewPatient(name="王秀英",
                                                                                  national_id=NATIONAL_ID), key),
    "look_up": lambda session, who, key: records.look_up(session, who, key, PatientSearch(national_id=NATIONAL_ID)),
    "view": lambda session, who, key: records.view(session, who, DEMO_PATIENT, via="test"),
}


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


def key_of(client: TestClient) -> bytes:
    return records.id_key(client.app[RECORDING_KEY])


async def state(database: Database) -> tuple[list[int | None], list[tuple[str, str, str]]]:
    """The patients' ids and the audit trail as (actor, action, subject): what an operation may change."""
    async with database.session() as session:
        patients = [p.id for p in (await session.exec(select(Patient).order_by(Patient.id))).all()]
    return patients, [(e.actor, e.action, e.subject) for e in await audit.trail(database)]


@pytest.mark.parametrize(("operation", "username"), [
    *[(operation, username) for operation in OPERATIONS for username in ("admin", "auditor")],
    ("view", "dr.chen"),  # a county doctor of another hospital, with no referral of the patient
    ("view", "coord.zhao"),  # the lead hospital's coordinator, likewise
    ("view", "dr.wang"),
])
async def test_the_rule_refuses_and_nothing_is_written(client: TestClient, operation: str, username: str) -> None:
    """Administrators and auditors never touch health records; other hospitals see a record only through a
    referral the patient agreed to share. A refusal writes nothing, not even the audit entry."""
    database = client.app[DATABASE]
    who, before = await principal(database, username), await state(database)
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await OPERATIONS[operation](session, who, key_of(client))
    assert await state(database) == before


@pytest.mark.parametrize(("operation", "username", "action"), [
    ("register", "dr.li", "patient.registered"),
    ("register", "dr.wang", "patient.registered"),
    ("register", "coord.zhao", "patient.registered"),
    ("look_up", "dr.li", "patient.searched"),
    ("look_up", "coord.zhao", "patient.searched"),
    ("view", "dr.li", "patient.viewed"),
])
async def test_the_rule_lets_clinicians_and_coordinators_act_and_each_act_is_audited(
        client: TestClient, operation: str, username: str, action: str) -> None:
    """The other side of the rule: those it lets through, each leaving exactly one entry of what they did."""
    database = client.app[DATABASE]
    who = await principal(database, username)
    _, before = await state(database)
    async with database.session() as session:
        await OPERATIONS[operation](session, who, key_of(client))
    _, after = await state(database)
    assert after[:len(before)] == before and [(a, b) for a, b, _ in after[len(before):]] == [
        (f"user:{who.user_id}", action)]


async def test_a_registration_lands_with_its_entry(client: TestClient) -> None:
    """A registered patient belongs to the registrar's hospital and is stored with the national ID's last four
    characters and a keyed hash of it, a lower-case x read as X; the latest audit entry is its patient.registered by
    the registrar."""
    database = client.app[DATABASE]
    who = await principal(database, "dr.li")
    async with database.session() as session:
        patient = await records.register(session, who, NewPatient(name="王秀英", national_id=NATIONAL_ID.lower()),
                                         key_of(client))
    assert (patient.hospital_id, patient.national_id_last4) == (who.hospital_id, "002X")
    async with database.session() as session:
        stored = await session.get(Patient, patient.id)
        entry = (await session.exec(select(AuditEvent).order_by(sa.desc(AuditEvent.id)))).first()
    assert stored is not None and stored.national_id_hash == records.national_id_hash(key_of(client), NATIONAL_ID)
    assert entry is not None and (entry.actor, entry.action, entry.subject) == (
        f"user:{who.user_id}", "patient.registered", f"patient:{patient.id}")


async def test_a_search_is_audited_with_what_it_found_never_the_id(client: TestClient) -> None:
    """A look-up by national ID finds the patient and is audited once, naming the patient found but never the ID
    searched for; listing the hospital's patients without an ID is not audited as a search."""
    database = client.app[DATABASE]
    who = await principal(database, "dr.li")
    async with database.session() as session:
        patient = await records.register(session, who, NewPatient(name="王秀英", national_id=NATIONAL_ID),
                                         key_of(client))
    async with database.session() as session:
        found = (await records.look_up(session, who, key_of(client), PatientSearch(national_id=NATIONAL_ID))).items
        listed = (await records.look_up(session, who, key_of(client), PatientSearch())).items
    assert [p.id for p in found] == [patient.id]
    assert patient.id in [p.id for p in listed] and DEMO_PATIENT in [p.id for p in listed]
    searches = [e for e in await audit.trail(database) if e.action == "patient.searched"]
    assert len(searches) == 1, "listing the hospital's patients by name is not a search by ID"
    assert str(patient.id) in searches[0].detail and NATIONAL_ID not in searches[0].detail


async def test_a_view_is_audited_saying_where_it_was_shown(client: TestClient) -> None:
    """The patient's own hospital is shown the phone number, and the view leaves one patient.viewed entry naming the
    patient and where it was shown."""
    database = client.app[DATABASE]
    who = await principal(database, "dr.li")
    async with database.session() as session:
        patient = await records.view(session, who, DEMO_PATIENT, via="test")
    assert "phone" in records.shown_to(who, patient), "the patient's own hospital is shown the phone number"
    views = [e for e in await audit.trail(database) if e.action == "patient.viewed"]
    assert [(e.subject, e.detail) for e in views] == [(f"patient:{DEMO_PATIENT}", '{"via": "test"}')]


async def test_a_registration_that_fails_in_the_database_leaves_neither_row_nor_entry(client: TestClient) -> None:
    """The entry is written by the change's own commit: when the insert fails (here a hospital that does
    not exist), the entry goes with it."""
    database = client.app[DATABASE]
    before = await state(database)
    nowhere = Principal(user_id=1, role=Role.COUNTY_DOCTOR, hospital_id=999)
    async with database.session() as session:
        with pytest.raises(sa.exc.IntegrityError):
            await records.register(session, nowhere, NewPatient(name="王秀英"), key_of(client))
    assert await state(database) == before


@pytest.mark.parametrize(("body", "error"), [
    (NewPatient(name="王秀英", national_id="110105194912310021"), ValidationFailed),  # wrong check character
    (NewPatient(name="another spelling", national_id=NATIONAL_ID), Conflict),  # already registered here
])
async def test_a_refused_registration_writes_nothing(client: TestClient, body: NewPatient,
                                                      error: type[Exception]) -> None:
    """Each row: a registration refused for a national ID with a wrong check character, or for one already registered
    at the hospital, writes neither a patient nor an audit entry."""
    database = client.app[DATABASE]
    who = await principal(database, "dr.li")
    async with database.session() as session:
        await records.register(session, who, NewPatient(name="王秀英", national_id=NATIONAL_ID), key_of(client))
    before = await state(database)
    async with database.session() as session:
        with pytest.raises(error):
            await records.register(session, who, body, key_of(client))
    assert await state(database) == before
