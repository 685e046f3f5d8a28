"""REST: the API's own description, as OpenAPI 3.1."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from ..http import json_response
from ..identity.auth import public
from ..openapi import answers, build
from ..outputs import Untyped

routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
@answers(Untyped, description="This document.")
@public
async def openapi_document(request: web.Request) -> web.Response:
    """This API described as OpenAPI 3.1, built from the routes the server serves."""
    try:
        release = version("telemed")
    except PackageNotFoundError:  # running from a checkout that was not installed
        release = "0"
    return json_response(build(request.app, title="Telemed REST API", version=release))
