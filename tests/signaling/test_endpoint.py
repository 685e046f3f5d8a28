"""The signaling WebSocket on a real server, on both buses: tokens, the lobby, relaying, chat, reconnecting,
heartbeats, limits, and bad input that keeps the connection."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from aiohttp import ClientSession, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from server.appkeys import DATABASE, HUB, KEYS, SETTINGS
from server.consultations.room_gate import RoomGate
from server.consultations.room_tokens import room_token
from server.identity.tokens import AccessToken
from server.models import AuditEvent, ChatLine
from server.settings import Settings
from signaling.connection import Limits, SignalingConnection
from signaling.effects import StoreChat
from signaling.grants import HOST, RoomClaims
from signaling.hub import ChatStore

from ..conftest import _start
from ..support.signaling_client import (
    bearer,
    connect,
    expect,
    expect_closed,
    guest_token,
    receive,
)
from ..support.signaling_client import room_token as token_for


async def enter(client: TestClient, username: str):  # type: ignore[no-untyped-def]
    ws = await connect(client, await token_for(client, username))
    return ws, await expect(ws, "joined")


async def test_two_clinicians_meet_and_exchange_negotiation_in_order(room_client: TestClient) -> None:
    """Two clinicians meet: each is told of the other; offer, answer, twenty ICE candidates, media state and
    audio-only wishes reach the one named, in the order sent; a leave tells the other (reason left) and closes with
    1000."""
    li, li_joined = await enter(room_client, "dr.li")
    assert li_joined["participants"] == [] and li_joined["self"]["name"] == "李明 Li Ming"
    assert li_joined["resume"].startswith(li_joined["self"]["id"] + ".")
    wang, wang_joined = await enter(room_client, "dr.wang")
    assert [p["id"] for p in wang_joined["participants"]] == [li_joined["self"]["id"]]
    assert (await expect(li, "participant-joined"))["participant"]["id"] == wang_joined["self"]["id"]

    li_id, wang_id = li_joined["self"]["id"], wang_joined["self"]["id"]
    await wang.send_json({"type": "offer", "to": li_id, "sdp": "v=0 offer"})
    assert await expect(li, "offer") == {"type": "offer", "from": wang_id, "sdp": "v=0 offer"}
    await li.send_json({"type": "answer", "to": wang_id, "sdp": "v=0 answer"})
    assert (await expect(wang, "answer"))["sdp"] == "v=0 answer"
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMLineIndex": 0}
    for n in range(20):
        await li.send_json({"type": "candidate", "to": wang_id, "candidate": {**candidate, "sdpMid": str(n)}})
    assert [(await expect(wang, "candidate"))["candidate"]["sdpMid"] for _ in range(20)] == [str(n) for n in range(20)]

    await li.send_json({"type": "media-state", "muted": True, "camera_off": False})
    assert (await expect(wang, "media-state"))["media"]["muted"] is True
    # audio only, peer to peer: wang asks li for no video, then for video again, in the relay's shape
    for video in (False, True):
        await wang.send_json({"type": "receive", "to": li_id, "video": video})
        assert await expect(li, "receive") == {"type": "receive", "from": wang_id, "video": video}

    await wang.send_json({"type": "leave"})
    assert await expect(li, "participant-left") == {"type": "participant-left", "participant_id": wang_id,
                                                    "reason": "left"}
    await expect_closed(wang, 1000)
    await li.close()


async def test_chat_is_ordered_the_same_for_everyone_and_kept(room_client: TestClient) -> None:
    """Chat sent by two clinicians at once reaches both in one and the same order, each one's lines as they sent
    them; all 10 lines are stored within about 2.5 s, and the consultation's chat API gives them back in that order."""
    li, _ = await enter(room_client, "dr.li")
    wang, _ = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    for n in range(5):  # both talk at once
        await li.send_json({"type": "chat", "text": f"li {n}"})
        await wang.send_json({"type": "chat", "text": f"wang {n}"})
    seen_by_li = [(await expect(li, "chat")) for _ in range(10)]
    seen_by_wang = [(await expect(wang, "chat")) for _ in range(10)]
    assert [(m["id"], m["text"]) for m in seen_by_li] == [(m["id"], m["text"]) for m in seen_by_wang]
    assert [m["text"] for m in seen_by_li if m["text"].startswith("li")] == [f"li {n}" for n in range(5)]
    for _ in range(50):  # the sender's node writes the lines; give it a moment
        async with room_client.app[DATABASE].session() as session:
            kept = (await session.exec(select(ChatLine).where(ChatLine.consultation_id == 1))).all()
        if len(kept) == 10:
            break
        await asyncio.sleep(0.05)
    assert len(kept) == 10, f"{len(kept)} of the 10 chat lines were stored within about 2.5 s"
    response = await room_client.get("/api/consultations/1/chat", headers=await bearer(room_client, "", "dr.wang"))
    assert [line["text"] for line in (await response.json())["chat"]] == [m["text"] for m in seen_by_li]
    await li.close()
    await wang.close()


async def test_a_guest_waits_in_the_lobby_until_admitted(room_client: TestClient) -> None:
    """A patient's guest token puts them in the lobby, and the host sees them waiting; until admitted they cannot
    negotiate (not-joined); admitted, they join the host and the lobby empties; as a guest they may not admit anyone
    (not-allowed)."""
    li, joined = await enter(room_client, "dr.li")
    guest = await connect(room_client, await guest_token(room_client))
    lobby = await expect(guest, "lobby")
    assert lobby["self"]["guest"] is True and lobby["self"]["user_id"] is None
    update = await expect(li, "lobby-update")
    assert [p["name"] for p in update["waiting"]] == ["张伟 Zhang Wei"]

    # Until admitted the guest can neither negotiate nor chat.
    await guest.send_json({"type": "offer", "to": joined["self"]["id"], "sdp": "v=0"})
    assert (await expect(guest, "error"))["code"] == "not-joined"
    await li.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    admitted = await expect(guest, "joined")
    assert [p["id"] for p in admitted["participants"]] == [joined["self"]["id"]]
    assert (await expect(li, "participant-joined"))["participant"]["id"] == lobby["self"]["id"]
    assert (await expect(li, "lobby-update"))["waiting"] == []
    # A guest may not let others in.
    await guest.send_json({"type": "admit", "participant_id": "anyone"})
    assert (await expect(guest, "error"))["code"] == "not-allowed"
    await li.close()
    await guest.close()


async def test_a_guest_turned_away_is_told_and_disconnected(room_client: TestClient) -> None:
    """A guest the host turns away gets a denied message with a reason and is closed with 4403, and the host's lobby
    list empties."""
    li, _ = await enter(room_client, "dr.li")
    guest = await connect(room_client, await guest_token(room_client))
    lobby = await expect(guest, "lobby")
    await expect(li, "lobby-update")
    await li.send_json({"type": "deny", "participant_id": lobby["self"]["id"]})
    assert (await expect(guest, "denied"))["message"]
    await expect_closed(guest, 4403)
    assert (await expect(li, "lobby-update"))["waiting"] == []
    await li.close()


async def test_a_dropped_participant_resumes_the_same_seat(room_client: TestClient) -> None:
    """The other side sees 'reconnecting' and then the same participant, not a new one."""
    li, _ = await enter(room_client, "dr.li")
    wang, wang_joined = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    await wang.close(code=4000)  # the network drops: no leave
    assert await expect(li, "participant-reconnecting") == {"type": "participant-reconnecting",
                                                            "participant_id": wang_joined["self"]["id"]}
    again = await connect(room_client, await token_for(room_client, "dr.wang"), resume=wang_joined["resume"])
    resumed = await expect(again, "joined")
    assert resumed["resumed"] is True and resumed["self"]["id"] == wang_joined["self"]["id"]
    assert resumed["resume"] != wang_joined["resume"], "each resume hands out a new secret"
    assert await expect(li, "participant-resumed") == {"type": "participant-resumed",
                                                       "participant_id": wang_joined["self"]["id"]}
    await li.close()
    await again.close()


async def test_resume_needs_the_secret_and_the_same_person(room_client: TestClient) -> None:
    """A dropped seat cannot be taken over: a resume with the wrong secret, or with the right secret on another
    clinician's token, gets resume-failed."""
    li, _ = await enter(room_client, "dr.li")
    wang, wang_joined = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    await wang.close(code=4000)
    await expect(li, "participant-reconnecting")
    seat = wang_joined["self"]["id"]
    for token, resume in [(await token_for(room_client, "dr.wang"), f"{seat}.wrong-secret"),
                          (await token_for(room_client, "dr.li"), wang_joined["resume"])]:  # someone else
        thief = await connect(room_client, token, resume=resume)
        assert (await expect(thief, "error"))["code"] == "resume-failed"
        await thief.close()
    await li.close()


async def test_a_seat_not_reclaimed_within_the_grace_period_is_freed(room_client: TestClient) -> None:
    """A dropped participant not back within the grace period (2 s here) leaves with reason timeout; their old resume
    secret then fails, and joining again gives them a new seat."""
    li, _ = await enter(room_client, "dr.li")
    wang, wang_joined = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    started = time.monotonic()
    await wang.close(code=4000)
    await expect(li, "participant-reconnecting")
    left = await expect(li, "participant-left", within=10)
    assert left == {"type": "participant-left", "participant_id": wang_joined["self"]["id"], "reason": "timeout"}
    assert 1.5 < time.monotonic() - started < 6, "after the 2 s grace period of these tests"
    late = await connect(room_client, await token_for(room_client, "dr.wang"), resume=wang_joined["resume"])
    assert (await expect(late, "error"))["code"] == "resume-failed"
    await late.send_json({"type": "join", "protocol": 2, "token": await token_for(room_client, "dr.wang")})
    assert (await expect(late, "joined"))["self"]["id"] != wang_joined["self"]["id"]
    await li.close()
    await late.close()


async def test_a_silent_client_is_pinged_then_dropped(room_settings: Settings) -> None:
    """Silence is answered with a ping; more silence closes with 4408 and the seat is held for a resume."""
    client = await _start(dataclasses.replace(room_settings, heartbeat_interval=0.3, heartbeat_timeout=0.8))
    try:
        li, _ = await enter(client, "dr.li")
        alive = asyncio.create_task(keep_alive(li))  # li's client is well: it shows signs of life
        wang, wang_joined = await enter(client, "dr.wang")
        await expect(li, "participant-joined")
        assert (await receive(wang))["type"] == "ping"  # wang's client has hung: it never answers
        error = await receive(wang)
        assert error["type"] == "error" and error["code"] == "timeout"
        await expect_closed(wang, 4408)
        assert (await expect(li, "participant-reconnecting"))["participant_id"] == wang_joined["self"]["id"]
        alive.cancel()
        await li.close()
    finally:
        await client.close()


async def keep_alive(ws) -> None:  # type: ignore[no-untyped-def]
    while True:
        await ws.send_json({"type": "pong"})
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{broken", "malformed"),
        ('{"type": "warp"}', "unknown-type"),
        ('{"type": "offer", "to": "x"}', "malformed"),
        ('{"type": "offer", "to": "nobody", "sdp": "v=0"}', "unknown-participant"),
        ('{"type": "media-state", "muted": "yes", "camera_off": false}', "malformed"),
        ('{"type": "join", "protocol": 2, "token": "t"}', "already-joined"),
        ('{"type": "remove", "participant_id": "nobody"}', "unknown-participant"),
        ('{"type": "offer", "to": "x", "sdp": "' + "a" * 200_000 + '"}', "too-large"),
        # past the parser's limits: these used to drop the socket with no word
        ('{"type": "ping", "id": ' + "7" * 5000 + "}", "malformed"),
        ("[" * 100_000, "malformed"),
        ('{"type": "ping", "id": ' + "[" * 50_000 + "]" * 50_000 + "}", "malformed"),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_stays(room_client: TestClient, payload: str,
                                                                  code: str) -> None:
    """Each row: a bad message (broken JSON, an unknown type, a field missing or of the wrong type, an unknown
    participant, a second join, too large, or numbers and nesting past the parser's limits) is answered with that
    error code and a message, and the connection stays open and still answers a ping."""
    ws, _ = await enter(room_client, "dr.li")
    await ws.send_str(payload)
    error = await expect(ws, "error")
    assert error["code"] == code and error["message"]
    await ws.send_json({"type": "ping", "id": 9})
    assert await expect(ws, "pong") == {"type": "pong", "id": 9}
    await ws.close()


async def test_a_ping_id_may_be_a_string(room_client: TestClient) -> None:
    """A ping's id comes back as it was sent, string or integer."""
    ws, _ = await enter(room_client, "dr.li")
    await ws.send_json({"type": "ping", "id": "probe-1"})
    assert await expect(ws, "pong") == {"type": "pong", "id": "probe-1"}
    await ws.close()


async def test_a_chat_line_can_be_read_back_as_soon_as_it_is_seen(room_client: TestClient) -> None:
    """A line is stored before it is delivered: the chat API has it once any participant saw it, even when
    the database is slow."""
    hub = room_client.app[HUB]
    store = hub.chat_store
    assert store is not None

    async def slow_store(room_id: str, line: StoreChat) -> None:
        await asyncio.sleep(0.5)
        await store(room_id, line)
    slow: ChatStore = slow_store
    hub.chat_store = slow
    li, _ = await enter(room_client, "dr.li")
    wang, _ = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    await li.send_json({"type": "chat", "text": "BP 150/95"})
    await expect(li, "chat")
    await expect(wang, "chat")
    response = await room_client.get("/api/consultations/1/chat", headers=await bearer(room_client, "", "dr.wang"))
    assert [line["text"] for line in (await response.json())["chat"]] == ["BP 150/95"]
    await li.close()
    await wang.close()


async def test_one_clinician_token_on_many_sockets_holds_one_seat(room_client: TestClient) -> None:
    """Each new socket of the same identity takes the seat of the last, which gets error "replaced" and
    closes with 4410; twenty of them leave the room's other seats free."""
    token = await token_for(room_client, "dr.li")
    last = None
    for _ in range(20):
        ws = await connect(room_client, token)
        assert (await expect(ws, "joined"))["participants"] == []
        if last is not None:
            assert (await expect(last, "error"))["code"] == "replaced"
            await expect_closed(last, 4410)
        last = ws
    wang, joined = await enter(room_client, "dr.wang")
    assert [p["name"] for p in joined["participants"]] == ["李明 Li Ming"]
    assert last is not None
    await last.close()
    await wang.close()


async def test_one_guest_token_on_many_sockets_holds_one_lobby_place(room_client: TestClient) -> None:
    """A patient's link opened on twelve sockets waits in the lobby once; each older socket is closed."""
    li, _ = await enter(room_client, "dr.li")
    token = await guest_token(room_client)
    last = None
    for _ in range(12):
        ws = await connect(room_client, token)
        # (a patient's join asks the database twice and, on the Redis bus, goes round Redis: on a machine busy
        # with the other test worker one of the twelve once took over the usual 5 s)
        await expect(ws, "lobby", within=15)
        if last is not None:
            assert (await expect(last, "error", within=15))["code"] == "replaced"
            await expect_closed(last, 4410, within=15)
        last = ws
    room = room_client.app[HUB].room("consultation:1")
    assert room is not None and [p.name for p in room.waiting] == ["张伟 Zhang Wei"]
    assert last is not None
    await last.close()
    await li.close()


async def test_a_patient_who_reloads_in_a_full_room_keeps_their_seat(room_settings: Settings) -> None:
    """Guards the seat of a patient who reloads their page in a full room of two: their new socket waits in the
    lobby, marked for dr.li as one whose seat is kept (``seat_kept``), and dr.wang, joining afresh in that moment,
    is refused (room-full, 4409) instead of taking the seat; dr.li admits the patient back to it."""
    async with await _start(dataclasses.replace(room_settings, room_max_participants=2)) as client:
        li, _ = await enter(client, "dr.li")
        token = await guest_token(client)
        patient = await connect(client, token)
        waiting = await expect(patient, "lobby", within=15)
        await expect(li, "lobby-update")
        await li.send_json({"type": "admit", "participant_id": waiting["self"]["id"]})
        await expect(patient, "joined")
        await expect(li, "participant-joined")
        assert (await expect(li, "lobby-update"))["waiting"] == []

        reloaded = await connect(client, token)  # the page reloads: the same link, a new socket
        back = await expect(reloaded, "lobby", within=15)
        await expect_closed(patient, 4410)
        assert "seat_kept" not in back["self"]
        assert (await expect(li, "participant-left"))["reason"] == "replaced"
        assert [p.get("seat_kept") for p in (await expect(li, "lobby-update"))["waiting"]] == [True]
        wang = await connect(client, await token_for(client, "dr.wang"))
        assert (await expect(wang, "error"))["code"] == "room-full"
        await expect_closed(wang, 4409)
        await li.send_json({"type": "admit", "participant_id": back["self"]["id"]})
        assert [p["name"] for p in (await expect(reloaded, "joined"))["participants"]] == ["李明 Li Ming"]
        await li.close()
        await reloaded.close()


async def test_resuming_on_a_new_socket_while_the_old_one_is_open(room_client: TestClient) -> None:
    """A resume (another tab with the secret, or a client that noticed the drop first) still takes back
    the same seat: the old socket closes with 4410, the others see the same participant come back."""
    li, _ = await enter(room_client, "dr.li")
    wang, wang_joined = await enter(room_client, "dr.wang")
    await expect(li, "participant-joined")
    again = await connect(room_client, await token_for(room_client, "dr.wang"), resume=wang_joined["resume"])
    resumed = await expect(again, "joined")
    assert resumed["resumed"] is True and resumed["self"]["id"] == wang_joined["self"]["id"]
    await expect_closed(wang, 4410)
    assert (await expect(li, "participant-resumed"))["participant_id"] == wang_joined["self"]["id"]
    await li.close()
    await again.close()


async def test_a_socket_that_never_joins_is_closed_at_the_join_deadline(room_client: TestClient) -> None:
    """Pinging is not joining: a socket with no valid join by Limits.join_within gets error "join-timeout"
    and closes with 4408 (the server's own join deadline is 10 s; here a short one, on the same hub, long enough
    for four pings on a busy machine)."""
    assert Limits().join_within == 10.0
    app = room_client.app

    async def signaling(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        gate = RoomGate(app[DATABASE], app[KEYS], app[SETTINGS].jwt_issuer, 1)
        await SignalingConnection(ws, app[HUB], "consultation:1", gate=gate, limits=Limits(join_within=1.5)).run()
        return ws
    small = web.Application()
    small.router.add_get("/signaling", signaling)
    async with TestServer(small, host="127.0.0.1", port=0) as server, ClientSession() as http:
        idle = await http.ws_connect(server.make_url("/signaling"))
        started = time.monotonic()
        for n in range(4):
            await idle.send_json({"type": "ping", "id": n})
            assert (await expect(idle, "pong"))["id"] == n
            await asyncio.sleep(0.1)
        error = await expect(idle, "error", within=3)
        assert error["code"] == "join-timeout"
        await expect_closed(idle, 4408)
        assert 1.4 < time.monotonic() - started < 2.5

        joined = await connect(http, await token_for(room_client, "dr.li"), url=str(server.make_url("/signaling")))
        await expect(joined, "joined")
        await asyncio.sleep(1.8)
        await joined.send_json({"type": "ping", "id": 1})
        assert (await expect(joined, "pong"))["id"] == 1, "a joined socket is not held to the deadline"
        await joined.close()


async def test_negotiation_before_joining_is_refused(room_client: TestClient) -> None:
    """An offer sent before joining is refused with error not-joined."""
    ws = await room_client.ws_connect("/api/consultations/1/signaling")
    await ws.send_json({"type": "offer", "to": "x", "sdp": "v=0"})
    assert (await expect(ws, "error"))["code"] == "not-joined"
    await ws.close()


async def _refused(client: TestClient, token: str, code: int, url: str = "") -> str:
    ws = await connect(client, token, url=url)
    error = await expect(ws, "error")
    await expect_closed(ws, code)
    return error["code"]


async def test_forged_expired_and_other_room_tokens_are_refused(room_client: TestClient) -> None:
    """A forged token, an expired room token or an API access token (the wrong audience) is refused as
    unauthenticated with close 4401; a valid room token for another consultation is forbidden, with close 4403."""
    app = room_client.app
    settings, keys = app[SETTINGS], app[KEYS]
    claims = RoomClaims(identity="user:1", room="consultation:1", name="x", role="county_doctor", user_id=1,
                        grants=HOST)
    expired = room_token(keys, settings.jwt_issuer, claims, ttl=-60)
    api_token = AccessToken(issuer=settings.jwt_issuer).with_identity("1").to_jwt(keys)
    other_room = room_token(keys, settings.jwt_issuer, claims.model_copy(update={"room": "consultation:2"}))
    assert await _refused(room_client, "forged.token.value", 4401) == "unauthenticated"
    assert await _refused(room_client, expired, 4401) == "unauthenticated"
    assert await _refused(room_client, api_token, 4401) == "unauthenticated"  # wrong audience
    assert await _refused(room_client, other_room, 4403) == "forbidden"


async def test_unsupported_protocol_version_closes_with_4400(room_client: TestClient) -> None:
    """A join with protocol version 1 gets error unsupported-version and the socket closes with 4400."""
    ws = await room_client.ws_connect("/api/consultations/1/signaling")
    await ws.send_json({"type": "join", "protocol": 1, "token": await token_for(room_client, "dr.li")})
    assert (await expect(ws, "error"))["code"] == "unsupported-version"
    await expect_closed(ws, 4400)


async def test_huge_frame_closes_with_1009_and_the_server_lives_on(room_client: TestClient) -> None:
    """A 1 MiB frame, past what the WebSocket layer takes (four times the message limit), closes that socket with
    1009, and the same clinician can join again at once."""
    ws, _ = await enter(room_client, "dr.li")
    await ws.send_str("x" * (1024 * 1024))
    await expect_closed(ws, 1009)
    again, _ = await enter(room_client, "dr.li")
    await again.close()


async def test_flooding_is_rate_limited_then_closed(room_client: TestClient) -> None:
    """A client that floods past the burst is answered until the bucket is empty, then has messages dropped
    with error "rate-limited", and, flooding on, is closed with 4429 after error "abuse". The flood goes on
    until that close: a fixed number of messages sent on a loaded machine, whose bucket refills while the
    server reads them, may never reach the abuse count."""
    ws, _ = await enter(room_client, "dr.li")
    codes: list[str] = []

    async def read() -> None:
        while (message := await ws.receive()).type == WSMsgType.TEXT:
            codes.append(message.json().get("code") or message.json()["type"])

    reader = asyncio.create_task(read())
    async with asyncio.timeout(60):
        sent = 0
        while not reader.done():
            try:
                await ws.send_json({"type": "ping", "id": sent})
            except ConnectionResetError:
                break  # closed under the flood: the reader has the close
            sent += 1
            if sent % 50 == 0:
                await asyncio.sleep(0)  # let the reader keep up
        await reader
    assert "pong" in codes and "rate-limited" in codes and codes[-1] == "abuse"
    assert ws.close_code == 4429


@pytest.mark.parametrize(("username", "consultation", "status"),
                         [("dr.chen", 1, 403), ("coord.zhao", 1, 403), ("dr.li", 404, 404), (None, 1, 401)])
async def test_room_tokens_only_for_participating_clinicians(room_client: TestClient, username: str | None,
                                                             consultation: int, status: int) -> None:
    """Each row: a room token is for participating clinicians only: a county doctor not in the consultation and a
    coordinator get 403, dr.li asking for a consultation that does not exist 404, and a caller not logged in 401."""
    headers = await bearer(room_client, "", username) if username else {}
    response = await room_client.post(f"/api/consultations/{consultation}/room-token", headers=headers)
    assert response.status == status


async def _joined_entries(client: TestClient, count: int) -> list[AuditEvent]:
    """The consultation.joined entries, once there are ``count`` (they are written beside the socket)."""
    entries: list[AuditEvent] = []
    for _ in range(50):
        async with client.app[DATABASE].session() as session:
            entries = list((await session.exec(select(AuditEvent).where(
                AuditEvent.action == "consultation.joined").order_by(AuditEvent.id))).all())
        if len(entries) >= count:
            break
        await asyncio.sleep(0.1)
    return entries


async def test_each_admission_to_the_room_is_audited_once(room_client: TestClient) -> None:
    """Who was in the consultation: every join that took a seat, not a wait in the lobby that ended in a
    refusal, and not a reconnect to the same seat."""
    li, li_joined = await enter(room_client, "dr.li")
    wang, wang_joined = await enter(room_client, "dr.wang")
    refused = await connect(room_client, await guest_token(room_client))
    waiting = await expect(refused, "lobby")
    await li.send_json({"type": "deny", "participant_id": waiting["self"]["id"]})
    await expect_closed(refused, 4403)
    patient = await connect(room_client, await guest_token(room_client))
    lobby = await expect(patient, "lobby")
    await li.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    await expect(patient, "joined")
    await wang.close(code=4000)  # the network drops, and dr.wang comes back to the same seat
    again = await connect(room_client, await token_for(room_client, "dr.wang"), resume=wang_joined["resume"])
    assert (await expect(again, "joined"))["resumed"] is True

    entries = await _joined_entries(room_client, 3)
    await asyncio.sleep(0.3)
    assert len(await _joined_entries(room_client, 3)) == 3, "the refused guest and the reconnect add nothing"
    seats = [li_joined["self"]["id"], wang_joined["self"]["id"], lobby["self"]["id"]]
    assert [e.subject for e in entries] == [f"participant:{seat}" for seat in seats]
    assert [e.actor.split(":")[0] for e in entries] == ["user", "user", "patient"]
    assert {e.consultation_id for e in entries} == {1}
    for ws in (li, again, patient):
        await ws.close()
