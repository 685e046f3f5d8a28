"""/api/openapi.json is a valid OpenAPI 3.1 document that lists exactly the routes the server serves."""

from __future__ import annotations

import inspect
import re

from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from openapi_spec_validator import validate

from server.openapi import BODY_ATTRIBUTE, IDEMPOTENT_ATTRIBUTE, documented_routes


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
    document = await (await client.get("/api/openapi.json")).json()
    create = document["paths"]["/api/referrals"]["post"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"patient_id", "specialty", "urgency", "reason"} <= set(schema["required"])
    assert "sharing_consent" in schema["properties"]
    action = document["paths"]["/api/referrals/{referral_id}/actions"]["post"]
    assert action["parameters"] == [{"name": "referral_id", "in": "path", "required": True,
                                     "schema": {"type": "string"}}]
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
        read = re.findall(r"parse_body\(request, (\w+)\)", inspect.getsource(handler))
        declared = getattr(handler, BODY_ATTRIBUTE, None)
        assert read == ([declared.__name__] if declared else []), f"{method} {path}"


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
                assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
                taking.add((method, path))
    assert taking == IDEMPOTENT


def test_every_handler_that_answers_once_declares_it(client: TestClient) -> None:
    """The header is documented from @idempotent: a handler reading the key without it would make the
    document lie, and one marked without reading it would promise what it does not do."""
    for method, path, handler in documented_routes(client.app):
        reads = "answer_once(" in inspect.getsource(handler)
        assert reads == getattr(handler, IDEMPOTENT_ATTRIBUTE, False), f"{method} {path}"
