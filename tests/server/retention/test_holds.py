"""Legal holds as a service: administrators and auditors place and release them with a reason, each audited;
everyone else is refused; a hold names a patient or a consultation that exists, never both."""

from __future__ import annotations

import json

import pydantic
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.errors import Conflict, Forbidden, NotFound
from server.models import AuditEvent
from server.retention import holds
from server.retention.holds import PlaceHold, ReleaseHold

from .test_purge import who


async def test_a_hold_is_placed_listed_shown_and_released_with_audit(client: TestClient) -> None:
    """An auditor places a hold on a patient (the reason trimmed); it stands and is listed as active until an
    administrator releases it with a reason; released, it stays listed, a second release is a conflict, and the trail
    holds one placed and one released entry, each with its reason."""
    database = client.app[DATABASE]
    auditor = await who(client, "auditor")
    async with database.session() as session:
        hold = await holds.place(session, auditor, PlaceHold(patient_id=1, reason="  Complaint 17  "))
        assert hold.reason == "Complaint 17"
        assert [h.id for h in await holds.standing_on(session, patient_id=1)] == [hold.id]
        assert [h.id for h in await holds.list_all(session, auditor, active_only=True)] == [hold.id]
        released = await holds.release(session, await who(client, "admin"), hold.id, ReleaseHold(reason="Closed"))
        assert released.released_at is not None and released.release_reason == "Closed"
        assert await holds.standing_on(session, patient_id=1) == []
        assert [h.id for h in await holds.list_all(session, auditor)] == [hold.id], "released ones stay listed"
        with pytest.raises(Conflict):
            await holds.release(session, auditor, hold.id, ReleaseHold(reason="again"))
        entries = (await session.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("hold."))
                                      .order_by(col(AuditEvent.id)))).all()
    assert [(e.action, e.subject, json.loads(e.detail)["reason"]) for e in entries] == [
        ("hold.placed", "patient:1", "Complaint 17"), ("hold.released", "patient:1", "Closed")]


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao"])
async def test_clinicians_and_coordinators_may_not_place_list_or_release(client: TestClient, username: str) -> None:
    """Each row: a county doctor, a specialist or a coordinator is refused placing a hold, listing the holds, and
    releasing one an administrator placed."""
    database = client.app[DATABASE]
    async with database.session() as session:
        hold = await holds.place(session, await who(client, "admin"), PlaceHold(consultation_id=1, reason="x"))
        caller = await who(client, username)
        with pytest.raises(Forbidden):
            await holds.place(session, caller, PlaceHold(patient_id=1, reason="mine"))
        with pytest.raises(Forbidden):
            await holds.list_all(session, caller)
        with pytest.raises(Forbidden):
            await holds.release(session, caller, hold.id, ReleaseHold(reason="mine"))


@pytest.mark.parametrize("body", [
    {"reason": "neither"},
    {"patient_id": 1, "consultation_id": 1, "reason": "both"},
    {"patient_id": 1, "reason": "   "},
    {"patient_id": 0, "reason": "bad id"},
    {"patient_id": 1, "reason": "x" * 501},
])
def test_a_hold_names_one_subject_and_a_reason(body: dict) -> None:
    """Each row: a hold that names neither a patient nor a consultation, or both, or has a blank or over-long reason,
    or a patient id of 0, is refused by the input model."""
    with pytest.raises(pydantic.ValidationError):
        PlaceHold.model_validate(body)


async def test_a_hold_on_nobody_is_404(client: TestClient) -> None:
    """A hold on a patient or a consultation that does not exist, and the release of a hold that does not exist, are
    refused as not found."""
    async with client.app[DATABASE].session() as session:
        admin = await who(client, "admin")
        with pytest.raises(NotFound):
            await holds.place(session, admin, PlaceHold(patient_id=999, reason="x"))
        with pytest.raises(NotFound):
            await holds.place(session, admin, PlaceHold(consultation_id=999, reason="x"))
        with pytest.raises(NotFound):
            await holds.release(session, admin, 999, ReleaseHold(reason="x"))


async def test_two_releases_at_once_release_once(client: TestClient) -> None:
    """Two people releasing the same hold at once both read it as standing: one releases it, the other is
    told it was released already, and the trail says it once."""
    database = client.app[DATABASE]
    auditor, admin = await who(client, "auditor"), await who(client, "admin")
    async with database.session() as session:
        hold = await holds.place(session, auditor, PlaceHold(patient_id=1, reason="Complaint 18"))
    async with database.session() as first, database.session() as second:
        assert (await first.get(type(hold), hold.id)).released_at is None  # first has read it standing
        await holds.release(second, admin, hold.id, ReleaseHold(reason="Closed"))
        with pytest.raises(Conflict):
            await holds.release(first, auditor, hold.id, ReleaseHold(reason="Also closed"))
    async with database.session() as session:
        released = (await session.exec(select(AuditEvent).where(AuditEvent.action == "hold.released"))).all()
    assert [json.loads(e.detail)["reason"] for e in released] == ["Closed"]
