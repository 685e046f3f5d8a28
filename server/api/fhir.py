"""The read-only FHIR R4 API under ``/fhir`` (and the older ``/api/.../fhir`` exports of single resources).

``fhir/service.py`` decides what the caller may read and audits it; this only routes, answers as
``application/fhir+json``, and says what is served (``/fhir/metadata``). Every route but ``metadata`` and the
extensions' ``StructureDefinition`` pages needs the same bearer token (or session) as ``/api``; errors answer as
an ``OperationOutcome`` (``http.py``).

Ids are our row ids: ``GET /fhir/Patient/3`` answers the reference ``Patient/3``. Everything about one referral
is the Bundle ``GET /fhir/Bundle/referral-{id}`` (a ``collection``: a read of a Bundle by id, which any FHIR
client can do, rather than a custom operation needing an OperationDefinition).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..appkeys import DATABASE, SETTINGS
from ..errors import N_, NotFound
from ..fhir import resources, service
from ..fhir.resources import Site
from ..http import json_response, path_id
from ..identity.auth import caller, public
from ..models import utcnow
from ..openapi import FHIR_JSON, answers_fhir
from ..parsing import parse_id
from .consultations import consultation_id
from .referrals import referral_id

routes = web.RouteTableDef()


def site(request: web.Request) -> Site:
    """This installation's address: ``TELEMED_PUBLIC_URL``, else the one the request came to."""
    return Site(request.app[SETTINGS].public_url or str(request.url.origin()))


def answer(resource: dict[str, Any], status: int = 200) -> web.Response:
    response = json_response(resource, status=status)
    response.content_type = FHIR_JSON
    return response


def _id(request: web.Request, name: str) -> int:
    """A FHIR id in the path: ours are row ids, so anything else names nothing here (404, not 400)."""
    number = parse_id(request.match_info[name])
    if number is None:
        raise NotFound(N_("There is no such resource."))
    return number


def _reader(resource_type: str, parameter: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    loader = service.LOADERS[resource_type]

    async def handler(request: web.Request) -> web.Response:
        return answer(await service.read(request.app[DATABASE], caller(request).principal, loader,
                                         _id(request, parameter), site(request)))

    handler.__name__ = handler.__qualname__ = f"fhir_read_{parameter.removesuffix('_id')}"
    handler.__doc__ = f"Read one {resource_type} by id (FHIR R4 read)."
    return answers_fhir(resource_type)(handler)


READS = {  # resourceType -> the path parameter naming its id
    "Patient": "patient_id", "Practitioner": "practitioner_id", "PractitionerRole": "practitioner_role_id",
    "Organization": "organization_id", "ServiceRequest": "service_request_id", "Appointment": "appointment_id",
    "Encounter": "encounter_id", "Consent": "consent_id", "DiagnosticReport": "diagnostic_report_id",
    "Binary": "binary_id",
}
for _type, _parameter in READS.items():
    routes.get(f"/fhir/{_type}/{{{_parameter}}}")(_reader(_type, _parameter))


@routes.get("/fhir/Bundle/referral-{referral_id}")
@answers_fhir("Bundle")
async def fhir_referral_bundle(request: web.Request) -> web.Response:
    """Everything about one referral, as a FHIR R4 Bundle of type collection.

    The ServiceRequest, its patient, the clinicians and hospitals it names, every appointment (a moved one's
    cancelled predecessor too), the consultation's Encounter, its consents and, once completed, the opinion as a
    DiagnosticReport: each as its own read answers it, and each reference in it resolves under /fhir."""
    return answer(await service.referral_bundle(request.app[DATABASE], caller(request).principal,
                                                _id(request, "referral_id"), site(request)))


@routes.get("/fhir/metadata")
@public
@answers_fhir("CapabilityStatement")
async def fhir_metadata(request: web.Request) -> web.Response:
    """The CapabilityStatement: exactly what this FHIR API serves (open to all, as FHIR expects)."""
    here = site(request)
    reads = [*READS, "Bundle", "StructureDefinition"]
    return answer({
        "resourceType": "CapabilityStatement", "status": "active", "date": resources.instant(utcnow()),
        "publisher": "Telemed", "kind": "instance", "fhirVersion": resources.FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "software": {"name": "Telemed"},
        "implementation": {"description": "Telemed's read-only FHIR R4 API", "url": here.fhir},
        "rest": [{
            "mode": "server",
            "documentation": "Read-only. Bundle: only Bundle/referral-{id}, everything about one referral.",
            "security": {"cors": False, "description": "The bearer token of the REST API (POST /api/auth/login), "
                         "as 'Authorization: Bearer <token>'. The same rules as the pages decide what each caller "
                         "reads, and every read of patient data is audited."},
            "resource": [{"type": name, "interaction": [{"code": "read"}]} for name in reads],
        }],
    })


@routes.get("/fhir/StructureDefinition/{name}")
@public
@answers_fhir("StructureDefinition")
async def fhir_structure_definition(request: web.Request) -> web.Response:
    """The definition of one of our extensions, at the URL the extension carries (open to all)."""
    extension = resources.EXTENSIONS.get(request.match_info["name"])
    if extension is None:
        raise NotFound(N_("There is no such resource."))
    return answer(resources.structure_definition(extension, site(request)))


# --- the older exports, one resource each, audited as exports ---------------------------------------------------


async def _export(request: web.Request, loader: service.Loader, number: int) -> web.Response:
    return answer(await service.read(request.app[DATABASE], caller(request).principal, loader, number,
                                     site(request), exported=True))


@routes.get("/api/referrals/{referral_id}/fhir")
@answers_fhir("ServiceRequest")
async def referral_service_request(request: web.Request) -> web.Response:
    """The referral as a FHIR R4 ServiceRequest (also GET /fhir/ServiceRequest/{id})."""
    return await _export(request, service.load_service_request, referral_id(request))


@routes.get("/api/referrals/{referral_id}/appointment/fhir")
@answers_fhir("Appointment")
async def referral_appointment(request: web.Request) -> web.Response:
    """The referral's latest appointment as a FHIR R4 Appointment, with the video room's details."""
    latest = await service.latest_appointment_id(request.app[DATABASE], caller(request).principal,
                                                 referral_id(request))
    return await _export(request, service.load_appointment, latest)


@routes.get("/api/consents/{consent_id}/fhir")
@answers_fhir("Consent")
async def consent_resource(request: web.Request) -> web.Response:
    """A consent as a FHIR R4 Consent, for those who may see what it covers (also GET /fhir/Consent/{id})."""
    return await _export(request, service.load_consent, path_id(request, "consent_id"))


@routes.get("/api/consultations/{consultation_id}/fhir")
@answers_fhir("Encounter")
async def consultation_encounter(request: web.Request) -> web.Response:
    """The consultation as a FHIR R4 Encounter of class virtual (also GET /fhir/Encounter/{id})."""
    return await _export(request, service.load_encounter, consultation_id(request))

