"""The OpenAPI 3.1 description of the REST API, built from the routes the app really serves.

Paths, methods and path parameters come from the router; the summary and description from each
handler's docstring; request bodies from the pydantic model a handler declares with ``@accepts``
(a test checks that every handler reading a body declares the model it reads), and the
``Idempotency-Key`` header from ``@idempotent`` (likewise checked against the handlers that take one).
Nothing is listed by hand, so the document cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic.json_schema import models_json_schema

from .idempotency import KEY_HEADER, KEY_PATTERN, REPLAYED_HEADER
from .identity.auth import COOKIE_NAME, PUBLIC_ATTRIBUTE

Handler = TypeVar("Handler", bound=Callable[..., Any])
BODY_ATTRIBUTE = "request_model"
IDEMPOTENT_ATTRIBUTE = "idempotent"
FHIR_ATTRIBUTE = "fhir_resource"
DOCUMENTED_PREFIXES = ("/api/", "/calendar/", "/fhir/")
FHIR_JSON = "application/fhir+json"
_PARAMETER = re.compile(r"{(\w+)}")


def accepts(model: type[pydantic.BaseModel]) -> Callable[[Handler], Handler]:
    """Declare the JSON body a handler reads (with ``parse_body(request, model)``)."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, BODY_ATTRIBUTE, model)
        return handler
    return mark


def answers_fhir(resource_type: str) -> Callable[[Handler], Handler]:
    """Declare that a handler answers with a FHIR R4 resource of this type, as ``application/fhir+json``."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, FHIR_ATTRIBUTE, resource_type)
        return handler
    return mark


def idempotent(handler: Handler) -> Handler:
    """Declare that a handler takes an ``Idempotency-Key`` (it answers through ``http.answer_once``)."""
    setattr(handler, IDEMPOTENT_ATTRIBUTE, True)
    return handler


def documented_routes(app: web.Application) -> list[tuple[str, str, Callable[..., Any]]]:
    """(method, path, handler) of every API route, as the router serves them."""
    found = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method in ("HEAD", "OPTIONS") or not path.startswith(DOCUMENTED_PREFIXES):
            continue
        found.append((route.method, path, route.handler))
    return sorted(found, key=lambda r: (r[1], r[0]))


def build(app: web.Application, *, title: str, version: str) -> dict[str, Any]:
    routes = documented_routes(app)
    models = sorted({getattr(h, BODY_ATTRIBUTE) for _, _, h in routes if hasattr(h, BODY_ATTRIBUTE)},
                    key=lambda m: m.__name__)
    refs, schemas = models_json_schema([(m, "validation") for m in models],
                                       ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = {**schemas.get("$defs", {}), "Error": ERROR_SCHEMA,
                                  "OperationOutcome": OPERATION_OUTCOME_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes:
        doc = inspect.getdoc(handler) or handler.__name__.replace("_", " ").capitalize() + "."
        summary, _, description = doc.partition("\n\n")
        operation: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": " ".join(summary.split()),
            "tags": [path.split("/")[2] if path.startswith("/api/") else path.split("/")[1]],
            "responses": {
                "200": {"description": "Success (201 for a creation)."},
                "default": {"description": "An error: the code says what, the message says why.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        if resource_type := getattr(handler, FHIR_ATTRIBUTE, None):
            operation["responses"]["200"] = {"description": f"The {resource_type} (FHIR R4).", "content": {
                FHIR_JSON: {"schema": {"type": "object", "required": ["resourceType"],
                                       "properties": {"resourceType": {"const": resource_type}}}}}}
            if path.startswith("/fhir/"):
                operation["responses"]["default"] = {
                    "description": "An error, as a FHIR OperationOutcome (404 for what the caller may not know "
                                   "exists, 403 where the pages refuse, 401 without a token).",
                    "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}
        if description:
            operation["description"] = " ".join(description.split())
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _PARAMETER.findall(path)]
        if getattr(handler, IDEMPOTENT_ATTRIBUTE, False):
            parameters.append(IDEMPOTENCY_KEY)
            operation["responses"]["200"]["headers"] = {REPLAYED_HEADER: REPLAYED}
        if parameters:
            operation["parameters"] = parameters
        model = getattr(handler, BODY_ATTRIBUTE, None)
        if model is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(model, "validation")]}}}
        if getattr(handler, PUBLIC_ATTRIBUTE, False):
            operation["security"] = []
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Telemedicine across medical partnerships. Signaling (the WebSocket) is described "
                                "in signaling/PROTOCOL.md."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "session": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
        }},
        "security": [{"bearer": []}, {"session": []}],
    }


IDEMPOTENCY_KEY = {
    "name": KEY_HEADER, "in": "header", "required": False,
    "description": "A key of the caller's choosing, new for each new request: the same request sent again with "
                   "the same key within 24 hours (after a 503 or a dropped connection) is answered as the "
                   "first time, with the same status and body and `Idempotent-Replayed: true`, and is not "
                   "done twice. The same key with a different request is 422 `idempotency-key-reused`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": KEY_PATTERN},
}
REPLAYED = {"description": "`true` when the answer is the one stored under the request's `Idempotency-Key`.",
            "schema": {"type": "string", "enum": ["true"]}}

OPERATION_OUTCOME_SCHEMA = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array", "items": {
        "type": "object", "required": ["severity", "code"], "properties": {
            "severity": {"type": "string"}, "code": {"type": "string", "description": "the FHIR issue type"},
            "diagnostics": {"type": "string", "description": "our error code (the README's table)"},
            "details": {"type": "object", "properties": {"text": {"type": "string"}}}}}}},
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "stable, for programs"},
        "message": {"type": "string", "description": "for people, in their language where translated"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "on 422: each field that is wrong, and why"},
    }}},
}
