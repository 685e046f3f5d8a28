"""The auditor's page: the audit trail filtered, in words and on the auditor's clock, whether its chain holds,
and exports."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server.appkeys import DATABASE, SETTINGS
from server.audit import review as audit_review
from server.errors import N_, ValidationFailed
from server.http import locale_for, translator
from server.identity.auth import caller
from server.permissions import can_read_audit, require

from .audit_view import ACTIONS, FAMILIES, Speaker, action_choices
from .clock import zone_names
from .forms import field_errors
from .render import RENDERER

routes = web.RouteTableDef()


@routes.get("/audit", name="audit")
async def audit_page(request: web.Request) -> web.Response:
    """The trail, newest first, a page at a time; a filter that cannot be read is a 422 saying so beside
    the field, in the reader's language."""
    database, who = request.app[DATABASE], caller(request).principal
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    gettext = translator(request)
    fallback = request.app[SETTINGS].default_timezone
    form = {name: request.query.get(name, "") for name in audit_review.FILTER_FIELDS}
    errors: dict[str, str] = {}
    page = None
    try:
        page = await audit_review.search(database, who, request.query, fallback=fallback)
    except ValidationFailed as exc:
        errors = field_errors(exc, gettext)
    events = page.entries if page else []
    zone = page.zone if page else await audit_review.reader_zone(database, who, fallback)
    speaker = Speaker(await audit_review.names(database, who, events), zone, gettext, locale_for(request))
    filters = {k: v for k, v in form.items() if v}
    query = urlencode(filters)
    action = form["action"]
    return request.app[RENDERER].render(request, "audit.html", {
        "form": form, "errors": errors, "entries": [speaker.entry(e) for e in events],
        "actions": action_choices(gettext),
        "unlisted_action": action if action and action not in ACTIONS and action not in FAMILIES else None,
        "chain": page.chain if page else await audit_review.chain_state(database), "query": query,
        "zone": zone, "zone_short": zone_names([e.at for e in events], zone),
        "older": f"/audit?{urlencode({**filters, 'before': events[-1].id})}" if page and page.more else None,
        "newest": f"/audit?{query}" if request.query.get("before") else None,
    }, status=422 if errors else 200)
