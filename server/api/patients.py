"""REST: a hospital's patients. Registering, finding by national ID, and reading one record (audited)."""

from __future__ import annotations

from typing import Annotated

import pydantic
from aiohttp import web
from sqlmodel import col, select

from ..appkeys import DATABASE, RECORDING_KEY
from ..audit import trail as audit
from ..errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from ..http import json_response, parse_body, path_id
from ..identity.auth import caller
from ..models import Patient, Sex
from ..openapi import accepts
from ..patients import records as patients
from ..permissions import can_handle_patients, require

routes = web.RouteTableDef()


class NewPatient(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = pydantic.Field(min_length=1, max_length=100)
    sex: Sex = Sex.UNKNOWN
    birth_year: Annotated[int, pydantic.Field(ge=1900, le=2100)] | None = None
    phone: str = pydantic.Field(default="", max_length=32, pattern=r"^[0-9+\- ]*$")
    national_id: str | None = pydantic.Field(default=None, max_length=32)


def _key(request: web.Request) -> bytes:
    return patients.id_key(request.app[RECORDING_KEY])


def _national_id(raw: str, field: str = "national_id") -> str:
    try:
        return patients.normalise_national_id(raw)
    except ValueError as exc:
        raise ValidationFailed({field: str(exc)}) from None


@routes.post("/api/patients")
@accepts(NewPatient)
async def register_patient(request: web.Request) -> web.Response:
    """A clinician registers a patient of their own hospital. A national ID already registered there
    answers 409 with the existing record's id, so one person has one record."""
    who = caller(request).principal
    require(can_handle_patients(who), N_("Only clinicians register patients."))
    body = await parse_body(request, NewPatient)
    digest = last4 = None
    if body.national_id:
        national_id = _national_id(body.national_id)
        digest, last4 = patients.national_id_hash(_key(request), national_id), national_id[-4:]
    async with request.app[DATABASE].session() as session:
        if digest is not None:
            found = (await session.exec(select(Patient).where(Patient.national_id_hash == digest,
                                                              Patient.hospital_id == who.hospital_id))).first()
            if found is not None:
                raise Conflict(N_("A patient with this national ID is already registered at your hospital."),
                               code="duplicate-patient", patient_id=found.id)
        patient = Patient(hospital_id=who.hospital_id, name=body.name, sex=body.sex, birth_year=body.birth_year,
                          phone=body.phone, national_id_hash=digest, national_id_last4=last4 or "")
        session.add(patient)
        audit.with_commit(session, lambda: audit.Entry(f"user:{who.user_id}", "patient.registered",
                                                       subject=f"patient:{patient.id}"))
        await session.commit()
        await session.refresh(patient)
    return json_response(patients.describe(patient, own_hospital=True), status=201)


@routes.get("/api/patients")
async def list_patients(request: web.Request) -> web.Response:
    """The caller's hospital's patients (names and the last four of the ID, to pick one), or with
    ``?national_id=`` those matching it. A search by ID is audited, never with the ID itself."""
    who = caller(request).principal
    require(can_handle_patients(who), N_("Only clinicians look up patients."))
    raw = request.query.get("national_id")
    async with request.app[DATABASE].session() as session:
        if raw is not None:
            found = await patients.find_by_national_id(session, _key(request), who.hospital_id,
                                                       _national_id(raw))
        else:
            found = list((await session.exec(select(Patient).where(Patient.hospital_id == who.hospital_id)
                                             .order_by(col(Patient.name)))).all())
    if raw is not None:
        await audit.record(request.app[DATABASE], actor=f"user:{who.user_id}", action="patient.searched",
                           detail={"by": "national_id", "found": [p.id for p in found]})
    return json_response({"patients": [{"id": p.id, "name": p.name, "birth_year": p.birth_year,
                                        "national_id_last4": p.national_id_last4 or None} for p in found]})


@routes.get("/api/patients/{patient_id}")
async def get_patient(request: web.Request) -> web.Response:
    """One patient's record, to those who may see it; every view goes into the audit trail."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        patient = await session.get(Patient, path_id(request, "patient_id"))
        if patient is None:
            raise NotFound(N_("There is no such patient."))
        if not await patients.may_view(session, who, patient):
            raise Forbidden(N_("This patient's record is not yours to see."))
    await audit.record(request.app[DATABASE], actor=f"user:{who.user_id}", action="patient.viewed",
                       subject=f"patient:{patient.id}", detail={"via": "api"})
    return json_response(patients.describe(patient, own_hospital=who.hospital_id == patient.hospital_id))
