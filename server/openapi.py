"""The OpenAPI 3.1 description of the REST API, built from the routes the app really serves.

Paths, methods and path parameters come from the router; the summary and description from each
handler's docstring; request bodies from the pydantic model a handler declares with ``@accepts``
(a test checks that every handler reading a body declares the model it reads), query parameters from the
model declared with ``@queries`` (likewise checked against the handlers that read the query), the success
answer from ``@answers`` (a JSON body of a pydantic model), ``@answers_media`` (a PDF, a calendar, a CSV...),
``@answers_empty`` or ``@answers_fhir`` (a test checks that every route declares one, and the API tests check
the answers they get against it), and the ``Idempotency-Key`` header from ``@idempotent`` (likewise checked
against the handlers that take one). Path parameters ending in ``_id`` are row ids: integers (``http.path_id``).
Nothing is listed by hand, so the document cannot drift from the code.

To add a route: mark its handler with the decorators that say what it reads and answers, e.g.
``@answers(views.ReferralOut, status=201)`` and ``@accepts(ReferralCreate)``; ``@queries(SomeQuery)`` if it
reads ``request.query`` (parse it with ``http.parse_form(request.query, SomeQuery)``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic.json_schema import models_json_schema

from .idempotency import KEY_HEADER, KEY_PATTERN, REPLAYED_HEADER
from .identity.auth import COOKIE_NAME, PUBLIC_ATTRIBUTE
from .parsing import MAX_ID

Handler = TypeVar("Handler", bound=Callable[..., Any])
BODY_ATTRIBUTE = "request_model"
IDEMPOTENT_ATTRIBUTE = "idempotent"
FHIR_ATTRIBUTE = "fhir_resource"
ANSWER_ATTRIBUTE = "success_answer"
QUERY_ATTRIBUTE = "query_model"
UPLOAD_ATTRIBUTE = "upload_field"
DOCUMENTED_PREFIXES = ("/api/", "/calendar/", "/fhir/")
FHIR_JSON = "application/fhir+json"
_PARAMETER = re.compile(r"{(\w+)}")


def accepts(model: type[pydantic.BaseModel]) -> Callable[[Handler], Handler]:
    """Declare the JSON body a handler reads (with ``parse_body(request, model)``)."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, BODY_ATTRIBUTE, model)
        return handler
    return mark


def accepts_upload(field: str = "file") -> Callable[[Handler], Handler]:
    """Declare that a handler reads a file from a ``multipart/form-data`` body, in part ``field``
    (with ``http.file_upload(request, field)``)."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, UPLOAD_ATTRIBUTE, field)
        return handler
    return mark


def answers_fhir(resource_type: str) -> Callable[[Handler], Handler]:
    """Declare that a handler answers with a FHIR R4 resource of this type, as ``application/fhir+json``."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, FHIR_ATTRIBUTE, resource_type)
        return handler
    return mark


@dataclass(frozen=True)
class Answer:
    """A handler's success answer: its status, its media type (None for no body) and, for JSON, its model."""

    status: int
    media_type: str | None
    model: type[pydantic.BaseModel] | None
    description: str


def answers(model: type[pydantic.BaseModel], *, status: int = 200,
            description: str = "Success.") -> Callable[[Handler], Handler]:
    """Declare that a handler answers ``status`` with a JSON body of ``model`` (a response model whose fields
    are what the handler really sends: the API tests check every answer against it)."""
    return _answer(Answer(status, "application/json", model, description))


def answers_media(media_type: str, *, status: int = 200, description: str) -> Callable[[Handler], Handler]:
    """Declare that a handler answers with a body that is not JSON: ``application/pdf``, ``text/calendar``..."""
    return _answer(Answer(status, media_type, None, description))


def answers_empty(status: int = 204, *, description: str = "Done; nothing to say.") -> Callable[[Handler], Handler]:
    """Declare that a handler answers ``status`` with no body."""
    return _answer(Answer(status, None, None, description))


def _answer(answer: Answer) -> Callable[[Handler], Handler]:
    """Stacked, the decorators declare each answer a handler may give (201 for a new consent, 200 for a
    withdrawal; JSON or CSV), the first written first."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, ANSWER_ATTRIBUTE, (answer, *getattr(handler, ANSWER_ATTRIBUTE, ())))
        return handler
    return mark


def queries(model: type[pydantic.BaseModel]) -> Callable[[Handler], Handler]:
    """Declare the query parameters a handler reads: the fields of ``model``, which it parses the query into
    (``parse_form(request.query, model)``), or whose names are the only ones it reads."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, QUERY_ATTRIBUTE, model)
        return handler
    return mark


def successes(handler: Callable[..., Any]) -> tuple[Answer, ...]:
    """The success answers a handler declares (``@answers_fhir`` is JSON of the FHIR media type): none if it
    declares none."""
    if (resource_type := getattr(handler, FHIR_ATTRIBUTE, None)) is not None:
        return (Answer(200, FHIR_JSON, None, f"The {resource_type} (FHIR R4)."),)
    return getattr(handler, ANSWER_ATTRIBUTE, ())


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


def _models(routes: list[tuple[str, str, Callable[..., Any]]]) -> list[type[pydantic.BaseModel]]:
    found: set[type[pydantic.BaseModel]] = set()
    for _, _, handler in routes:
        for attribute in (BODY_ATTRIBUTE, QUERY_ATTRIBUTE):
            if (model := getattr(handler, attribute, None)) is not None:
                found.add(model)
        found.update(answer.model for answer in successes(handler) if answer.model is not None)
    return sorted(found, key=lambda m: (m.__name__, m.__module__))


def path_parameter(name: str) -> dict[str, Any]:
    """A path parameter: ``…_id`` is a row id (``http.path_id``: 1 to MAX_ID), ``number`` a participant's."""
    if name.endswith("_id"):
        schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    elif name == "number":
        schema = {"type": "integer", "minimum": 0, "maximum": 999}
    else:
        schema = {"type": "string"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameters(model: type[pydantic.BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        field_schema = {k: v for k, v in field_schema.items() if k not in ("title", "description")}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": field_schema}
        if description := model.model_fields[name].description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _response(answer: Answer, schema: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": answer.description}
    if answer.media_type is None:
        return response
    if schema is None:
        schema = {"type": "string", "format": "binary"} if not answer.media_type.startswith("text/") \
            else {"type": "string"}
    response["content"] = {answer.media_type: {"schema": schema}}
    return response


def build(app: web.Application, *, title: str, version: str) -> dict[str, Any]:
    routes = documented_routes(app)
    models = _models(routes)
    names = {m.__name__ for m in models}
    assert len(names) == len(models), "two models of one name would share a schema"
    refs, schemas = models_json_schema([(m, "validation") for m in models],
                                       ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = {**schemas.get("$defs", {}), "Error": ERROR_SCHEMA,
                                  "OperationOutcome": OPERATION_OUTCOME_SCHEMA}
    query_models = {getattr(h, QUERY_ATTRIBUTE) for _, _, h in routes if hasattr(h, QUERY_ATTRIBUTE)}
    named_elsewhere = {m for _, _, h in routes for m in (getattr(h, BODY_ATTRIBUTE, None),
                                                         *(a.model for a in successes(h))) if m is not None}
    query_schemas = {m: components[m.__name__] for m in query_models}
    for model in query_models - named_elsewhere:  # only its fields are the document's, as parameters
        del components[model.__name__]
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes:
        doc = inspect.getdoc(handler) or handler.__name__.replace("_", " ").capitalize() + "."
        summary, _, description = doc.partition("\n\n")
        answers = successes(handler)
        responses: dict[str, Any] = {}
        for answer in answers:
            schema = refs[(answer.model, "validation")] if answer.model is not None else None
            if resource_type := getattr(handler, FHIR_ATTRIBUTE, None):
                schema = {"type": "object", "required": ["resourceType"],
                          "properties": {"resourceType": {"const": resource_type}}}
            response = _response(answer, schema)
            if (same := responses.get(str(answer.status))) is not None:  # another media type of one status
                same.setdefault("content", {}).update(response.get("content", {}))
            else:
                responses[str(answer.status)] = response
        responses["default"] = {"description": "An error: the code says what, the message says why.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        operation: dict[str, Any] = {
            "operationId": handler.__name__,
            "summary": " ".join(summary.split()),
            "tags": [path.split("/")[2] if path.startswith("/api/") else path.split("/")[1]],
            "responses": responses,
        }
        if path.startswith("/fhir/"):
            operation["responses"]["default"] = {
                "description": "An error, as a FHIR OperationOutcome (404 for what the caller may not know "
                               "exists, 403 where the pages refuse, 401 without a token).",
                "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}
        if description:
            operation["description"] = " ".join(description.split())
        parameters = [path_parameter(name) for name in _PARAMETER.findall(path)]
        if (query := getattr(handler, QUERY_ATTRIBUTE, None)) is not None:
            parameters += _query_parameters(query, query_schemas[query])
        if getattr(handler, IDEMPOTENT_ATTRIBUTE, False):
            parameters.append(IDEMPOTENCY_KEY)
            assert answers, f"{handler.__name__}: an idempotent operation declares its answer"
            for answer in answers:
                operation["responses"][str(answer.status)]["headers"] = {REPLAYED_HEADER: REPLAYED}
        if parameters:
            operation["parameters"] = parameters
        model = getattr(handler, BODY_ATTRIBUTE, None)
        if model is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": refs[(model, "validation")]}}}
        if (field := getattr(handler, UPLOAD_ATTRIBUTE, None)) is not None:
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": [field],
                "properties": {field: {"type": "string", "format": "binary"}}}}}}
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
