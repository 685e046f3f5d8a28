"""Idempotency keys on the creating requests: the same request with the same key is answered again, not done
again; another request with the key is refused; a malformed key is a 400; the key and the change commit
together."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from sqlmodel import col, func, select

from server import idempotency
from server.appkeys import DATABASE
from server.db import Database
from server.errors import BadRequest
from server.idempotency import Once
from server.models import Appointment, Consent, IdempotencyKey, PatientInvitation, Referral, User
from server.permissions import Principal
from server.referrals import service as referrals
from server.referrals.inputs import ReferralCreate
from server.settings import Settings

from ..conftest import _start, login
from ..support.visits import invite
from .api.test_referrals import act, create, ids, new_referral

# ---- the key itself ----

GOOD_KEYS = ["a", "x" * 128, "8e03978e-40d5-43e8-bc93-6894a57f9324", "with spaces and ~!@#$%^&*()"]
BAD_KEYS = ["", "x" * 129, "é", "tab\there", "new\nline"]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_a_key_is_1_to_128_printable_ascii_characters(key: str) -> None:
    """Guards the keys a client may choose; each row: a key of 1 to 128 printable ASCII characters (a UUID, spaces and
    punctuation too) is kept as given, with a 64-character fingerprint of the request."""
    once = Once.of(key, "user:1", "POST", "/api/referrals", {"a": 1})
    assert once is not None and once.key == key and len(once.fingerprint) == 64


@pytest.mark.parametrize("key", BAD_KEYS)
def test_anything_else_is_a_400_naming_the_header(key: str) -> None:
    """Guards the keys refused; each row: an empty key, one of 129 characters, one not ASCII, or one with a tab or a
    newline is a bad request (bad-idempotency-key) whose message names the Idempotency-Key header."""
    with pytest.raises(BadRequest) as refused:
        Once.of(key, "user:1", "POST", "/api/referrals", {})
    assert refused.value.code == "bad-idempotency-key" and "Idempotency-Key" in refused.value.message


def test_no_header_no_key() -> None:
    """Guards the default at its source: a request without the header has no key to keep."""
    assert Once.of(None, "user:1", "POST", "/api/referrals", {}) is None


def test_the_fingerprint_is_the_request_not_its_spelling() -> None:
    """Guards what counts as the same request: the same fields in another order are; another body, path or
    method is not."""
    def fingerprint(method: str, path: str, body: Any) -> str:
        once = Once.of("k", "user:1", method, path, body)
        assert once is not None
        return once.fingerprint
    first = fingerprint("POST", "/api/referrals", {"reason": "a", "urgency": "urgent"})
    assert fingerprint("POST", "/api/referrals", {"urgency": "urgent", "reason": "a"}) == first
    assert fingerprint("POST", "/api/referrals", {"reason": "b", "urgency": "urgent"}) != first
    assert fingerprint("POST", "/api/referrals/1/appointment", {"reason": "a", "urgency": "urgent"}) != first
    assert fingerprint("PUT", "/api/referrals", {"reason": "a", "urgency": "urgent"}) != first


# ---- over the API, route by route ----


@dataclasses.dataclass
class Creating:
    """One creating route: where to send what, as whom, another request to try the same key with, and how
    many rows the route has created so far."""

    path: str
    body: Any
    headers: dict[str, str]
    status: int
    other: tuple[str, Any]  # (path, body) of a different request
    count: Callable[[], Awaitable[int]]


async def _count(database: Database, model: Any, *where: Any) -> int:
    async with database.session() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


async def _referral(client: TestClient) -> Creating:
    known = await ids(client)
    body = new_referral(known, reason="Keyed referral")
    return Creating("/api/referrals", body, await login(client, "dr.li"), 201,
                    ("/api/referrals", {**body, "reason": "Another referral"}),
                    lambda: _count(client.app[DATABASE], Referral, col(Referral.reason).in_(
                        ["Keyed referral", "Another referral"])))


async def _booking(client: TestClient) -> Creating:
    known = await ids(client)
    referral = await create(client, known)
    assert (await act(client, "coord.zhao", referral["id"], "accept")).status == 200
    headers = await login(client, "coord.zhao")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    found = await (await client.get(f"/api/slots?specialty=cardiology&date={tomorrow}&days=7", headers=headers)).json()
    slots = [s for f in found["specialists"] if f["specialist"]["id"] == known["dr.wang"] for s in f["slots"]]
    path = f"/api/referrals/{referral['id']}/appointment"
    return Creating(path, {"specialist_id": known["dr.wang"], "starts_at": slots[0]["starts_at"]}, headers, 201,
                    (path, {"specialist_id": known["dr.wang"], "starts_at": slots[1]["starts_at"]}),
                    lambda: _count(client.app[DATABASE], Appointment, Appointment.referral_id == referral["id"]))


async def _verbal_consent(client: TestClient) -> Creating:
    path = "/api/consultations/1/consents"
    return Creating(path, {"purpose": "video"}, await login(client, "dr.li"), 201, (path, {"purpose": "recording"}),
                    lambda: _count(client.app[DATABASE], Consent, Consent.consultation_id == 1))


async def _guest_consent(client: TestClient) -> Creating:
    guest = await invite(client)
    body = {"guest": guest, "purpose": "video", "given": True}
    return Creating("/api/guest/consents", body, {}, 201, ("/api/guest/consents", {**body, "purpose": "recording"}),
                    lambda: _count(client.app[DATABASE], Consent, Consent.consultation_id == 1))


async def _invitation(client: TestClient) -> Creating:
    # No body: another request with the same key is one to another route.
    return Creating("/api/consultations/1/invitations", {}, await login(client, "dr.li"), 201,
                    ("/api/consultations/1/consents", {"purpose": "video"}),
                    lambda: _count(client.app[DATABASE], PatientInvitation, PatientInvitation.consultation_id == 1))


ROUTES = {"referral": _referral, "booking": _booking, "verbal consent": _verbal_consent,
          "guest consent": _guest_consent, "invitation": _invitation}


@pytest.mark.parametrize("route", ROUTES)
async def test_the_same_request_and_key_is_answered_again_not_done_again(client: TestClient, route: str) -> None:
    """Guards each creating route's replay: the first request with a key does the work; the same request
    with the same key gets the same status and the same bytes, marked Idempotent-Replayed, and creates
    nothing more; a different request with the key is 422 naming it and creates nothing."""
    case = await ROUTES[route](client)
    before = await case.count()
    headers = {**case.headers, "Idempotency-Key": f"{route} 1"}
    first = await client.post(case.path, json=case.body, headers=headers)
    assert first.status == case.status, await first.text()
    assert "Idempotent-Replayed" not in first.headers
    text = await first.text()
    assert await case.count() == before + 1
    for _ in range(2):
        again = await client.post(case.path, json=case.body, headers=headers)
        assert (again.status, await again.text()) == (case.status, text)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.content_type == "application/json"
    assert await case.count() == before + 1

    path, body = case.other
    other = await client.post(path, json=body, headers=headers)
    assert other.status == 422, await other.text()
    error = (await other.json())["error"]
    assert error["code"] == "idempotency-key-reused" and error["key"] == f"{route} 1"
    assert "Idempotency-Key" in error["message"]
    assert await case.count() == before + 1


@pytest.mark.parametrize("key", BAD_KEYS[:3])
async def test_a_malformed_key_is_a_400_and_nothing_is_done(client: TestClient, key: str) -> None:
    """Guards the header's check over HTTP: a key the server would not keep is refused, naming the header,
    before anything is created."""
    case = await _referral(client)
    response = await client.post(case.path, json=case.body, headers={**case.headers, "Idempotency-Key": key})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad-idempotency-key" and "Idempotency-Key" in error["message"]
    assert await case.count() == 0


async def test_without_a_key_each_request_is_done(client: TestClient) -> None:
    """Guards the default: keys are the client's choice; without one, two requests are two referrals."""
    case = await _referral(client)
    for _ in range(2):
        assert (await client.post(case.path, json=case.body, headers=case.headers)).status == 201
    assert await case.count() == 2


async def test_keys_are_each_callers_own(client: TestClient) -> None:
    """Guards one caller from another's answers: two clinicians who happen to pick the same key each get
    their own invitation."""
    made = []
    for username in ("dr.li", "dr.wang"):
        response = await client.post("/api/consultations/1/invitations", json={},
                                     headers={**await login(client, username), "Idempotency-Key": "same"})
        assert response.status == 201 and "Idempotent-Replayed" not in response.headers
        made.append((await response.json())["created_by"])
    assert len(set(made)) == 2


async def test_a_refused_request_leaves_no_key(client: TestClient) -> None:
    """Guards the key living and dying with the change: a request refused (422 for a field) writes no key,
    so the corrected request with the same key is done, not refused as another request."""
    case = await _referral(client)
    headers = {**case.headers, "Idempotency-Key": "fix and resend"}
    wrong = await client.post(case.path, json={**case.body, "patient_id": 999}, headers=headers)
    assert wrong.status == 422 and (await wrong.json())["error"]["code"] == "validation-failed"
    right = await client.post(case.path, json=case.body, headers=headers)
    assert right.status == 201 and "Idempotent-Replayed" not in right.headers
    assert await case.count() == 1


async def test_a_key_is_forgotten_after_24_hours(client: TestClient) -> None:
    """Guards the keys' lifetime: after 24 hours the same key and request are a new request (and the old
    row makes way for it)."""
    case = await _referral(client)
    headers = {**case.headers, "Idempotency-Key": "yesterday"}
    assert (await client.post(case.path, json=case.body, headers=headers)).status == 201
    async with client.app[DATABASE].session() as session:
        await session.exec(sa.update(IdempotencyKey).values(  # type: ignore[call-overload]
            created_at=datetime.now(UTC) - timedelta(hours=25)))
        await session.commit()
    again = await client.post(case.path, json=case.body, headers=headers)
    assert again.status == 201 and "Idempotent-Replayed" not in again.headers
    assert await case.count() == 2
    async with client.app[DATABASE].session() as session:
        [row] = (await session.exec(select(IdempotencyKey))).all()
    assert row.created_at > datetime.now(UTC) - timedelta(hours=1)


# ---- on both databases: concurrent requests, and the key and the change in one transaction ----


@pytest.fixture
async def served(settings: Settings, database_url: str) -> AsyncIterator[TestClient]:
    """A real server with the demo data on SQLite, or on a fresh PostgreSQL database."""
    if not database_url.startswith("sqlite"):
        database = Database(database_url)
        await database.upgrade()  # as `telemed db upgrade` does; only the embedded database upgrades itself
        await database.close()
    client = await _start(dataclasses.replace(settings, database_url=database_url))
    yield client
    await client.close()


async def test_concurrent_requests_with_one_key_make_one_referral(served: TestClient) -> None:
    """Guards the race a client that times out and resends makes: five requests with one key at the same
    moment make one referral; the others wait for it and get its answer."""
    case = await _referral(served)
    headers = {**case.headers, "Idempotency-Key": "at once"}
    answers = await asyncio.gather(*(served.post(case.path, json=case.body, headers=headers) for _ in range(5)))
    assert [a.status for a in answers] == [201] * 5, [await a.text() for a in answers]
    assert len({await a.text() for a in answers}) == 1
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == [""] + ["true"] * 4
    assert await case.count() == 1


async def test_the_key_and_the_change_commit_together_or_not_at_all(served: TestClient) -> None:
    """Guards the transaction boundary: when the answer cannot be put into words inside the operation's
    transaction, neither the referral nor its key is written; when it can, both are."""
    database = served.app[DATABASE]
    known = await ids(served)
    async with database.session() as session:
        doctor = (await session.exec(select(User).where(User.username == "dr.li"))).one()
    assert doctor.id is not None
    who = Principal(doctor.id, doctor.role, doctor.hospital_id)
    body = ReferralCreate.model_validate(new_referral(known, submit=False, sharing_consent=None))
    once = Once.of("together", idempotency.of_user(who.user_id), "POST", "/api/referrals", body.model_dump(mode="json"))

    async def fails(_: Referral) -> idempotency.Answer:
        raise RuntimeError("the answer could not be put into words")

    async def answers(referral: Referral) -> idempotency.Answer:
        return idempotency.Answer.of(201, {"id": referral.id})

    async with database.session() as session:
        with pytest.raises(RuntimeError):
            await referrals.refer(session, who, body, locale="en", how=None,  # type: ignore[arg-type]
                                  reply=idempotency.Reply(fails, once))
    assert (await _count(database, Referral), await _count(database, IdempotencyKey)) == (0, 0)

    reply = idempotency.Reply(answers, once)
    async with database.session() as session:
        referral = await referrals.refer(session, who, body, locale="en", how=None,  # type: ignore[arg-type]
                                         reply=reply)
    assert reply.answer == idempotency.Answer(201, f'{{"id": {referral.id}}}')
    assert (await _count(database, Referral), await _count(database, IdempotencyKey)) == (1, 1)
    assert once is not None and await idempotency.stored(database, once) == reply.answer
