"""REST: the audit trail for auditors: search it, check its chain, export it as CSV or JSON (each export is
itself an entry of the trail)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pydantic
from aiohttp import web

from ..appkeys import DATABASE, SETTINGS
from ..audit import review as audit_review
from ..audit import trail as audit
from ..http import json_response
from ..identity.auth import caller
from ..models import utcnow
from ..openapi import answers, answers_media, queries

routes = web.RouteTableDef()


# The filters of the audit trail, shared by its search and its export. (No docstring: see reports.Icd10Query.)
class AuditFilter(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    actor: str | None = pydantic.Field(default=None, description="who acted: user:<id>, guest:..., system")
    action: str | None = pydantic.Field(default=None, description="an action, or a family such as consent.")
    consultation: int | None = pydantic.Field(default=None, ge=1, description="a consultation's number")
    subject: str | None = pydantic.Field(default=None, description="what it was done to: patient:<id>...")
    since: dt.date | None = pydantic.Field(default=None, description="the first day, on the auditor's clock")
    until: dt.date | None = pydantic.Field(default=None, description="the last day, on the auditor's clock")


# The query of the audit trail's search.
class AuditQuery(AuditFilter):
    before: int | None = pydantic.Field(default=None, ge=1, description="the last id seen")


# The query of the audit trail's export.
class AuditExportQuery(AuditFilter):
    format: Literal["csv", "json"] = "csv"


@routes.get("/api/audit")
@queries(AuditQuery)
@answers(audit_review.AuditSearchPage)
async def search_audit(request: web.Request) -> web.Response:
    """Entries matching ``actor``, ``action`` (``consent.`` for a family), ``consultation``, ``subject``,
    ``since`` and ``until`` (days on the clock of the auditor's hospital), newest first, 200 at a time
    (``before`` = the last id seen)."""
    page = await audit_review.search(request.app[DATABASE], caller(request).principal, request.query,
                                     fallback=request.app[SETTINGS].default_timezone)
    return json_response(audit_review.AuditSearchPage(entries=[audit.shown(e) for e in page.entries],
                                                      more=page.more, chain=page.chain))


@routes.get("/api/audit/export")
@queries(AuditExportQuery)
@answers_media("text/csv", description="The entries as CSV.")
@answers(audit_review.AuditExport, description="The entries as JSON.")
async def export_audit(request: web.Request) -> web.StreamResponse:
    """The matching entries, oldest first, as ``format=csv`` or ``json``, for download. The export is
    recorded in the trail (who, which filter, how many)."""
    body, kind = await audit_review.export(request.app[DATABASE], caller(request).principal, request.query,
                                           issuer=request.app[SETTINGS].jwt_issuer,
                                           fallback=request.app[SETTINGS].default_timezone)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return web.Response(text=body, content_type="application/json" if kind == "json" else "text/csv",
                        charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="telemed-audit-{stamp}.{kind}"'})
