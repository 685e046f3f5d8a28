"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from aiohttp import web

from ..appkeys import DATABASE, REDIS
from ..auth import public
from ..http import json_response

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
    try:
        await request.app[DATABASE].ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure of the driver means not ready
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unreachable"
    if (redis := request.app[REDIS]) is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # connection refused, timeout, authentication: all mean not ready
            log.warning("readiness: redis unreachable: %s", type(exc).__name__)
            checks["redis"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return json_response({"status": "ready" if ready else "not-ready", "checks": checks},
                         status=200 if ready else 503)
