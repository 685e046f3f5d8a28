"""A node's sweep for clinicians in its calls whose account was changed where no room could be told (the console):
disabled, reset or no longer a clinician's, they are sent out of the call, and no one else is; a licence changed
or verified changes what they may do there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.admin import SHELL, account_sweep
from server.admin import accounts as account_service
from server.admin.inputs import LicenceInput, PasswordReset
from server.appkeys import DATABASE, HUB, ROOMS
from server.db import Database
from server.models import User
from server.settings import Settings
from signaling import connection
from signaling.events import Expelling, Regranting, Resuming, RoomEvent
from signaling.grants import GUEST, HOST, Granted, room_id_for
from signaling.log import CAUGHT_UP

from ...conftest import _start, login
from ...support.peers import until
from ...support.signaling_client import connect, expect, expect_closed, guest_token, receive, room_token
from ..test_cli import run

HOSTS = Granted(HOST, 0)  # a host's grants, of a demo account's first revision


class ToldRooms:
    """A ``RoomNotifier`` that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[int, RoomEvent]] = []

    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        self.told.append((consultation_id, event))


async def _user_id(database: Database, username: str) -> int:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return user.id


async def test_only_disabled_missing_or_reset_accounts_are_sent_out_of_their_rooms(database: Database) -> None:
    """Of the identities in this node's rooms, a disabled clinician is sent out of each consultation room he is
    in, and an id with no account too, and a clinician made a coordinator (`not-a-participant`), and a clinician
    whose password was reset and not yet replaced (`session-ended`); an active clinician, a patient and a guest
    are left where they are."""
    wang, li, zhou, zhao = [await _user_id(database, name) for name in ("dr.wang", "dr.li", "dr.zhou", "coord.zhao")]
    async with database.session() as session:
        await account_service.disable(session, SHELL, wang, rooms=None)
        await account_service.reset_password(session, SHELL, zhou, PasswordReset(), rooms=None)
    here = {f"user:{wang}": {"consultation:1": HOSTS, "consultation:3": HOSTS}, f"user:{li}": {"consultation:1": HOSTS},
            f"user:{zhou}": {"consultation:4": HOSTS}, "user:999999": {"consultation:2": HOSTS},
            f"user:{zhao}": {"consultation:5": HOSTS}, "patient:1": {"consultation:1": Granted(GUEST, None)},
            "guest:7": {"consultation:1": Granted(GUEST, None)}}
    rooms = ToldRooms()
    assert await account_sweep.sweep(database, here, rooms) == {wang, zhou, zhao, 999999}
    assert sorted((room, event.identity, event.reason) for room, event in rooms.told) == [  # type: ignore[attr-defined]
        (1, f"user:{wang}", "not-a-participant"), (2, "user:999999", "not-a-participant"),
        (3, f"user:{wang}", "not-a-participant"), (4, f"user:{zhou}", "session-ended"),
        (5, f"user:{zhao}", "not-a-participant")]
    assert {type(event) for _, event in rooms.told} == {Expelling}
    rooms.told.clear()
    assert await account_sweep.sweep(database, {f"user:{li}": {"consultation:1": HOSTS}}, rooms) == set()
    assert rooms.told == []


async def test_a_clinician_holding_other_grants_than_their_account_gives_is_given_those(database: Database) -> None:
    """Guards the sweep's other half (a licence changed or verified on the console, which reaches no room): a
    clinician whose licence is no longer verified but who hosts is made a guest in that room, one verified who
    holds a guest's grants is made a host, and nobody is sent out or told anything where the grants and their
    revision match. Each change carries the account's revision (dr.wang's licence change counted once), and one
    who holds the account's grants of an older change (a change told late would undo the console's) is told them
    again of the latest."""
    li, wang = await _user_id(database, "dr.li"), await _user_id(database, "dr.wang")
    async with database.session() as session:
        await account_service.set_licence(session, SHELL, wang, LicenceInput(licence_number="110320000601234"),
                                          rooms=None)
    here = {f"user:{wang}": {"consultation:1": HOSTS, "consultation:2": Granted(GUEST, 1),
                             "consultation:4": Granted(GUEST, 0)},
            f"user:{li}": {"consultation:1": Granted(GUEST, 0), "consultation:3": HOSTS}}
    rooms = ToldRooms()
    assert await account_sweep.sweep(database, here, rooms) == set()
    assert sorted(rooms.told, key=lambda told: (told[0], told[1].identity)) == [  # type: ignore[union-attr]
        (1, Regranting(identity=f"user:{li}", grants=HOST, revision=0)),
        (1, Regranting(identity=f"user:{wang}", grants=GUEST, revision=1)),
        (4, Regranting(identity=f"user:{wang}", grants=GUEST, revision=1))]


async def _li_and_wang(client: TestClient) -> tuple[ClientWebSocketResponse, ClientWebSocketResponse]:
    """dr.li and dr.wang in the demo consultation's room, each seeing the other."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    wang = await connect(client, await room_token(client, "dr.wang"))
    await expect(wang, "joined")
    await expect(li, "participant-joined")
    return li, wang


async def _wang_beside_li(client: TestClient) -> tuple[ClientWebSocketResponse, str, dict[str, Any]]:
    """dr.li in the demo consultation's room, and dr.wang joining her: her socket and participant id, and his
    ``joined`` (his seat, and the secret to resume it)."""
    li = await connect(client, await room_token(client, "dr.li"))
    li_id = (await expect(li, "joined"))["self"]["id"]
    seat = await expect(await connect(client, await room_token(client, "dr.wang")), "joined")
    await expect(li, "participant-joined")
    return li, li_id, seat


@pytest.mark.parametrize(("command", "reason"), [(["disable"], "not-a-participant"),
                                                 (["reset-password", "--generate"], "session-ended")])
async def test_a_clinician_disabled_or_reset_on_the_console_is_sent_out_of_the_call(tmp_path: Path, command: list[str],
                                                                                     reason: str) -> None:
    """Guards `telemed user disable` and `telemed user reset-password` reaching a live call (a reset password may be
    known to someone else, who must not stay in the call): the console runs in a process of its own, which reaches
    no room; within a sweep of the node (0.3 s here) dr.wang gets `removed` and his socket closes (4403), dr.li
    sees him leave (`not-a-participant`, `session-ended`) and stays in the call."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "0.3"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li, wang = await _li_and_wang(client)
        done = await asyncio.to_thread(run, "user", command[0], "dr.wang", *command[1:], data_dir=settings.data_dir)
        assert done.returncode == 0, done.stderr
        assert "next account sweep" in done.stderr, "the shell says when the call follows"
        assert (await expect(wang, "removed"))["message"]
        await expect_closed(wang, 4403)
        assert (await expect(li, "participant-left"))["reason"] == reason
        await li.send_json({"type": "chat", "text": "还在吗"})
        assert (await expect(li, "chat"))["text"] == "还在吗", "dr.li is still in the call"
        await li.close()


async def test_a_licence_changed_on_the_console_reaches_the_call_within_a_sweep(tmp_path: Path) -> None:
    """Guards `telemed user licence` reaching a live call: dr.wang, a host in the demo consultation's room, gets
    `grants` without admit, record or moderate within a sweep (0.3 s here) of his licence number being changed at
    the shell, keeps his seat, and is refused when he then tries to remove dr.li; `--verify` gives them back."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "0.3"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li = await connect(client, await room_token(client, "dr.li"))
        li_id = (await expect(li, "joined"))["self"]["id"]
        wang = await connect(client, await room_token(client, "dr.wang"))
        await expect(wang, "joined")
        done = await asyncio.to_thread(run, "user", "licence", "dr.wang", "--number", "110320000601234",
                                       data_dir=settings.data_dir)
        assert done.returncode == 0, done.stderr
        assert (await expect(wang, "grants"))["grants"]["admit"] is False
        await wang.send_json({"type": "remove", "participant_id": li_id})
        assert (await expect(wang, "error"))["code"] == "not-allowed"
        done = await asyncio.to_thread(run, "user", "licence", "dr.wang", "--verify", data_dir=settings.data_dir)
        assert done.returncode == 0, done.stderr
        assert (await expect(wang, "grants"))["grants"]["admit"] is True
        await li.close()
        await wang.close()


async def test_a_console_licence_change_reaches_a_clinician_who_resumes_before_the_sweep(tmp_path: Path) -> None:
    """Guards a resume after a change no room was told of (the console; the node's sweep an hour away): the seat
    kept its host's grants, but the room takes the account's when dr.wang resumes, so he gets `grants` without
    admit, and removing dr.li is refused, though no sweep came."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "3600"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li, li_id, seat = await _wang_beside_li(client)
        database = client.app[DATABASE]
        async with database.session() as session:
            await account_service.set_licence(session, SHELL, await _user_id(database, "dr.wang"),
                                              LicenceInput(licence_number="110320000601234"), rooms=None)
        back = await connect(client, await room_token(client, "dr.wang"), resume=seat["resume"])
        assert (await expect(back, "joined"))["resumed"] is True
        assert (await expect(back, "grants"))["grants"]["admit"] is False
        await back.send_json({"type": "remove", "participant_id": li_id})
        assert (await expect(back, "error"))["code"] == "not-allowed"
        await li.close()
        await back.close()


async def test_a_page_change_told_late_does_not_undo_a_later_console_change(tmp_path: Path) -> None:
    """Guards the order of grant changes reaching a room by different paths: a page takes dr.wang's licence
    verification away (its telling of the room held back, as if still on its way), the console verifies it again
    (no room told), and dr.wang resumes: the gate's second look finds what his seat has (a host's) but of a later
    change, and tells the room so; the page's change, arriving after, is older and not applied. He is never told
    he may no longer host, and the room keeps him a host."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "3600"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li, _, seat = await _wang_beside_li(client)
        database, wang_id = client.app[DATABASE], await _user_id(client.app[DATABASE], "dr.wang")
        licence, on_its_way = LicenceInput(licence_number="110320000601234"), ToldRooms()
        async with database.session() as session:
            await account_service.set_licence(session, SHELL, wang_id, licence, rooms=on_its_way)
            await account_service.verify_licence(session, SHELL, wang_id, licence, rooms=None)
        [(_, late)] = on_its_way.told
        assert isinstance(late, Regranting) and late.grants == GUEST

        back = await connect(client, await room_token(client, "dr.wang"), resume=seat["resume"])
        assert (await expect(back, "joined"))["resumed"] is True
        await asyncio.gather(*connection._TOLD)  # the gate's second look, and what it told the room, are done
        await client.app[ROOMS].tell(1, late)
        await back.send_json({"type": "chat", "text": "血压 150/95"})  # after the late change in the room's log
        assert "grants" not in await _until(back, "chat")
        room = client.app[HUB].room(room_id_for(1))
        assert room is not None and room.members[seat["self"]["id"]].grants == HOST
        await li.close()
        await back.close()


async def _logged(client: TestClient) -> list[RoomEvent]:
    """Consultation 1's room log as it stands, from its first event."""
    logged: list[RoomEvent] = []
    async for item in client.app[HUB].log.follow(room_id_for(1)):
        if item is CAUGHT_UP:
            return logged
        if isinstance(item, RoomEvent):
            logged.append(item)
    return logged


async def test_a_resume_with_the_grants_the_seat_has_adds_nothing_to_the_room_log(tmp_path: Path) -> None:
    """Guards the room's log against an entry per resume: a clinician's join is followed by one `Regranting`, the
    revision of his grants (a join carries none, for older nodes), and once his seat has it, a resume of an
    account that did not change finds what the seat has, so none is appended after it (the console change of the
    test above still is)."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "3600"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li, _, seat = await _wang_beside_li(client)
        await asyncio.gather(*connection._TOLD)  # the joins' second looks, which told the room the revisions
        room = client.app[HUB].room(room_id_for(1))
        assert room is not None
        await until(lambda: room.members[seat["self"]["id"]].grants_revision == 0)
        back = await connect(client, await room_token(client, "dr.wang"), resume=seat["resume"])
        assert (await expect(back, "joined"))["resumed"] is True
        await asyncio.gather(*connection._TOLD)  # the gate's second look, and what it told the room, are done
        logged = await _logged(client)
        resumed = next(i for i, event in enumerate(logged) if isinstance(event, Resuming))
        joined = sorted([f"user:{await _user_id(client.app[DATABASE], 'dr.li')}",
                         f"user:{await _user_id(client.app[DATABASE], 'dr.wang')}"])
        assert sorted(event.identity for event in logged[:resumed] if isinstance(event, Regranting)) == joined
        assert not [event for event in logged[resumed:] if isinstance(event, Regranting)]
        await li.close()
        await back.close()


async def _until(ws: ClientWebSocketResponse, kind: str, **fields: object) -> list[str]:
    """The types of the messages before the first of ``kind`` (with those ``fields``), which must come."""
    before: list[str] = []
    while True:
        message = await receive(ws)
        if message["type"] == kind and all(message.get(name) == value for name, value in fields.items()):
            return before
        before.append(message["type"])


async def test_a_host_seated_from_the_lobby_after_a_console_disable_is_sent_out(tmp_path: Path) -> None:
    """Guards the seat a waiting host takes with nobody admitting them: dr.li, unverified, waits in a full room of
    two (dr.wang and the patient he admitted); her licence is verified (the room is told: she may host), then her
    account is disabled on the console (no room told; the sweep an hour away). When the patient leaves she takes
    the seat, and the gate's look at that moment sends her out (`not-a-participant`), as a host's admitting her
    would have refused her; dr.wang sees her come and go."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "3600", "TELEMED_ROOM_MAX_PARTICIPANTS": "2"},
                             data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        database = client.app[DATABASE]
        li_id = await _user_id(database, "dr.li")
        licence = LicenceInput(licence_number="110320000601234")
        async with database.session() as session:
            await account_service.set_licence(session, SHELL, li_id, licence, rooms=None)
        wang = await connect(client, await room_token(client, "dr.wang"))
        await expect(wang, "joined")
        patient = await connect(client, await guest_token(client, host="dr.wang"))
        waiting = await expect(patient, "lobby")
        await expect(wang, "lobby-update")
        await wang.send_json({"type": "admit", "participant_id": waiting["self"]["id"]})
        await expect(patient, "joined")
        li = await connect(client, await room_token(client, "dr.li"))
        await expect(li, "lobby")
        async with database.session() as session:
            await account_service.verify_licence(session, SHELL, li_id, licence, rooms=client.app[ROOMS])
        assert (await expect(li, "grants"))["grants"]["admit"] is True
        async with database.session() as session:
            await account_service.disable(session, SHELL, li_id, rooms=None)

        await patient.send_json({"type": "leave"})
        assert "joined" in await _until(li, "removed")  # the seat that freed, then sent out
        await expect_closed(li, 4403)
        assert "participant-joined" in await _until(wang, "participant-left", reason="not-a-participant")
        await wang.close()


async def test_replacing_a_console_reset_password_sends_the_old_session_out_at_once(tmp_path: Path) -> None:
    """Guards a console reset whose user sets their own password before a node's sweep comes round (an hour here):
    that change sends out of the call whoever still sits there on the session the reset ended (no room token can
    be issued on a temporary password), and their new session can join again."""
    settings = Settings.load(environ={"TELEMED_ACCOUNT_SWEEP_SECONDS": "3600"}, data_dir=tmp_path / "var", port=0)
    async with await _start(settings) as client:
        li, wang = await _li_and_wang(client)
        database = client.app[DATABASE]
        async with database.session() as session:
            await account_service.reset_password(session, SHELL, await _user_id(database, "dr.wang"),
                                                 PasswordReset(password="temporary-pass-1"), rooms=None)
        temporary = await login(client, "dr.wang", "temporary-pass-1")
        changed = await client.post("/api/me/password", json={"new_password": "his-own-pass-2"}, headers=temporary)
        assert changed.status == 200, await changed.text()
        await expect(wang, "removed")
        await expect_closed(wang, 4403)
        assert (await expect(li, "participant-left"))["reason"] == "session-ended"
        own = {"Authorization": f"Bearer {(await changed.json())['access_token']}"}
        issued = await client.post("/api/consultations/1/room-token", headers=own)
        back = await connect(client, (await issued.json())["token"])
        await expect(back, "joined")
        await li.close()
        await back.close()
