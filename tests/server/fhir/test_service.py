"""FHIR exports as services: each refuses those who may not see what it covers, holds back a referral's
patient data from the receiving side without the patient's consent, and audits every export."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select
from yarl import URL

from server.appkeys import DATABASE
from server.consent import records as consents
from server.db import Database
from server.errors import Forbidden, NotFound
from server.fhir import service as exports
from server.models import AuditEvent, Consultation, User
from server.permissions import Principal

from ..api.test_referrals import booked_referral, create, ids

ORIGIN = URL("https://telemed.example")


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def exported(database: Database) -> list[tuple[str, str]]:
    async with database.session() as session:
        rows = (await session.exec(select(AuditEvent).where(AuditEvent.action == "fhir.exported")
                                   .order_by(col(AuditEvent.id)))).all()
    return [(e.actor, e.subject) for e in rows]


@pytest.mark.parametrize("username", ["dr.zhou", "dr.chen", "admin", "auditor"])
async def test_a_consultation_is_exported_only_to_those_who_may_see_it(client: TestClient, username: str) -> None:
    """The demo consultation (dr.li and dr.wang, at Qingshan): others are refused and nothing is audited."""
    database = client.app[DATABASE]
    async with database.session() as session:
        consultation = (await session.exec(select(Consultation.id))).first()
    assert consultation is not None
    with pytest.raises(Forbidden):
        await exports.encounter(database, await principal(database, username), consultation)
    assert await exported(database) == []

    li = await principal(database, "dr.li")
    resource = await exports.encounter(database, li, consultation)
    assert resource["resourceType"] == "Encounter" and resource["subject"]["reference"] == "Patient/1"
    assert await exported(database) == [(f"user:{li.user_id}", f"Encounter/consultation-{consultation}")]


async def test_a_referral_leaves_only_while_the_patient_consents(client: TestClient) -> None:
    """The referring doctor and the receiving side export it, each export audited; another county's doctor
    never; and once the patient withdraws their consent to sharing, the receiving side no longer."""
    database = client.app[DATABASE]
    referral, _ = await booked_referral(client)
    number = referral["id"]
    li, wang, zhao, chen = [await principal(database, n) for n in ("dr.li", "dr.wang", "coord.zhao", "dr.chen")]

    with pytest.raises(Forbidden):
        await exports.service_request(database, chen, number)
    request = await exports.service_request(database, li, number)
    assert request["id"] == f"referral-{number}"
    appointment = await exports.appointment(database, zhao, number, origin=ORIGIN)
    virtual = {e["url"]: e for e in appointment["extension"][0]["extension"]}
    assert virtual["addressUrl"]["valueUrl"] == f"https://telemed.example/consultations/{referral['consultation_id']}"
    sharing = referral["sharing_consent"]["id"]
    consent = await exports.consent(database, wang, sharing, origin=ORIGIN)
    assert consent["resourceType"] == "Consent"
    assert await exported(database) == [
        (f"user:{li.user_id}", f"ServiceRequest/referral-{number}"),
        (f"user:{zhao.user_id}", f"Appointment/appointment-{referral['appointment']['id']}"),
        (f"user:{wang.user_id}", f"Consent/consent-{sharing}")]

    await consents.withdraw_as(database, None, li, sharing)
    for export in (lambda: exports.service_request(database, zhao, number),
                   lambda: exports.appointment(database, wang, number, origin=ORIGIN),
                   lambda: exports.consent(database, zhao, sharing, origin=ORIGIN)):
        with pytest.raises(Forbidden) as refused:
            await export()
        assert refused.value.code == "records-withheld"
    encounter = await exports.encounter(database, wang, referral["consultation_id"])
    assert "subject" not in encounter and "basedOn" not in encounter, "no patient, no reason"
    assert len(await exported(database)) == 4


async def test_an_unknown_consent_or_a_referral_without_appointment_is_not_found(client: TestClient) -> None:
    database = client.app[DATABASE]
    li = await principal(database, "dr.li")
    with pytest.raises(NotFound):
        await exports.consent(database, li, 999_999, origin=ORIGIN)
    referral = await create(client, await ids(client))
    with pytest.raises(NotFound):
        await exports.appointment(database, li, referral["id"], origin=ORIGIN)
    assert await exported(database) == []
