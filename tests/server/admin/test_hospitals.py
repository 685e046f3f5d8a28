"""server/admin/hospitals.py, specialties.py and partnerships.py: the places accounts work in, and who is
partnered with whom, kept by administrators and audited."""

from __future__ import annotations

import json

import pydantic
import pytest
from sqlmodel import select

from server.admin import hospitals, partnerships, specialties
from server.admin.inputs import (
    DepartmentInput,
    HospitalInput,
    MemberInput,
    NewPartnership,
    PartnershipUpdate,
    SpecialtyInput,
)
from server.audit import trail as audit
from server.consultations.service import partner_hospital_ids
from server.db import Database
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import HospitalLevel, Specialty
from server.permissions import Principal

from .conftest import principal

MOUNTAIN = {"name": "高山县医院 Gaoshan County Hospital", "level": "county", "region": "西川省 Xichuan",
            "timezone": "Asia/Urumqi"}


async def _actions(database: Database) -> list[tuple[str, str]]:
    return [(e.action, e.subject) for e in await audit.trail(database)]


async def test_a_hospital_is_created_and_edited_with_a_real_time_zone(database: Database, admin: Principal) -> None:
    """An administrator creates a hospital in an IANA time zone and changes its level and zone; it is listed, and the
    trail holds its creation and an update naming each change with its before and after."""
    async with database.session() as session:
        created = await hospitals.create(session, admin, HospitalInput.model_validate(MOUNTAIN))
        edited = await hospitals.update(session, admin, created.id, HospitalInput.model_validate(
            {**MOUNTAIN, "level": "secondary", "timezone": "Asia/Shanghai"}))
        listed = await hospitals.list_all(session, admin)
    assert edited.level is HospitalLevel.SECONDARY and edited.timezone == "Asia/Shanghai"
    assert MOUNTAIN["name"] in [v.hospital.name for v in listed]
    assert ("hospital.created", f"hospital:{created.id}") in await _actions(database)
    [update] = [e for e in await audit.trail(database) if e.action == "hospital.updated"]
    assert json.loads(update.detail)["changes"] == {"level": ["county", "secondary"],
                                                    "timezone": ["Asia/Urumqi", "Asia/Shanghai"]}


@pytest.mark.parametrize(("fields", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"), ({"timezone": "CST"}, "timezone"),
    ({"level": "quaternary"}, "level"), ({"name": ""}, "name"), ({"region": "x" * 201}, "region"),
])
def test_hospital_fields_are_checked(fields: dict, field: str) -> None:
    """Each row: an unknown time zone, an abbreviation (CST) instead of an IANA zone, an unknown level, an empty name or
    a region over 200 characters is refused, the error naming that field alone."""
    with pytest.raises(pydantic.ValidationError) as caught:
        HospitalInput.model_validate({**MOUNTAIN, **fields})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


async def test_hospital_names_are_unique(database: Database, admin: Principal) -> None:
    """A hospital cannot be created, or renamed, under a name another hospital has (a conflict); saving a hospital again
    under its own name is allowed."""
    async with database.session() as session:
        first = await hospitals.create(session, admin, HospitalInput.model_validate(MOUNTAIN))
        with pytest.raises(Conflict):
            await hospitals.create(session, admin, HospitalInput.model_validate(MOUNTAIN))
        other = await hospitals.create(session, admin, HospitalInput.model_validate({**MOUNTAIN, "name": "Other"}))
        with pytest.raises(Conflict):
            await hospitals.update(session, admin, other.id, HospitalInput.model_validate(MOUNTAIN))
        await hospitals.update(session, admin, first.id, HospitalInput.model_validate(MOUNTAIN))  # its own name


async def test_departments_belong_to_a_hospital_and_name_a_specialty(database: Database, admin: Principal) -> None:
    """A department is added to a hospital, once per name there; an unknown specialty is refused naming specialty_id,
    and an unknown hospital is not found; an edit renames it and gives it a specialty, and the creation and the edit are
    audited."""
    async with database.session() as session:
        hospital = await hospitals.create(session, admin, HospitalInput.model_validate(MOUNTAIN))
        cardiology = (await session.exec(select(Specialty).where(Specialty.code == "cardiology"))).one()
        department = await hospitals.add_department(session, admin, hospital.id,
                                                    DepartmentInput(name="内科 Internal Medicine"))
        with pytest.raises(Conflict):
            await hospitals.add_department(session, admin, hospital.id, DepartmentInput(name="内科 Internal Medicine"))
        with pytest.raises(ValidationFailed) as caught:
            await hospitals.add_department(session, admin, hospital.id, DepartmentInput(name="X", specialty_id=999))
        assert list(caught.value.details["fields"]) == ["specialty_id"]
        with pytest.raises(NotFound):
            await hospitals.add_department(session, admin, 999, DepartmentInput(name="X"))
        edited = await hospitals.update_department(session, admin, department.id,
                                                   DepartmentInput(name="心内科 Cardiology",
                                                                   specialty_id=cardiology.id))
        view = await hospitals.get(session, admin, hospital.id)
    assert edited.specialty_id == cardiology.id and [d.name for d in view.departments] == ["心内科 Cardiology"]
    assert [a for a, _ in await _actions(database) if a.startswith("department.")] == [
        "department.created", "department.updated"]


async def test_specialties_are_created_and_edited_by_code(database: Database, admin: Principal) -> None:
    """A specialty is created once per code (the same code again is a conflict) and its slot length edited, and the list
    comes sorted by code; a code with capitals and a space, slots of 7 or 0 minutes and an empty Chinese name are
    refused."""
    body = SpecialtyInput(code="dermatology", name_zh="皮肤科", name_en="Dermatology", slot_minutes=20)
    async with database.session() as session:
        created = await specialties.create(session, admin, body)
        with pytest.raises(Conflict):
            await specialties.create(session, admin, body)
        edited = await specialties.update(session, admin, created.id, body.model_copy(update={"slot_minutes": 15}))
        codes = [s.code for s in await specialties.list_all(session, admin)]
    assert edited.slot_minutes == 15 and "dermatology" in codes and codes == sorted(codes)
    for bad in ({"code": "Has Space"}, {"slot_minutes": 7}, {"slot_minutes": 0}, {"name_zh": ""}):
        with pytest.raises(pydantic.ValidationError):
            SpecialtyInput.model_validate({**body.model_dump(), **bad})


async def test_a_partnership_joins_its_hospitals_for_referrals(database: Database, admin: Principal) -> None:
    """Members of a new partnership become each other's partners (what referrals and slot searches go by); a
    member that leaves stops being one; the lead cannot leave while it leads."""
    async with database.session() as session:
        lead = await hospitals.create(session, admin, HospitalInput.model_validate(
            {**MOUNTAIN, "name": "西川省人民医院 Xichuan Provincial", "level": "tertiary"}))
        county = await hospitals.create(session, admin, HospitalInput.model_validate(MOUNTAIN))
        view = await partnerships.create(session, admin, NewPartnership(
            name="西川医联体 Xichuan Partnership", lead_hospital_id=lead.id, member_ids=[county.id, county.id]))
        assert view.lead.id == lead.id and [h.id for h in view.members] == [county.id]
        assert await partner_hospital_ids(session, county.id) == {lead.id, county.id}
        with pytest.raises(Conflict):
            await partnerships.remove_member(session, admin, view.partnership.id, lead.id)
        left = await partnerships.remove_member(session, admin, view.partnership.id, county.id)
        assert left.members == [] and await partner_hospital_ids(session, county.id) == frozenset()
        with pytest.raises(NotFound):
            await partnerships.remove_member(session, admin, view.partnership.id, county.id)
        back = await partnerships.add_member(session, admin, view.partnership.id, MemberInput(hospital_id=county.id))
        again = await partnerships.add_member(session, admin, view.partnership.id, MemberInput(hospital_id=county.id))
        assert [h.id for h in back.members] == [county.id] == [h.id for h in again.members]
        moved = await partnerships.update(session, admin, view.partnership.id, PartnershipUpdate(
            name="西川医联体 Xichuan Partnership", lead_hospital_id=county.id))
        assert moved.lead.id == county.id and [h.id for h in moved.members] == [lead.id], "the old lead stays"
        listed = await partnerships.list_all(session, admin)
    assert len(listed) == 2
    assert [a for a, _ in await _actions(database) if a.startswith("partnership.")] == [
        "partnership.created", "partnership.member_removed", "partnership.member_added", "partnership.updated"]


async def test_partnerships_name_hospitals_that_exist(database: Database, admin: Principal) -> None:
    """A partnership whose lead, or one of whose members, is no hospital is refused naming that field, and one named
    like an existing partnership is a conflict."""
    async with database.session() as session:
        for body, field in ((NewPartnership(name="P", lead_hospital_id=999), "lead_hospital_id"),
                            (NewPartnership(name="P", lead_hospital_id=1, member_ids=[2, 999]), "member_ids")):
            with pytest.raises(ValidationFailed) as caught:
                await partnerships.create(session, admin, body)
            assert list(caught.value.details["fields"]) == [field]
        with pytest.raises(Conflict):
            await partnerships.create(session, admin, NewPartnership(
                name="江南省人民医院医联体 Jiangnan Provincial Partnership", lead_hospital_id=1))


@pytest.mark.parametrize("username", ["dr.li", "coord.zhao", "auditor"])
async def test_only_administrators_keep_hospitals_and_partnerships(database: Database, username: str) -> None:
    """Each row: a county doctor, a coordinator or an auditor is forbidden to list or create hospitals, to list
    specialties or partnerships, and to add a hospital to a partnership."""
    who = await principal(database, username)
    async with database.session() as session:
        for attempt in (hospitals.list_all(session, who),
                        hospitals.create(session, who, HospitalInput.model_validate(MOUNTAIN)),
                        specialties.list_all(session, who), partnerships.list_all(session, who),
                        partnerships.add_member(session, who, 1, MemberInput(hospital_id=2))):
            with pytest.raises(Forbidden):
                await attempt
