"""A node's sweep for clinicians in its calls whose account was disabled, or whose password was reset, where no
room could be told (the console): they are sent out of the call, and no one else is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.admin import SHELL, account_sweep
from server.admin import accounts as account_service
from server.admin.inputs import PasswordReset
from server.appkeys import DATABASE
from server.db import Database
from server.models import User
from server.settings import Settings
from signaling.events import Expelling, RoomEvent

from ...conftest import _start, login
from ...support.signaling_client import connect, expect, expect_closed, room_token
from ..test_cli import run


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
    in, and an id with no account too (`not-a-participant`), and a clinician whose password was reset and not yet
    replaced (`session-ended`); an active clinician, a patient and a guest are left where they are."""
    wang, li, zhou = (await _user_id(database, "dr.wang"), await _user_id(database, "dr.li"),
                      await _user_id(database, "dr.zhou"))
    async with database.session() as session:
        await account_service.disable(session, SHELL, wang, rooms=None)
        await account_service.reset_password(session, SHELL, zhou, PasswordReset(), rooms=None)
    here = {f"user:{wang}": {"consultation:1", "consultation:3"}, f"user:{li}": {"consultation:1"},
            f"user:{zhou}": {"consultation:4"}, "user:999999": {"consultation:2"}, "patient:1": {"consultation:1"},
            "guest:7": {"consultation:1"}}
    rooms = ToldRooms()
    assert await account_sweep.sweep(database, here, rooms) == {wang, zhou, 999999}
    assert sorted((room, event.identity, event.reason) for room, event in rooms.told) == [  # type: ignore[attr-defined]
        (1, f"user:{wang}", "not-a-participant"), (2, "user:999999", "not-a-participant"),
        (3, f"user:{wang}", "not-a-participant"), (4, f"user:{zhou}", "session-ended")]
    assert {type(event) for _, event in rooms.told} == {Expelling}
    rooms.told.clear()
    assert await account_sweep.sweep(database, {f"user:{li}": {"consultation:1"}}, rooms) == set()
    assert rooms.told == []


async def _li_and_wang(client: TestClient) -> tuple[ClientWebSocketResponse, ClientWebSocketResponse]:
    """dr.li and dr.wang in the demo consultation's room, each seeing the other."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    wang = await connect(client, await room_token(client, "dr.wang"))
    await expect(wang, "joined")
    await expect(li, "participant-joined")
    return li, wang


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
        assert (await expect(wang, "removed"))["message"]
        await expect_closed(wang, 4403)
        assert (await expect(li, "participant-left"))["reason"] == reason
        await li.send_json({"type": "chat", "text": "还在吗"})
        assert (await expect(li, "chat"))["text"] == "还在吗", "dr.li is still in the call"
        await li.close()


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
