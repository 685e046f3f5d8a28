"""The room's gate for clinicians: a room token lets a clinician in only while they are one of the
consultation's participants and active and the session it came from stands, and a database outage does not cost
them their call."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, KEYS, SETTINGS
from server.consent import records as consents
from server.consultations.room_gate import RoomGate
from server.db import Database
from server.models import Consent, ConsentPurpose, User
from signaling.errors import NoLongerParticipant, SessionEnded


def _gate(client: TestClient, database: Database | None = None) -> RoomGate:
    app = client.app
    return RoomGate(database or app[DATABASE], app[KEYS], app[SETTINGS].jwt_issuer, 1)


async def _user(client: TestClient, username: str) -> User:
    async with client.app[DATABASE].session() as session:
        return (await session.exec(select(User).where(User.username == username))).one()


async def _change(client: TestClient, user: User, **fields: object) -> None:
    async with client.app[DATABASE].session() as session:
        row = await session.get(User, user.id)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
        await session.commit()


async def test_a_participant_passes_and_one_taken_off_or_disabled_does_not(client: TestClient) -> None:
    """dr.li, a participant of the demo consultation, passes; dr.chen of another county, never one, is refused
    `not-a-participant` (as one taken off it would be); dr.li disabled is refused too. Patients' identities are the
    invitation's business, not this check's."""
    gate = _gate(client)
    li, chen = await _user(client, "dr.li"), await _user(client, "dr.chen")
    await gate.check(f"user:{li.id}", None)
    with pytest.raises(NoLongerParticipant):
        await gate.check(f"user:{chen.id}", None)
    await _change(client, li, is_active=False)
    with pytest.raises(NoLongerParticipant):
        await gate.check(f"user:{li.id}", None)


async def test_a_token_of_an_ended_session_is_refused(client: TestClient) -> None:
    """Guards a reset password ending what the session before it could do in a room: dr.li's room token of the
    account's generation passes, one of an earlier generation (issued before her password was reset or changed)
    is refused `session-ended`, and one without a generation (older tokens) passes while her password is her own;
    while a password an administrator set stands (she has not replaced it yet), she is refused with or without a
    generation, as when a host admits her from the lobby (the room keeps no token)."""
    gate = _gate(client)
    li = await _user(client, "dr.li")
    await gate.check(f"user:{li.id}", None, li.session_generation)
    await _change(client, li, session_generation=li.session_generation + 1)
    with pytest.raises(SessionEnded):
        await gate.check(f"user:{li.id}", None, li.session_generation)
    await gate.check(f"user:{li.id}", None, li.session_generation + 1)
    await gate.check(f"user:{li.id}", None)
    await _change(client, li, must_change_password=True)
    for generation in (None, li.session_generation + 1):
        with pytest.raises(SessionEnded):
            await gate.check(f"user:{li.id}", None, generation)


async def test_a_database_outage_lets_a_clinician_in_on_their_token(client: TestClient,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """With the database unreachable (nothing listens on its port), a clinician's join or resume is let through on
    their room token, with a warning, instead of failing: their node dying during an outage must not end their
    call."""
    gone = Database("postgresql+asyncpg://telemed@127.0.0.1:1/telemed")
    try:
        with caplog.at_level(logging.WARNING, logger="server.consultations.room_gate"):
            await _gate(client, gone).check("user:1", None)
    finally:
        await gone.close()
    assert "database unreachable" in caplog.text


async def test_the_partner_is_shown_the_chat_history_only_while_the_patient_shares_their_record(
        client: TestClient) -> None:
    """Guards ``shows_history``: in the demo consultation (set up without a referral, the patient's consent to sharing
    given), dr.li and dr.wang are shown the chat said before they came; once the patient withdraws it, dr.wang (the
    partner hospital) is not, dr.li (the patient's own) still is, and a guest's answer is left to the room (true)."""
    gate = _gate(client)
    li, wang = await _user(client, "dr.li"), await _user(client, "dr.wang")
    assert await gate.shows_history(f"user:{li.id}") and await gate.shows_history(f"user:{wang.id}")
    async with client.app[DATABASE].session() as session:
        consent = (await session.exec(select(Consent).where(
            Consent.consultation_id == 1, Consent.purpose == ConsentPurpose.RECORD_SHARING))).one()
    assert consent.id is not None
    await consents.withdraw(client.app[DATABASE], None, consent.id, f"user:{li.id}")
    assert not await gate.shows_history(f"user:{wang.id}")
    assert await gate.shows_history(f"user:{li.id}") and await gate.shows_history("guest:abc")


async def test_a_database_outage_shows_no_chat_history(client: TestClient) -> None:
    """With the database unreachable, whether a clinician may see the chat said before they came cannot be known:
    they are not shown it (the patient's privacy first), and the join goes on."""
    gone = Database("postgresql+asyncpg://telemed@127.0.0.1:1/telemed")
    try:
        assert not await _gate(client, gone).shows_history("user:1")
    finally:
        await gone.close()
