"""Structured logs: what every line of a whole consultation names (request, room, participant) and what it
never says (a password, a token, a guest link, the patient, a chat line, an SDP's ICE password)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.accesslog import PathOnlyAccessLogger, request_id_for
from server.app import create_app, prepare_database
from server.db import Database
from server.demo import DEMO_PASSWORD, seed_demo
from server.settings import Settings
from signaling import logcontext
from signaling.grants import room_id_for
from tests.support.signaling_client import connect, expect, room_token
from tests.support.visits import DEMO_PATIENT, as_guest, invite, patient_room_token

WRONG_PASSWORD = "not-the-password-7f3e"
CHAT_TEXT = "my blood pressure was 160 over 95 this morning"
ICE_PWD = "a=ice-pwd:Zq8sd7f6g5h4j3k2l1m0nbvc"
SDP = f"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\n{ICE_PWD}\r\n"


class Lines(logging.Handler):
    """Keeps each record's JSON line as the server would write it, formatted at once, in its context."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(logcontext.ContextFilter())
        self.setFormatter(logcontext.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    root = logging.getLogger()
    handler, level = Lines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestClient]:
    """The demo server as ``telemed serve`` runs it: its own access log, JSON lines."""
    settings = Settings.load(environ={"TELEMED_LOG_FORMAT": "json"}, data_dir=settings.data_dir, port=0)
    database = Database(settings.database_url)
    await prepare_database(database, settings)
    await seed_demo(database)
    test_server = TestServer(create_app(settings, database=database), host="127.0.0.1", port=0)
    await test_server.start_server(access_log_class=PathOnlyAccessLogger)
    client = TestClient(test_server)
    await client.start_server()
    yield client
    await client.close()


async def test_a_whole_consultation_logs_no_secret_and_names_its_context(server: TestClient, lines: Lines) -> None:
    """A journey from login to leaving: no line carries a password, cookie, token, guest link, identity answer,
    the patient's name, a chat line or an ICE password; HTTP lines carry their request id and signaling lines
    their room and participant."""
    client = server
    secrets: dict[str, str] = {"demo password": DEMO_PASSWORD, "wrong password": WRONG_PASSWORD,
                               "patient": DEMO_PATIENT, "chat": CHAT_TEXT, "ice-pwd": "ice-pwd",
                               "ice password": ICE_PWD.split(":", 1)[1]}

    # A clinician logs in through the page, opens the consultation and the API.
    page_login = await client.post("/login", data={"username": "dr.li", "password": DEMO_PASSWORD},
                                   allow_redirects=False)
    assert page_login.status == 303
    secrets["session cookie"] = page_login.cookies["telemed_session"].value
    assert (await client.get("/consultations/1")).status == 200
    api_login = await client.post("/api/auth/login", json={"username": "dr.li", "password": DEMO_PASSWORD})
    secrets["access token"] = (await api_login.json())["access_token"]
    consultation = await client.get("/api/consultations/1",
                                    headers={"Authorization": f"Bearer {secrets['access token']}"})
    assert consultation.status == 200
    request_id = consultation.headers["X-Request-Id"]

    # The patient is invited, opens the link, passes the identity check, consents and gets a room token.
    guest = await invite(client)
    secrets["guest link"] = guest
    secrets["identity proof"] = as_guest(guest)["identity"]
    assert (await client.get(f"/visit/{guest}")).status == 200
    secrets["patient room token"] = await patient_room_token(client, guest=guest)
    secrets["clinician room token"] = await room_token(client, "dr.li")

    # Both join the room; the patient waits in the lobby, is admitted, they negotiate and chat.
    doctor = await connect(client, secrets["clinician room token"])
    joined = await expect(doctor, "joined")
    patient = await connect(client, secrets["patient room token"])
    lobby = await expect(patient, "lobby")
    secrets["doctor resume"] = joined["resume"].split(".", 1)[1]
    secrets["patient resume"] = lobby["resume"].split(".", 1)[1]
    await expect(doctor, "lobby-update")
    await doctor.send_json({"type": "admit", "participant_id": lobby["self"]["id"]})
    await expect(patient, "joined")
    await expect(doctor, "participant-joined")
    await expect(doctor, "lobby-update")
    await patient.send_json({"type": "offer", "to": joined["self"]["id"], "sdp": SDP})
    assert (await expect(doctor, "offer"))["sdp"] == SDP
    await patient.send_json({"type": "chat", "text": CHAT_TEXT})
    assert (await expect(doctor, "chat"))["text"] == CHAT_TEXT
    # A failed login, by page and by API.
    assert (await client.post("/api/auth/login", json={"username": "dr.li", "password": WRONG_PASSWORD})).status == 401
    await client.post("/login", data={"username": "dr.li", "password": WRONG_PASSWORD}, allow_redirects=False)
    # Everyone leaves.
    await patient.send_json({"type": "leave"})
    await doctor.send_json({"type": "leave"})
    await patient.close()
    await doctor.close()

    records = [json.loads(line) for line in lines.lines]
    # The capture saw the journey: access lines with their ids, and the room's own lines.
    access = [r for r in records if r["logger"] == "aiohttp.access"]
    assert len(access) >= 12, records
    assert all(r.get("request_id") for r in access)
    assert any(r.get("request_id") == request_id for r in access)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert all(r["time"].endswith("+00:00") for r in records)
    seats = {joined["self"]["id"], lobby["self"]["id"]}
    signaling = [r for r in records if r["logger"] == "signaling.connection"]
    assert {r.get("participant") for r in signaling} == seats, signaling  # joined and left, each by name
    assert all(r.get("room") == room_id_for(1) and r.get("request_id") for r in signaling)
    for name, value in secrets.items():
        leaked = [line for line in lines.lines if value in line]
        assert not leaked, f"the {name} is in the logs: {leaked}"


def test_a_connection_loop_sets_its_room_and_participant_in_its_own_context() -> None:
    """What one connection's task sets is seen by the lines it logs and not by another task's."""
    handler = Lines()
    log = logging.getLogger("test.logcontext")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        import contextvars

        def connection(room_id: str, pid: str) -> None:
            logcontext.room.set(room_id)
            logcontext.participant.set(pid)
            log.info("handled")

        contextvars.copy_context().run(connection, "consultation-1", "p1")
        log.info("elsewhere")
        logcontext.room_context("consultation-2").run(log.info, "room loop")
    finally:
        log.removeHandler(handler)
    first, second, third = (json.loads(line) for line in handler.lines)
    assert (first["room"], first["participant"]) == ("consultation-1", "p1")
    assert "room" not in second and "participant" not in second
    assert third["room"] == "consultation-2" and "participant" not in third


@pytest.mark.parametrize(("incoming", "kept"), [
    ("abc-123_X.y", True),
    ("a" * 64, True),
    ("a" * 65, False),
    ("", False),
    ("id with spaces", False),
    ('x"}\n{"level":"ERROR', False),
    (None, False),
])
def test_an_incoming_request_id_is_kept_only_if_safe(incoming: str | None, kept: bool) -> None:
    """A proxy's X-Request-Id is followed only if it cannot forge or bloat a log line."""
    made = request_id_for(incoming)
    assert (made == incoming) is kept
    assert 1 <= len(made) <= 64


async def test_every_answer_carries_its_request_id(server: TestClient) -> None:
    """The id goes back to the caller, kept from a safe header and made fresh otherwise, errors included."""
    kept = await server.get("/api/consultations/1", headers={"X-Request-Id": "proxy-42"})
    assert kept.status == 401 and kept.headers["X-Request-Id"] == "proxy-42"
    fresh = await server.get("/login", headers={"X-Request-Id": "bad id\u00e9"})
    assert fresh.headers["X-Request-Id"] not in ("", "bad id\u00e9")
    assert (await server.get("/login")).headers["X-Request-Id"] != fresh.headers["X-Request-Id"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_exception_is_one_entry_with_its_context(fmt: str) -> None:
    """Both formats put the context after the message; JSON keeps the traceback in ``exc``, one line."""
    record = logging.LogRecord("telemed", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    record.request_id, record.room, record.participant = "r1", "consultation-1", None
    out = logcontext.formatter(fmt).format(record)
    if fmt == "json":
        entry = json.loads(out)
        assert entry["message"] == "failed here" and entry["request_id"] == "r1" and "participant" not in entry
        assert "RuntimeError: boom" in entry["exc"] and set(entry) == {"time", "level", "logger", "message",
                                                                      "request_id", "room", "exc"}
    else:
        first = out.splitlines()[0]
        assert first.endswith("failed here [request_id=r1 room=consultation-1]") and "RuntimeError: boom" in out
