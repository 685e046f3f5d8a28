"""The patient pages: a hospital's patients (searched by name or national ID, a page at a time),
registering one, and one patient's chart (their consultations and referrals as the viewer may see them).

The forms parse into the models the REST API reads (``PatientSearch``, ``NewPatient``) and call the same
operations (``patients.records``, ``patients.chart``), so the rules, limits and audit entries are the same.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.errors import N_, TelemedError, ValidationFailed
from server.http import parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.models import Sex
from server.notices import STATE_LABELS
from server.patients import chart as charts
from server.patients import records
from server.patients.inputs import NewPatient, PatientSearch
from server.permissions import can_create_consultation, can_handle_patients, can_refer, require
from server.retention import holds

from .forms import field_errors, summary
from .pages import STATUS_LABELS
from .referral_pages import URGENCY_LABELS
from .render import RENDERER

routes = web.RouteTableDef()

SEX_LABELS = {Sex.FEMALE: N_("Female"), Sex.MALE: N_("Male"), Sex.OTHER: N_("Other"), Sex.UNKNOWN: N_("Not recorded")}
NEW_PATIENT_FIELDS = ("name", "sex", "birth_year", "phone", "national_id")


def _key(request: web.Request) -> bytes:
    return records.id_key(request.app[RECORDING_KEY])


def _render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    return request.app[RENDERER].render(request, template, {"sex_labels": SEX_LABELS, **context}, status=status)


@routes.get("/patients", name="patients")
async def patient_list(request: web.Request) -> web.Response:
    """The hospital's patients, a page at a time, or those whose name holds ``?name=``."""
    form = {name: request.query[name] for name in ("name", "page") if name in request.query}
    return await _search(request, form)


@routes.post("/patients")
async def patient_find(request: web.Request) -> web.Response:
    """Those matching a national ID: posted, so that the ID stays out of addresses, history and logs."""
    form = {k: v.strip() for k, v in (await read_form(request)).items() if k == "national_id"}
    return await _search(request, form)


async def _search(request: web.Request, form: dict[str, str]) -> web.Response:
    who = caller(request).principal
    errors: dict[str, str] = {}
    found = None
    try:
        query = parse_form(form, PatientSearch)
        async with request.app[DATABASE].session() as session:
            found = await records.look_up(session, who, _key(request), query)
    except ValidationFailed as exc:
        errors = field_errors(exc, translator(request))
    name = form.get("name", "").strip()

    def page_url(page: int) -> str:
        return "/patients?" + urlencode({**({"name": name} if name else {}), "page": page})

    by_id = "national_id" in form
    return _render(request, "patients.html", {
        "name": name, "by_id": by_id, "errors": errors, "found": found, "searched": bool(name) or by_id,
        # an ID is shown again only to be corrected, never once it has found someone
        "national_id": form.get("national_id", "") if errors else "",
        "page_url": page_url,
    }, status=422 if errors else 200)


@routes.get("/patients/new", name="patient_new")
async def patient_new(request: web.Request) -> web.Response:
    require(can_handle_patients(caller(request).principal), N_("Only clinicians register patients."))
    return _render(request, "patient_new.html", {"form": {}, "errors": {}, "error": None, "existing": None})


@routes.post("/patients/new")
async def patient_register(request: web.Request) -> web.Response:
    """Register a patient of the caller's hospital: the same model, limits and operation as POST /api/patients."""
    form = {k: v.strip() for k, v in (await read_form(request)).items() if k in NEW_PATIENT_FIELDS}
    gettext = translator(request)
    try:
        body = parse_form(form, NewPatient)
        async with request.app[DATABASE].session() as session:
            patient = await records.register(session, caller(request).principal, body, _key(request))
    except TelemedError as exc:
        return _render(request, "patient_new.html", {
            "form": form, "errors": field_errors(exc, gettext), "error": summary(exc, gettext),
            "existing": exc.details.get("patient_id")}, status=exc.status)
    raise web.HTTPSeeOther(f"/patients/{patient.id}")


@routes.get("/patients/{patient_id}", name="patient")
async def patient_page(request: web.Request) -> web.Response:
    """One patient's chart: the record, their consultations and referrals as the viewer may see them."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        chart = await charts.chart(session, who, path_id(request, "patient_id"),
                                   request.app[SETTINGS].default_timezone)
        held = await holds.standing_on(session, patient_id=chart.patient.id)
    return _render(request, "patient.html", {
        "chart": chart, "held_since": min((h.placed_at for h in held), default=None),
        "status_labels": STATUS_LABELS, "urgency_labels": URGENCY_LABELS, "state_labels": STATE_LABELS,
        "can_plan": chart.own_hospital and can_create_consultation(who),
        "can_refer": chart.own_hospital and can_refer(who)})
