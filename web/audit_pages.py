"""The auditor's page: the audit trail filtered, whether its chain holds, and exports."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server import audit
from server.api.audit_log import PAGE, before_from, chain_state, filter_from, require_auditor
from server.appkeys import DATABASE
from server.errors import TelemedError

from .render import RENDERER

routes = web.RouteTableDef()
FILTER_FIELDS = ("actor", "action", "consultation", "subject", "since", "until")


@routes.get("/audit", name="audit")
async def audit_page(request: web.Request) -> web.Response:
    require_auditor(request)
    form = {name: request.query.get(name, "") for name in FILTER_FIELDS}
    error, events = None, []
    try:
        wanted = filter_from(request.query)
        events = await audit.search(request.app[DATABASE], wanted, limit=PAGE, before_id=before_from(request.query))
    except TelemedError as exc:
        error = exc.message
    query = urlencode({k: v for k, v in form.items() if v})
    return request.app[RENDERER].render(request, "audit.html", {
        "form": form, "error": error, "entries": [audit.to_json(e) for e in events],
        "chain": await chain_state(request), "query": query,
        "older": f"/audit?{query}&before={events[-1].id}" if len(events) == PAGE else None,
    }, status=422 if error else 200)
