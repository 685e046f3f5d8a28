"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Literal

from aiohttp import web

from ..appkeys import DATABASE, HUB, RELAYS, SETTINGS, STORAGE_PROBE
from ..http import json_response
from ..identity.auth import public
from ..outputs import Out

routes = web.RouteTableDef()
log = logging.getLogger(__name__)

Check = Literal["ok", "unreachable", "unavailable", "unmounted", "over-capacity"]


class RelayLoad(Out):
    """The media relays this node runs (one per relayed room) and the streams they forward; ``limit`` is the
    most relays it may run (null: no limit: the node is ready whatever their number)."""

    rooms: int
    streams: int
    limit: int | None = None


class Readiness(Out):
    """What /readyz answers: ``ready`` (200) when every check is ``ok``, else ``not-ready`` (503). ``checks``
    names each check's state; ``problems`` says, for each that is not ``ok``, what is wrong in words that name
    no secret, path or patient datum."""

    status: Literal["ready", "not-ready"]
    checks: dict[str, Check]
    problems: dict[str, str]
    relays: RelayLoad


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"})


def relay_load(app: web.Application) -> RelayLoad:
    streams = 0
    for session in app[RELAYS].values():
        streams += sum(session.census()[0].values())
    return RelayLoad(rooms=len(app[RELAYS]), streams=streams, limit=app[SETTINGS].relay_limit)


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    """The node can serve: its database answers, so does Redis when one is configured, and the recordings
    directory can be read and written; the answer is ``Readiness``."""
    checks: dict[str, Check] = {}
    problems: dict[str, str] = {}
    database = request.app[DATABASE]
    try:
        await database.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure of the driver means not ready
        if not database.down(exc):  # an outage is logged once for the probes and requests it fails
            log.warning("readiness: database unreachable: %s", type(exc).__name__)
        checks["database"] = "unreachable"
        problems["database"] = f"the database does not answer ({type(exc).__name__})"
    if request.app[SETTINGS].redis_url:
        # Not ready while the bus is down: a load balancer then sends new calls to another node.
        if await request.app[HUB].log.ping():
            checks["redis"] = "ok"
        else:
            checks["redis"] = "unreachable"
            problems["redis"] = "Redis does not answer"
    if problem := await request.app[STORAGE_PROBE].check():
        checks["storage"] = problem.check
        problems["storage"] = problem.words
    else:
        checks["storage"] = "ok"
    relays = relay_load(request.app)
    if relays.limit is not None and relays.rooms > relays.limit:
        checks["relays"] = "over-capacity"
        problems["relays"] = f"{relays.rooms} relays run here, more than the {relays.limit} allowed"
    else:
        checks["relays"] = "ok"
    ready = all(value == "ok" for value in checks.values())
    answer = Readiness(status="ready" if ready else "not-ready", checks=checks, problems=problems, relays=relays)
    return json_response(answer, status=200 if ready else 503)
