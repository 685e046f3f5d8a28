"""Checks the answers a running server gives against what /api/openapi.json declares for them: the success
status, the media type, and a JSON body against the response schema (by JSON Schema, as a generated client
or an integrator's validator reads it). Installed as a middleware by the API tests' ``client`` fixture."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from aiohttp import web
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from server.openapi import build


@dataclass
class AnswerChecker:
    """Records what each documented operation answered, then says what disagreed with the document."""

    seen: list[tuple[str, str, int, str, Any]] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        if resource is not None and 200 <= response.status < 300 and isinstance(response, web.Response):
            body: Any = None
            if response.content_type.endswith("json") and response.body is not None:
                raw = response.body if isinstance(response.body, bytes) else response.text.encode()
                body = json.loads(raw)
            self.seen.append((request.method.lower(), resource.canonical, response.status,
                              response.content_type if response.body is not None else "", body))
        return response

    def problems(self, app: web.Application) -> list[str]:
        document = build(app, title="check", version="0")
        return [problem for seen in self.seen for problem in answer_problems(document, *seen)]


def answer_problems(document: dict[str, Any], method: str, path: str, status: int, media_type: str,
                    body: Any) -> list[str]:
    """What is wrong with one success answer, by the document (nothing for a route it does not describe)."""
    operation = document["paths"].get(path, {}).get(method)
    if operation is None:
        return []
    where = f"{method.upper()} {path} answered {status}"
    declared = {code: r for code, r in operation["responses"].items() if code != "default"}
    if str(status) not in declared:
        return [f"{where}, but the document says {sorted(declared)} (@answers(..., status=))"]
    content = declared[str(status)].get("content", {})
    if not content:
        return [] if not media_type else [f"{where} with a {media_type} body; the document says none"]
    if media_type not in content:
        return [f"{where} as {media_type or 'no body'}; the document says {sorted(content)}"]
    if body is None:
        return []
    schema = content[media_type]["schema"]
    registry = Registry().with_resource("urn:openapi", Resource(contents=document, specification=DRAFT202012))
    validator = jsonschema.Draft202012Validator({**_with_base(schema)}, registry=registry)
    return [f"{where}: {'/'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message[:300]}"
            for error in validator.iter_errors(body)]


def _with_base(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``#/components/...`` references pointed into the whole document."""
    text = json.dumps(schema).replace('"$ref": "#/', '"$ref": "urn:openapi#/')
    return json.loads(text)
