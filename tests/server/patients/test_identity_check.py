"""The patient's identity check before consent: what matches, what is counted, when a link locks, and that
what the patient typed goes nowhere but the comparison."""

from __future__ import annotations

import asyncio
import json

import pydantic
import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE, KEYS, SETTINGS
from server.audit import trail as audit
from server.errors import Forbidden, Unauthenticated
from server.models import Patient, PatientInvitation
from server.patients import identity_check, invitations
from server.patients.identity_check import IdentityAnswer, matches, normalise_name
from server.patients.invitations import Visit

from .test_invitations import CONSULTATION, invite, principal

WITH_ID = Patient(hospital_id=1, name="张伟 Zhang Wei", national_id_last4="123X")
WITHOUT_ID = Patient(hospital_id=1, name="买买提·艾力")


@pytest.mark.parametrize(("typed", "expected"), [
    ("张伟 Zhang Wei", "张伟zhangwei"),
    ("  张 伟\u3000ＺＨＡＮＧ  wei ", "张伟zhangwei"),  # an ideographic space and full-width letters
    ("张伟\tZhang\nWei", "张伟zhangwei"),
    ("买买提•艾力", "买买提·艾力"),
    ("买买提・艾力", "买买提·艾力"),
])
def test_names_are_compared_as_typed_on_any_keyboard(typed: str, expected: str) -> None:
    """Width, case, white space and the middle dot's variants do not make a right name wrong."""
    assert normalise_name(typed) == expected


@pytest.mark.parametrize(("patient", "name", "last4", "right"), [
    (WITH_ID, "张伟 Zhang Wei", "123X", True),
    (WITH_ID, "张伟 zhang wei", "123x", True),  # the check character in either case
    (WITH_ID, "张伟zhangwei", "１２３ｘ", True),  # full-width, as a Chinese keyboard may type them
    (WITH_ID, "张伟 Zhang Wei", "1234", False),
    (WITH_ID, "张伟 Zhang Wei", "", False),  # a record with an ID wants it
    (WITH_ID, "张伟", "123X", False),  # part of the name is not the name
    (WITH_ID, "李伟 Li Wei", "123X", False),
    (WITHOUT_ID, "买买提・艾力", "", True),  # no ID on file: the name alone decides
    (WITHOUT_ID, "买买提·艾力", "9999", True),
    (WITHOUT_ID, "买买提", "", False),
])
def test_an_answer_matches_the_name_and_where_on_file_the_last_four(patient: Patient, name: str, last4: str,
                                                                    right: bool) -> None:
    """The rule of a right answer, case by case."""
    assert matches(patient, IdentityAnswer(name=name, id_last4=last4)) is right


@pytest.mark.parametrize("body", [{"name": "", "id_last4": ""}, {"name": "x", "id_last4": "12"},
                                  {"name": "x", "id_last4": "12345"}, {"name": "x", "id_last4": "X123"},
                                  {"name": "x" * 101}, {"name": "x", "extra": 1}])
def test_malformed_answers_are_refused_before_any_comparison(body: dict) -> None:
    """A blank name, or last four that cannot be the end of a national ID, is a form error, not a guess."""
    with pytest.raises(pydantic.ValidationError):
        IdentityAnswer.model_validate(body)


async def _visit(client: TestClient, last4: str = "123X") -> tuple[Visit, str]:
    """A new invitation to the demo consultation, its patient given a national ID ending ``last4``."""
    database = client.app[DATABASE]
    async with database.session() as session:
        patient = await session.get(Patient, 1)
        assert patient is not None
        patient.national_id_last4 = last4
        session.add(patient)
        await session.commit()
    _, token = await invite(client, await principal(database, "dr.li"))
    async with database.session() as session:
        return await invitations.open_visit(session, client.app[KEYS], client.app[SETTINGS].jwt_issuer, token), token


async def _answer(client: TestClient, visit: Visit, name: str, last4: str) -> identity_check.Confirmed:
    async with client.app[DATABASE].session() as session:
        return await identity_check.confirm(session, visit, IdentityAnswer(name=name, id_last4=last4),
                                            settings=client.app[SETTINGS], keys=client.app[KEYS])


async def _row(client: TestClient, visit: Visit) -> PatientInvitation:
    async with client.app[DATABASE].session() as session:
        row = await session.get(PatientInvitation, visit.invitation_id)
        assert row is not None
        return row


async def test_a_right_answer_gives_a_proof_for_this_invitation_only(client: TestClient) -> None:
    """The proof opens the later steps of its own invitation, and not another's; without it they refuse."""
    visit, _ = await _visit(client)
    keys, issuer = client.app[KEYS], client.app[SETTINGS].jwt_issuer
    with pytest.raises(Forbidden) as refused:
        identity_check.require(keys, issuer, visit, None)
    assert refused.value.code == "identity-required"
    confirmed = await _answer(client, visit, "张伟 Zhang Wei", "123x")
    identity_check.require(keys, issuer, visit, confirmed.proof)
    other, other_link = await _visit(client)
    for proof in (confirmed.proof, "forged", other_link):  # another's; not a token; signed, but a link, not a proof
        with pytest.raises(Forbidden):
            identity_check.require(keys, issuer, other, proof)
    trail = [(e.actor, e.action, e.subject) for e in await audit.trail(client.app[DATABASE], CONSULTATION)]
    assert ("patient:1", "invitation.identity_confirmed", f"invitation:{visit.invitation_id}") in trail


async def test_wrong_answers_are_counted_and_the_fifth_locks_the_link(client: TestClient) -> None:
    """Each wrong answer says how many remain and is audited without what was typed; the fifth locks the link
    (audited once), after which even the right answer and the link itself are refused."""
    visit, token = await _visit(client)
    left = []
    for _ in range(4):
        with pytest.raises(Unauthenticated) as wrong:
            await _answer(client, visit, "李四 Li Si", "9876")
        assert wrong.value.code == "identity-mismatch"
        left.append(wrong.value.details["attempts_left"])
    assert left == [4, 3, 2, 1]
    assert (await _row(client, visit)).failed_identity_attempts == 4
    with pytest.raises(Unauthenticated) as fifth:
        await _answer(client, visit, "张伟 Zhang Wei", "0000")
    assert fifth.value.code == "link-locked"
    row = await _row(client, visit)
    assert (row.failed_identity_attempts, row.locked_at is not None) == (5, True)
    with pytest.raises(Unauthenticated) as after:
        await _answer(client, visit, "张伟 Zhang Wei", "123X")
    assert after.value.code == "link-locked", "once locked, not even the right answer opens it"
    async with client.app[DATABASE].session() as session:
        with pytest.raises(Unauthenticated) as opened:
            await invitations.open_visit(session, client.app[KEYS], client.app[SETTINGS].jwt_issuer, token)
    assert opened.value.code == "link-locked"

    entries = [e for e in await audit.trail(client.app[DATABASE], CONSULTATION)
               if e.subject == f"invitation:{visit.invitation_id}" and e.action != "invitation.created"]
    assert [(e.action, json.loads(e.detail)) for e in entries] == [
        *[("invitation.identity_failed", {"attempt": n, "limit": 5}) for n in range(1, 6)],
        ("invitation.locked", {"attempts": 5})]
    assert {e.actor for e in entries} == {"patient:1"}
    typed = ("李四", "Li Si", "9876", "0000")
    assert not any(word in e.detail or word in e.subject for e in entries for word in typed)


async def test_a_right_answer_does_not_reset_the_count(client: TestClient) -> None:
    """The limit is for the link's whole life: a right answer in one browser leaves the wrong ones counted."""
    visit, _ = await _visit(client)
    with pytest.raises(Unauthenticated):
        await _answer(client, visit, "张伟 Zhang Wei", "1234")
    await _answer(client, visit, "张伟 Zhang Wei", "123X")
    with pytest.raises(Unauthenticated) as wrong:
        await _answer(client, visit, "张伟 Zhang Wei", "1234")
    assert wrong.value.details["attempts_left"] == 3


async def test_concurrent_wrong_answers_lose_no_count_and_lock_once(client: TestClient) -> None:
    """Eight wrong answers at once: five are counted (each a row update, not a read then a write), the link
    locks once, and the rest find it locked."""
    visit, _ = await _visit(client)
    results = await asyncio.gather(*[_answer(client, visit, "王五", "5555") for _ in range(8)],
                                   return_exceptions=True)
    codes = sorted(r.code for r in results if isinstance(r, Unauthenticated))
    assert len(codes) == 8 and codes.count("identity-mismatch") == 4 and codes.count("link-locked") == 4
    row = await _row(client, visit)
    assert (row.failed_identity_attempts, row.locked_at is not None) == (5, True)
    actions = [e.action for e in await audit.trail(client.app[DATABASE], CONSULTATION)
               if e.subject == f"invitation:{visit.invitation_id}"]
    assert actions.count("invitation.identity_failed") == 5 and actions.count("invitation.locked") == 1
