"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from aiohttp import web

from ..appkeys import DATABASE, HUB, SETTINGS
from ..http import json_response
from ..identity.auth import public

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    """The node can serve: its database answers, and so does Redis when one is configured."""
    checks: dict[str, str] = {}
    database = request.app[DATABASE]
    try:
        await database.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure of the driver means not ready
        if not database.down(exc):  # an outage is logged once for the probes and requests it fails
            log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unreachable"
    if request.app[SETTINGS].redis_url:
        # Not ready while the bus is down: a load balancer then sends new calls to another node.
        checks["redis"] = "ok" if await request.app[HUB].log.ping() else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return json_response({"status": "ready" if ready else "not-ready", "checks": checks},
                         status=200 if ready else 503)
