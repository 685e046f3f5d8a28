"""/api/openapi.json is a valid OpenAPI 3.1 document that lists exactly the routes the server serves."""

from __future__ import annotations

import inspect
import re

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from server.openapi import BODY_ATTRIBUTE, documented_routes


async def test_the_document_is_valid_openapi_and_matches_the_routes(client: TestClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)
    served = {(method.lower(), path) for method, path, _ in documented_routes(client.app)}
    described = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert described == served
    for must in [("post", "/api/referrals"), ("get", "/api/openapi.json"), ("post", "/api/guest/room-token"),
                 ("get", "/calendar/{token}.ics"), ("delete", "/api/invitations/{invitation_id}")]:
        assert must in described, must
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operation ids are unique"


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


def test_every_handler_that_reads_a_body_declares_it(client: TestClient) -> None:
    """The document's bodies come from @accepts: a handler reading another model would make it lie."""
    for method, path, handler in documented_routes(client.app):
        read = re.findall(r"parse_body\(request, (\w+)\)", inspect.getsource(handler))
        declared = getattr(handler, BODY_ATTRIBUTE, None)
        assert read == ([declared.__name__] if declared else []), f"{method} {path}"
