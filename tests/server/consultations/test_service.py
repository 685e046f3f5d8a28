"""Setting up a consultation as a service: who may, what is checked (all of it before anything is written),
and that the consultation and its audit entry are written together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.consultations import service as consultations
from server.consultations.inputs import NewConsultation
from server.errors import Forbidden, ValidationFailed
from server.models import AuditEvent, Consultation, User

from ..scheduling.test_hours import last_entry, principal


def _new(**changes: object) -> NewConsultation:
    body: dict = {"title": "多学科会诊 MDT", "participant_ids": [2, 7],
                  "planned_start": datetime.now(UTC) + timedelta(days=1), "duration_minutes": 45,
                  "patient_id": 1}
    return NewConsultation.model_validate({**body, **changes})


async def test_a_county_doctor_sets_up_a_multi_party_consultation(client: TestClient) -> None:
    """Two specialists of the partner hospital and the doctor take part; the planned end follows from the
    duration; the audit entry names the participants and is written with the consultation."""
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    body = _new()
    async with database.session() as session:
        created = await consultations.create(session, li, body)
    assert created.id is not None
    view = await _load(client, created.id)
    assert {u.username for u in view.participants} == {"dr.li", "dr.wang", "dr.zhou"}
    assert view.consultation.planned_end == body.planned_start + timedelta(minutes=45)
    assert view.consultation.hospital_id == li.hospital_id and view.patient is not None
    entry = await last_entry(database)
    assert entry is not None and entry.action == "consultation.created" and entry.consultation_id == created.id
    assert '"participants": [1, 2, 7]' in entry.detail


async def _load(client: TestClient, consultation_id: int) -> consultations.ConsultationView:
    async with client.app[DATABASE].session() as session:
        return await consultations.load(session, consultation_id)


@pytest.mark.parametrize(("changes", "field"), [
    ({"planned_start": datetime.now(UTC) - timedelta(minutes=1)}, "planned_start"),
    ({"participant_ids": [2, 999]}, "participant_ids"),
    ({"participant_ids": [4]}, "participant_ids"),  # a coordinator is not a clinician
    ({"patient_id": 999}, "patient_id"),
])
async def test_what_is_wrong_is_named_and_nothing_is_written(client: TestClient, changes: dict, field: str) -> None:
    """Each row: a start in the past, an unknown participant, a coordinator as participant or an unknown patient is
    refused naming that field, and neither a consultation nor an audit entry is written."""
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    before = await last_entry(database)
    async with database.session() as session:
        with pytest.raises(ValidationFailed) as refused:
            await consultations.create(session, li, _new(**changes))
    assert field in refused.value.details["fields"]
    async with database.session() as session:
        assert len((await session.exec(select(Consultation))).all()) == 1, "only the demo consultation"
    assert await last_entry(database) == before


async def test_a_disabled_account_cannot_be_invited(client: TestClient) -> None:
    """A specialist whose account is disabled cannot be made a participant: the consultation is refused naming
    participant_ids alone."""
    database = client.app[DATABASE]
    async with database.session() as session:
        zhou = (await session.exec(select(User).where(User.username == "dr.zhou"))).one()
        zhou.is_active = False
        session.add(zhou)
        await session.commit()
    li = await principal(database, "dr.li")
    async with database.session() as session:
        with pytest.raises(ValidationFailed) as refused:
            await consultations.create(session, li, _new())
    assert list(refused.value.details["fields"]) == ["participant_ids"]


@pytest.mark.parametrize("username", ["admin", "auditor"])
async def test_administrators_and_auditors_set_up_nothing(client: TestClient, username: str) -> None:
    """Each row: an administrator or an auditor is forbidden to set up a consultation; no consultation is added and the
    audit trail holds as many entries, and as many `consultation.created` ones, after the refusal as before it."""
    database = client.app[DATABASE]
    who = await principal(database, username)

    async def counts() -> tuple[int, int, int]:
        async with database.session() as session:
            entries = (await session.exec(select(AuditEvent.action))).all()
            rows = (await session.exec(select(Consultation.id))).all()
        return len(rows), len(entries), entries.count("consultation.created")

    before = await counts()
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await consultations.create(session, who, _new(patient_id=None))
    assert await counts() == before
