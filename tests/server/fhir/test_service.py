"""FHIR reads as services: each refuses those who may not see what it covers, holds back a referral's
patient data from the receiving side without the patient's consent, and audits every read of patient data under
the patient it concerns."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server.appkeys import DATABASE
from server.consent import records as consents
from server.db import Database
from server.errors import Forbidden, NotFound
from server.fhir import service as exports
from server.fhir.resources import Site
from server.models import AuditEvent, Consultation, User
from server.permissions import Principal

from ..api.test_referrals import booked_referral, create, ids

SITE = Site("https://telemed.example")


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def exported(database: Database) -> list[tuple[str, str, str]]:
    """(who, under whom, which resource) of each audited read."""
    async with database.session() as session:
        rows = (await session.exec(select(AuditEvent).where(col(AuditEvent.action).in_(["fhir.exported", "fhir.read"]))
                                   .order_by(col(AuditEvent.id)))).all()
    return [(e.actor, e.subject, json.loads(e.detail)["resource"]) for e in rows]


def encounter(database: Database, who: Principal, number: int) -> object:
    return exports.read(database, who, exports.load_encounter, number, SITE)


def service_request(database: Database, who: Principal, number: int) -> object:
    return exports.read(database, who, exports.load_service_request, number, SITE)


def consent(database: Database, who: Principal, number: int) -> object:
    return exports.read(database, who, exports.load_consent, number, SITE)


def appointment(database: Database, who: Principal, number: int) -> object:
    return exports.read(database, who, exports.load_appointment, number, SITE)


@pytest.mark.parametrize("username", ["dr.zhou", "dr.chen", "admin", "auditor"])
async def test_a_consultation_is_exported_only_to_those_who_may_see_it(client: TestClient, username: str) -> None:
    """The demo consultation (dr.li and dr.wang, at Qingshan): others are refused and nothing is audited."""
    database = client.app[DATABASE]
    async with database.session() as session:
        consultation = (await session.exec(select(Consultation.id))).first()
    assert consultation is not None
    with pytest.raises(Forbidden):
        await encounter(database, await principal(database, username), consultation)
    assert await exported(database) == []

    li = await principal(database, "dr.li")
    resource = await encounter(database, li, consultation)
    assert resource["resourceType"] == "Encounter" and resource["subject"]["reference"] == "Patient/1"
    assert await exported(database) == [(f"user:{li.user_id}", "patient:1", f"Encounter/{consultation}")]


async def test_a_referral_leaves_only_while_the_patient_consents(client: TestClient) -> None:
    """The referring doctor and the receiving side export it, each export audited; another county's doctor
    never; and once the patient withdraws their consent to sharing, the receiving side no longer."""
    database = client.app[DATABASE]
    referral, _ = await booked_referral(client)
    number = referral["id"]
    li, wang, zhao, chen = [await principal(database, n) for n in ("dr.li", "dr.wang", "coord.zhao", "dr.chen")]

    with pytest.raises(Forbidden):
        await service_request(database, chen, number)
    request = await service_request(database, li, number)
    assert request["id"] == str(number)
    booking = referral["appointment"]["id"]
    found = await appointment(database, zhao, booking)
    virtual = {e["url"]: e for e in found["extension"][0]["extension"]}
    assert virtual["addressUrl"]["valueUrl"] == f"https://telemed.example/consultations/{referral['consultation_id']}"
    sharing = referral["sharing_consent"]["id"]
    given = await consent(database, wang, sharing)
    assert given["resourceType"] == "Consent"
    patient = f"patient:{referral['patient']['id']}"
    assert await exported(database) == [
        (f"user:{li.user_id}", patient, f"ServiceRequest/{number}"),
        (f"user:{zhao.user_id}", patient, f"Appointment/{booking}"),
        (f"user:{wang.user_id}", patient, f"Consent/{sharing}")]

    await consents.withdraw_as(database, None, li, sharing)
    for read in (lambda: service_request(database, zhao, number),
                 lambda: appointment(database, wang, booking),
                 lambda: consent(database, zhao, sharing)):
        with pytest.raises(Forbidden) as refused:
            await read()
        assert refused.value.code == "records-withheld"
    withheld = await encounter(database, wang, referral["consultation_id"])
    assert "subject" not in withheld and "basedOn" not in withheld, "no patient, no reason"
    read_last = await exported(database)
    assert len(read_last) == 4 and read_last[-1] == (f"user:{wang.user_id}", f"Encounter/{referral['consultation_id']}",
                                                     f"Encounter/{referral['consultation_id']}"), \
        "a read that names no patient is audited under what was read"


async def test_an_unknown_consent_or_a_referral_without_appointment_is_not_found(client: TestClient) -> None:
    """Nothing to read is a 404 (NotFound), and nothing is audited: no appointment yet, no opinion yet."""
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    with pytest.raises(NotFound):
        await consent(database, li, 999_999)
    referral = await create(client, await ids(client))
    with pytest.raises(NotFound):
        await exports.latest_appointment_id(database, li, referral["id"])
    with pytest.raises(NotFound):
        await exports.read(database, li, exports.load_diagnostic_report, referral["id"], SITE)
    assert await exported(database) == []
