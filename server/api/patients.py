"""REST: a hospital's patients. Registering, finding by national ID, and reading one record (audited)."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import DATABASE, RECORDING_KEY
from ..http import json_response, parse_body, parse_form, path_id
from ..identity.auth import caller
from ..openapi import accepts, answers, queries
from ..patients import records as patients
from ..patients.inputs import NewPatient, PatientSearch

routes = web.RouteTableDef()


def _key(request: web.Request) -> bytes:
    return patients.id_key(request.app[RECORDING_KEY])


@routes.post("/api/patients")
@accepts(NewPatient)
@answers(patients.PatientShown, status=201, description="The patient, registered.")
async def register_patient(request: web.Request) -> web.Response:
    """A clinician registers a patient of their own hospital. A national ID already registered there
    answers 409 with the existing record's id, so one person has one record."""
    body = await parse_body(request, NewPatient)
    async with request.app[DATABASE].session() as session:
        patient = await patients.register(session, caller(request).principal, body, _key(request))
    return json_response(patients.describe(patient, own_hospital=True), status=201)


@routes.get("/api/patients")
@queries(PatientSearch)
@answers(patients.PatientPage)
async def list_patients(request: web.Request) -> web.Response:
    """The caller's hospital's patients (names and the last four of the ID, to pick one), ``?name=`` a part
    of the name, ``?page=`` (from 1), 20 a page; or with ``?national_id=`` those matching it. A search by ID
    is audited, never with the ID itself."""
    query = parse_form(request.query, PatientSearch)
    async with request.app[DATABASE].session() as session:
        found = await patients.look_up(session, caller(request).principal, _key(request), query)
    return json_response({"patients": [{"id": p.id, "name": p.name, "birth_year": p.birth_year,
                                        "national_id_last4": p.national_id_last4 or None} for p in found.items],
                          "page": found.page, "pages": found.pages, "total": found.total})


@routes.get("/api/patients/{patient_id}")
@answers(patients.PatientShown)
async def get_patient(request: web.Request) -> web.Response:
    """One patient's record, to those who may see it; every view goes into the audit trail."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        patient = await patients.view(session, who, path_id(request, "patient_id"), via="api")
    return json_response(patients.shown_to(who, patient))
