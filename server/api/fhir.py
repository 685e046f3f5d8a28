"""REST: FHIR R4 exports of a referral, its appointment, a consent and a consultation. ``fhir/service.py``
decides what the caller may take and audits each export; this only answers as ``application/fhir+json``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..appkeys import DATABASE
from ..fhir import service as exports
from ..http import json_response, path_id
from ..identity.auth import caller
from .consultations import consultation_id
from .referrals import referral_id

routes = web.RouteTableDef()
FHIR_JSON = "application/fhir+json"


def _answer(resource: dict[str, Any]) -> web.Response:
    response = json_response(resource)
    response.content_type = FHIR_JSON
    return response


@routes.get("/api/referrals/{referral_id}/fhir")
async def referral_service_request(request: web.Request) -> web.Response:
    """The referral as a FHIR R4 ServiceRequest."""
    return _answer(await exports.service_request(request.app[DATABASE], caller(request).principal,
                                                 referral_id(request)))


@routes.get("/api/referrals/{referral_id}/appointment/fhir")
async def referral_appointment(request: web.Request) -> web.Response:
    """The referral's latest appointment as a FHIR R4 Appointment, with the video room's details."""
    return _answer(await exports.appointment(request.app[DATABASE], caller(request).principal, referral_id(request),
                                             origin=request.url.origin()))


@routes.get("/api/consents/{consent_id}/fhir")
async def consent_resource(request: web.Request) -> web.Response:
    """A consent as a FHIR R4 Consent, for those who may see what it covers."""
    return _answer(await exports.consent(request.app[DATABASE], caller(request).principal,
                                         path_id(request, "consent_id"), origin=request.url.origin()))


@routes.get("/api/consultations/{consultation_id}/fhir")
async def consultation_encounter(request: web.Request) -> web.Response:
    """The consultation as a FHIR R4 Encounter of class virtual (finished once its referral is completed)."""
    return _answer(await exports.encounter(request.app[DATABASE], caller(request).principal,
                                           consultation_id(request)))
