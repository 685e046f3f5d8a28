"""/api/openapi.json is a valid OpenAPI 3.1 document that lists exactly the routes the server serves."""

from __future__ import annotations

import inspect
import re

from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from openapi_spec_validator import validate

from server.openapi import (
    BODY_ATTRIBUTE,
    IDEMPOTENT_ATTRIBUTE,
    QUERY_ATTRIBUTE,
    UPLOAD_ATTRIBUTE,
    documented_routes,
    successes,
)
from server.outputs import Untyped


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route the router serves, read from the router itself (not from
    server.openapi), leaving out the HEAD route aiohttp adds beside each GET."""
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            if route.resource is not None and route.method != "HEAD"}


async def test_the_document_is_valid_openapi_and_matches_the_routes(client: TestClient) -> None:
    """The document lists every /api route the server serves, and nothing it does not serve."""
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    described = {(method, path) for path, operations in document["paths"].items() for method in operations}
    routes = served(client.app)
    assert {(method, path) for method, path in routes if path.startswith(("/api/", "/fhir/"))} - described == set(), \
        "served but not documented"
    assert described - routes == set(), "documented but not served"
    for must in [("post", "/api/referrals"), ("get", "/api/openapi.json"), ("post", "/api/guest/room-token"),
                 ("get", "/calendar/{token}.ics"), ("delete", "/api/invitations/{invitation_id}")]:
        assert must in described, must
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operation ids are unique"


async def test_each_documented_operation_reaches_its_handler(client: TestClient) -> None:
    """A request made as the document says (its method, its path with the parameters filled in) is routed
    by the server to the handler the document names, not to a 404, a 405 or another handler."""
    document = await (await client.get("/api/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url = re.sub(r"{\w+}", "1", path)
            match = await client.app.router.resolve(make_mocked_request(method.upper(), url, app=client.app))
            assert match.http_exception is None, (method, path, match.http_exception)
            assert match.handler.__name__ == operation["operationId"], (method, path)


async def test_bodies_parameters_and_openness_are_described(client: TestClient) -> None:
    """The document tells an integrator what to send and what comes back: a referral's required fields and its
    sharing_consent, a path id as a bounded integer, the created referral's schema, the slots query's date (required)
    and days (optional, at most 31), a PDF and a calendar by media type, an upload as multipart with its file required,
    and the guest room token open without a login while other routes need one by default."""
    document = await (await client.get("/api/openapi.json")).json()
    create = document["paths"]["/api/referrals"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"patient_id", "specialty", "urgency", "reason"} <= set(schema["required"])
    assert "sharing_consent" in schema["properties"]
    action = document["paths"]["/api/referrals/{referral_id}/actions"]["post"]
    assert action["parameters"] == [{"name": "referral_id", "in": "path", "required": True,
                                     "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}]
    created = create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert created == "#/components/schemas/ReferralDetail"
    slots = {p["name"]: p for p in document["paths"]["/api/slots"]["get"]["parameters"]}
    assert slots["date"]["required"] and slots["date"]["schema"]["format"] == "date"
    assert not slots["days"]["required"] and slots["days"]["schema"]["maximum"] == 31
    pdf = document["paths"]["/api/reports/{report_id}/pdf"]["get"]["responses"]["200"]["content"]
    assert pdf == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
    assert "text/calendar" in document["paths"]["/calendar/{token}.ics"]["get"]["responses"]["200"]["content"]
    upload = document["paths"]["/api/referrals/{referral_id}/attachments"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    assert document["paths"]["/api/guest/room-token"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/referrals"]["get"], "logged in, as the document's default"


async def test_fhir_routes_answer_fhir_json(client: TestClient) -> None:
    """Every FHIR route (under /fhir, and the older /api exports) is documented as answering
    ``application/fhir+json`` with the resource type it serves; /fhir's errors are OperationOutcomes."""
    document = await (await client.get("/api/openapi.json")).json()
    fhir = {path: ops["get"] for path, ops in document["paths"].items()
            if path.startswith("/fhir/") or path.endswith("/fhir")}
    assert {"/fhir/metadata", "/fhir/Patient/{patient_id}", "/fhir/Bundle/referral-{referral_id}",
            "/api/referrals/{referral_id}/fhir"} <= set(fhir)
    for path, operation in fhir.items():
        schema = operation["responses"]["200"]["content"]["application/fhir+json"]["schema"]
        assert schema["properties"]["resourceType"]["const"], path
        if path.startswith("/fhir/"):
            errors = operation["responses"]["default"]["content"]["application/fhir+json"]["schema"]
            assert errors == {"$ref": "#/components/schemas/OperationOutcome"}, path
    assert fhir["/fhir/DiagnosticReport/{diagnostic_report_id}"]["responses"]["200"]["content"][
        "application/fhir+json"]["schema"]["properties"]["resourceType"]["const"] == "DiagnosticReport"
    assert fhir["/fhir/metadata"]["security"] == [] and "security" not in fhir["/fhir/Patient/{patient_id}"]


def test_every_handler_that_reads_a_body_declares_it(client: TestClient) -> None:
    """The document's bodies come from @accepts: a handler reading another model would make it lie."""
    for method, path, handler in documented_routes(client.app):
        source = inspect.getsource(handler)
        read = re.findall(r"parse_body\(request, (\w+)\)", source)
        declared = getattr(handler, BODY_ATTRIBUTE, None)
        assert read == ([declared.__name__] if declared else []), f"{method} {path}"
        uploads = "file_upload(" in source or "receive(request" in source
        assert uploads == hasattr(handler, UPLOAD_ATTRIBUTE), f"{method} {path}: declare it with @accepts_upload()"


IDEMPOTENT = {("post", "/api/referrals"), ("post", "/api/referrals/{referral_id}/appointment"),
              ("post", "/api/consultations/{consultation_id}/consents"), ("post", "/api/guest/consents"),
              ("post", "/api/consultations/{consultation_id}/invitations")}


async def test_the_creating_operations_take_an_idempotency_key(client: TestClient) -> None:
    """Guards the document's promise of idempotency: the operations that create a referral, a booking, a
    consent or an invitation, and only they, describe the optional Idempotency-Key header and the
    Idempotent-Replayed answer header."""
    document = await (await client.get("/api/openapi.json")).json()
    taking = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
            if headers:
                [header] = headers
                assert header["name"] == "Idempotency-Key" and header["required"] is False
                assert header["schema"]["maxLength"] == 128
                assert all("Idempotent-Replayed" in answer["headers"]
                           for status, answer in operation["responses"].items() if status != "default")
                taking.add((method, path))
    assert taking == IDEMPOTENT


def test_every_handler_that_answers_once_declares_it(client: TestClient) -> None:
    """The header is documented from @idempotent: a handler reading the key without it would make the
    document lie, and one marked without reading it would promise what it does not do."""
    for method, path, handler in documented_routes(client.app):
        reads = "answer_once(" in inspect.getsource(handler)
        assert reads == getattr(handler, IDEMPOTENT_ATTRIBUTE, False), f"{method} {path}"


def _reading(handler: object) -> str:
    """The handler's source and that of its module's functions it hands the request to (``_language(request)``)."""
    source = inspect.getsource(handler)
    module = inspect.getmodule(handler)
    for name in set(re.findall(r"\b(_?\w+)\(request\b", source)):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == getattr(module, "__name__", None):
            source += inspect.getsource(helper)
    return source


def test_every_handler_that_reads_the_query_declares_it(client: TestClient) -> None:
    """The query parameters are documented from @queries: a handler reading ``request.query`` without it
    would take parameters no integrator can know of, and one reading a parameter its model does not name
    would make the document lie. (Fix: ``@queries(Model)`` with the model it parses the query into.)"""
    for method, path, handler in documented_routes(client.app):
        source = _reading(handler)
        declared = getattr(handler, QUERY_ATTRIBUTE, None)
        where = f"{method} {path} ({handler.__module__}.{handler.__name__})"
        if "request.query" not in source:
            assert declared is None, f"{where} declares query parameters it does not read"
            continue
        assert declared is not None, f"{where} reads request.query: declare it with @queries(Model)"
        for parsed in re.findall(r"parse_form\(request\.query, (\w+)\)", source):
            assert parsed == declared.__name__, f"{where} parses the query into {parsed}"
        for name in re.findall(r"request\.query\.get\(\"(\w+)\"", source):
            assert name in declared.model_fields, f"{where} reads ?{name}=, which {declared.__name__} does not name"


# Operations whose success answer is still an open JSON object (server.outputs.Untyped), not a model of its
# fields. This list only shrinks: a new route declares a model of what it answers. ``openapi_document`` stays:
# it answers an OpenAPI document, whose schema is the OpenAPI specification's, not one of ours (the first test
# validates it against that).
UNTYPED = {
    "openapi_document",
}


def test_every_route_declares_its_success_answer(client: TestClient) -> None:
    """Each operation says what it answers on success, so a generated client gets a typed result: a model
    (``@answers(Model, status=201)``), a media type (``@answers_media("text/calendar")``), no body
    (``@answers_empty(204)``) or a FHIR resource (``@answers_fhir``). The API tests check each answer they get
    against it (tests/server/api/conftest.py). A handler that sends ``status=201`` declares 201."""
    untyped = set()
    for method, path, handler in documented_routes(client.app):
        where = f"{method} {path} ({handler.__module__}.{handler.__name__})"
        answers = successes(handler)
        assert answers, f"{where} declares no success answer: add @answers(Model) (or _media/_empty/_fhir)"
        source = inspect.getsource(handler)
        for status in re.findall(r"status=(2\d\d)", source):
            assert int(status) in {a.status for a in answers}, f"{where} answers {status}: declare it"
        if any(a.model is Untyped for a in answers):
            untyped.add(handler.__name__)
    assert untyped <= UNTYPED, f"new operations answering Untyped; give them a model: {sorted(untyped - UNTYPED)}"
    assert UNTYPED - untyped == set(), f"typed now: take them off UNTYPED: {sorted(UNTYPED - untyped)}"
