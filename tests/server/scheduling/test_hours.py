"""Clinic hours as a service: who may edit a specialist's hours, and that each change is audited with it."""

from __future__ import annotations

from datetime import date

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.db import Database
from server.errors import Forbidden, NotFound, ValidationFailed
from server.models import AuditEvent, User
from server.permissions import Principal
from server.scheduling import hours
from server.scheduling.hours import NewException, WeeklyHours


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def last_entry(database: Database) -> AuditEvent | None:
    async with database.session() as session:
        return (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1))).first()


MONDAY_MORNING = WeeklyHours.model_validate({"hours": [{"weekday": 0, "start": "09:00", "end": "11:00"}]})


@pytest.mark.parametrize("username", ["dr.zhou", "dr.li", "dr.chen", "admin", "auditor"])
async def test_others_may_neither_see_nor_change_the_hours(client: TestClient, username: str) -> None:
    """Only the specialist and their hospital's coordinators: another specialist, a county doctor, an
    administrator or an auditor is refused, and nothing is written or audited."""
    database = client.app[DATABASE]
    wang = await principal(database, "dr.wang")
    who = await principal(database, username)
    before = await last_entry(database)
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await hours.show(session, who, wang.user_id)
        with pytest.raises(Forbidden):
            await hours.set_weekly(session, who, wang.user_id, MONDAY_MORNING)
        with pytest.raises(Forbidden):
            await hours.add_exception(session, who, wang.user_id, NewException(day=date(2030, 1, 7)))
    async with database.session() as session:
        assert len((await hours.show(session, wang, wang.user_id)).weekly) == 12, "the demo hours stand"
    assert await last_entry(database) == before


@pytest.mark.parametrize("username", ["dr.wang", "coord.zhao"])
async def test_the_specialist_and_their_coordinator_change_the_hours_with_an_audit_entry(
        client: TestClient, username: str) -> None:
    """Each change is audited in its own transaction, naming who acted and whose hours changed."""
    database = client.app[DATABASE]
    wang = await principal(database, "dr.wang")
    who = await principal(database, username)
    async with database.session() as session:
        shown = await hours.set_weekly(session, who, wang.user_id, MONDAY_MORNING)
    assert shown.to_json()["hours"] == [{"weekday": 0, "start": "09:00", "end": "11:00"}]
    entry = await last_entry(database)
    assert entry is not None and (entry.actor, entry.action, entry.subject) == (
        f"user:{who.user_id}", "availability.set", f"user:{wang.user_id}")

    async with database.session() as session:
        shown = await hours.add_exception(session, who, wang.user_id, NewException(day=date(2030, 1, 7), note="course"))
    [exception] = shown.exceptions
    entry = await last_entry(database)
    assert entry is not None and (entry.action, entry.detail) == (
        "availability.exception", '{"available": false, "day": "2030-01-07"}')

    assert exception.id is not None
    async with database.session() as session:
        shown = await hours.remove_exception(session, who, wang.user_id, exception.id)
    assert shown.exceptions == []
    entry = await last_entry(database)
    assert entry is not None and entry.action == "availability.exception_removed"


async def test_overlapping_hours_are_refused_and_nothing_is_written(client: TestClient) -> None:
    """A refused change leaves the old hours and the audit trail as they were."""
    database = client.app[DATABASE]
    wang = await principal(database, "dr.wang")
    before = await last_entry(database)
    overlapping = WeeklyHours.model_validate({"hours": [{"weekday": 1, "start": "09:00", "end": "11:00"},
                                                        {"weekday": 1, "start": "10:00", "end": "12:00"}]})
    async with database.session() as session:
        with pytest.raises(ValidationFailed):
            await hours.set_weekly(session, wang, wang.user_id, overlapping)
    async with database.session() as session:
        assert len((await hours.show(session, wang, wang.user_id)).weekly) == 12
    assert await last_entry(database) == before


async def test_only_specialists_have_hours_and_only_their_own_exceptions_are_removed(client: TestClient) -> None:
    """A county doctor has no clinic hours to show (not found), and a specialist cannot remove another specialist's
    exception through their own hours: not found, and the other specialist's exception is still there."""
    database = client.app[DATABASE]
    wang, zhou, li = [await principal(database, name) for name in ("dr.wang", "dr.zhou", "dr.li")]
    async with database.session() as session:
        with pytest.raises(NotFound):
            await hours.show(session, li, li.user_id)
        shown = await hours.add_exception(session, zhou, zhou.user_id, NewException(day=date(2030, 1, 7)))
        kept = shown.exceptions[0].id
        assert kept is not None
        with pytest.raises(NotFound):
            await hours.remove_exception(session, wang, wang.user_id, kept)
    async with database.session() as session:
        after = await hours.show(session, zhou, zhou.user_id)
    assert [(e.id, e.day) for e in after.exceptions] == [(kept, date(2030, 1, 7))]
