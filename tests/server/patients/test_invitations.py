"""The invitation operations called directly, on the demo database: only the consultation's clinicians
invite, list and revoke; each change lands with its audit entry or not at all; a revocation tells the room."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, KEYS, SETTINGS
from server.audit import trail as audit
from server.db import Database, SyncSession
from server.errors import Conflict, Forbidden, NotFound
from server.models import Consultation, ConsultationParticipant, PatientInvitation, User, utcnow
from server.patients import invitations
from server.permissions import Principal
from signaling.events import Expelling, RoomEvent

CONSULTATION = 1  # the demo's: dr.li and dr.wang take part, patient 1 is its patient


class Rooms:
    """A RoomNotifier that keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[tuple[int, RoomEvent]] = []

    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        self.told.append((consultation_id, event))


async def principal(database: Database, username: str, *, seated: bool = False) -> Principal:
    """The demo user as the rules see them; ``seated`` makes them a participant of the consultation first."""
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        assert user.id is not None
        if seated:
            session.add(ConsultationParticipant(consultation_id=CONSULTATION, user_id=user.id))
            await session.commit()
    return Principal(user.id, user.role, user.hospital_id)


async def state(database: Database) -> tuple[list[tuple[int | None, bool]], list[tuple[str, str, str]]]:
    """The invitations (id, revoked) and the audit trail as (actor, action, subject)."""
    async with database.session() as session:
        rows = (await session.exec(select(PatientInvitation).order_by(PatientInvitation.id))).all()
    return ([(row.id, row.revoked_at is not None) for row in rows],
            [(e.actor, e.action, e.subject) for e in await audit.trail(database)])


async def invite(client: TestClient, who: Principal) -> tuple[PatientInvitation, str]:
    async with client.app[DATABASE].session() as session:
        return await invitations.create(session, who, CONSULTATION, settings=client.app[SETTINGS],
                                        keys=client.app[KEYS])


@contextmanager
def invitation_commits_fail() -> Iterator[None]:
    """A commit of a session holding an invitation fails after the audit trail has added its entry (its
    listener runs first): a database lost at the last moment. Other commits, such as an audit entry written
    on its own, still succeed, so an entry kept apart from its change would show."""
    def fail(session: SyncSession) -> None:
        if any(isinstance(row, PatientInvitation) for row in session.identity_map.values()):
            raise RuntimeError("the database went away")
    sa.event.listen(SyncSession, "before_commit", fail)
    try:
        yield
    finally:
        sa.event.remove(SyncSession, "before_commit", fail)


REFUSED = [
    ("dr.chen", False),  # a clinician, not in this consultation
    ("dr.zhou", False),  # a specialist of the hospital, not in this consultation
    ("auditor", False),
    ("coord.zhao", True),  # in the consultation, but coordinators organise; they do not invite
    ("admin", True),
]


@pytest.mark.parametrize(("username", "seated"), REFUSED)
async def test_only_the_consultations_clinicians_invite(client: TestClient, username: str, seated: bool) -> None:
    """Each row: someone who is not a clinician of the consultation (a county doctor or a specialist outside it, the
    auditor, a coordinator or an administrator even when seated in it) may neither invite its patient nor list its
    invitations, and the refusal writes no invitation or audit entry."""
    database = client.app[DATABASE]
    who = await principal(database, username, seated=seated)
    before = await state(database)
    with pytest.raises(Forbidden):
        await invite(client, who)
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await invitations.list_for(session, who, CONSULTATION)
    assert await state(database) == before, "a refusal writes nothing"


@pytest.mark.parametrize(("username", "seated"), REFUSED)
async def test_only_the_consultations_clinicians_revoke(client: TestClient, username: str, seated: bool) -> None:
    """Each row: the same people cannot revoke a clinician's invitation: refused, the invitation stays unrevoked with
    no audit entry, and the room is told nothing."""
    database = client.app[DATABASE]
    invitation, _ = await invite(client, await principal(database, "dr.li"))
    who, rooms = await principal(database, username, seated=seated), Rooms()
    before = await state(database)
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await invitations.revoke(session, who, invitation.id, rooms)
    assert await state(database) == before and rooms.told == [], "the link still works, and the room heard nothing"


@pytest.mark.parametrize("username", ["dr.li", "dr.wang"])
async def test_an_invitation_lands_with_its_entry_and_its_link_opens_the_visit(client: TestClient,
                                                                              username: str) -> None:
    """Each row: a clinician of the consultation invites its patient: the invitation is theirs, for that patient and
    not yet expired, is written with exactly one invitation.created audit entry, is listed to them, and its link
    opens the visit as that patient."""
    database = client.app[DATABASE]
    who = await principal(database, username)
    _, trail_before = await state(database)
    invitation, token = await invite(client, who)
    assert (invitation.created_by, invitation.patient_id, invitation.expires_at > utcnow()) == (who.user_id, 1, True)
    rows, trail = await state(database)
    assert rows == [(invitation.id, False)]
    assert trail[len(trail_before):] == [(f"user:{who.user_id}", "invitation.created", f"invitation:{invitation.id}")]
    async with database.session() as session:
        visit = await invitations.open_visit(session, client.app[KEYS], client.app[SETTINGS].jwt_issuer, token)
        listed = await invitations.list_for(session, who, CONSULTATION)
    assert (visit.invitation_id, visit.identity) == (invitation.id, "patient:1")
    assert [row.id for row in listed] == [invitation.id]


async def test_a_revocation_lands_with_its_entry_and_tells_the_room(client: TestClient) -> None:
    """A clinician revokes a colleague's invitation: it is marked revoked by them with one invitation.revoked audit
    entry, and the room is told to expel the patient; revoking it again writes no second entry but tells the room
    again."""
    database = client.app[DATABASE]
    li, wang, rooms = await principal(database, "dr.li"), await principal(database, "dr.wang"), Rooms()
    invitation, _ = await invite(client, li)
    for _ in range(2):  # the second time changes nothing, but tells the room again
        async with database.session() as session:
            revoked = await invitations.revoke(session, wang, invitation.id, rooms)
    assert revoked.revoked_by == wang.user_id and revoked.revoked_at is not None
    rows, trail = await state(database)
    assert rows == [(invitation.id, True)]
    assert [t for t in trail if t[1] == "invitation.revoked"] == [
        (f"user:{wang.user_id}", "invitation.revoked", f"invitation:{invitation.id}")]
    expelled = Expelling(identity="patient:1", reason="invitation-revoked", invitation=invitation.id)
    assert rooms.told == [(CONSULTATION, expelled)] * 2


async def test_a_failed_invitation_leaves_neither_row_nor_entry(client: TestClient) -> None:
    """When the database fails at the invitation's commit, neither the invitation nor its audit entry is kept."""
    database = client.app[DATABASE]
    who = await principal(database, "dr.li")
    before = await state(database)
    with invitation_commits_fail(), pytest.raises(RuntimeError):
        await invite(client, who)
    assert await state(database) == before


async def test_a_failed_revocation_leaves_the_link_working_no_entry_and_the_room_untold(client: TestClient) -> None:
    """When the database fails at a revocation's commit, the invitation stays unrevoked with no audit entry, the room
    is not told, and the patient's link still opens the visit."""
    database = client.app[DATABASE]
    who, rooms = await principal(database, "dr.li"), Rooms()
    invitation, token = await invite(client, who)
    before = await state(database)
    async with database.session() as session:
        with invitation_commits_fail(), pytest.raises(RuntimeError):
            await invitations.revoke(session, who, invitation.id, rooms)
    assert await state(database) == before and rooms.told == []
    async with database.session() as session:
        await invitations.open_visit(session, client.app[KEYS], client.app[SETTINGS].jwt_issuer, token)


async def test_what_cannot_be_invited_or_revoked_writes_nothing(client: TestClient) -> None:
    """A consultation without a patient cannot be invited to (Conflict) and an invitation that does not exist cannot
    be revoked (NotFound); neither writes anything or tells the room."""
    database = client.app[DATABASE]
    who, rooms = await principal(database, "dr.li"), Rooms()
    async with database.session() as session:
        consultation = await session.get(Consultation, CONSULTATION)
        assert consultation is not None
        consultation.patient_id = None
        session.add(consultation)
        await session.commit()
    before = await state(database)
    with pytest.raises(Conflict):
        await invite(client, who)
    async with database.session() as session:
        with pytest.raises(NotFound):
            await invitations.revoke(session, who, 999, rooms)
    assert await state(database) == before and rooms.told == []
