"""The auditor's page: the audit trail filtered, whether its chain holds, and exports."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server.appkeys import DATABASE
from server.audit import review as audit_review
from server.audit import trail as audit
from server.errors import N_, TelemedError
from server.identity.auth import caller
from server.permissions import can_read_audit, require

from .render import RENDERER

routes = web.RouteTableDef()


@routes.get("/audit", name="audit")
async def audit_page(request: web.Request) -> web.Response:
    database, who = request.app[DATABASE], caller(request).principal
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    form = {name: request.query.get(name, "") for name in audit_review.FILTER_FIELDS}
    error, page = None, None
    try:
        page = await audit_review.search(database, who, request.query)
    except TelemedError as exc:
        error = exc.message
    events = page.entries if page else []
    query = urlencode({k: v for k, v in form.items() if v})
    return request.app[RENDERER].render(request, "audit.html", {
        "form": form, "error": error, "entries": [audit.to_json(e) for e in events],
        "chain": page.chain if page else await audit_review.chain_state(database), "query": query,
        "older": f"/audit?{query}&before={events[-1].id}" if page and page.more else None,
    }, status=422 if error else 200)
