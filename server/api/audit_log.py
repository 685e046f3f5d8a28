"""REST: the audit trail for auditors: search it, check its chain, export it as CSV or JSON (each export is
itself an entry of the trail)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from .. import audit
from ..appkeys import DATABASE, SETTINGS
from ..auth import caller
from ..errors import N_, ValidationFailed
from ..http import json_response, query_id
from ..models import utcnow
from ..permissions import can_read_audit, require

routes = web.RouteTableDef()
PAGE = 200
EXPORT_MAX = 100_000
BEIJING = ZoneInfo("Asia/Shanghai")  # days in a filter are the partnership's working days
CSV_FIELDS = ("id", "at", "actor", "action", "consultation_id", "subject", "detail", "prev_hash", "hash")


def require_auditor(request: web.Request) -> None:
    require(can_read_audit(caller(request).principal), N_("Only auditors read the audit trail."))


def before_from(query: Any) -> int | None:
    """The ``before`` of a page of entries (the last id seen), None for the first page; 422 if not an id."""
    problems: dict[str, str] = {}
    before = query_id(query, "before", problems, "the id of the last entry seen")
    if problems:
        raise ValidationFailed(problems)
    return before


def filter_from(query: Any) -> audit.AuditFilter:
    """The filter in a query string; 422 naming each field that cannot be read."""
    problems: dict[str, str] = {}

    def day(name: str) -> date | None:
        raw = query.get(name, "")
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            problems[name] = "a day as YYYY-MM-DD"
            return None

    consultation = query_id(query, "consultation", problems, "a consultation id")
    since, until = day("since"), day("until")
    if problems:
        raise ValidationFailed(problems)
    return audit.AuditFilter(
        actor=query.get("actor") or None, action=query.get("action") or None,
        consultation_id=consultation, subject=query.get("subject") or None,
        since=datetime.combine(since, time(), tzinfo=BEIJING) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), tzinfo=BEIJING) if until else None)


@routes.get("/api/audit")
async def search_audit(request: web.Request) -> web.Response:
    """Entries matching ``actor``, ``action`` (``consent.`` for a family), ``consultation``, ``subject``,
    ``since`` and ``until`` (days), newest first, ``PAGE`` at a time (``before`` = the last id seen)."""
    require_auditor(request)
    wanted = filter_from(request.query)
    events = await audit.search(request.app[DATABASE], wanted, limit=PAGE, before_id=before_from(request.query))
    return json_response({"entries": [audit.to_json(e) for e in events],
                          "more": len(events) == PAGE, "chain": await chain_state(request)})


async def chain_state(request: web.Request) -> dict[str, Any]:
    """Whether the whole chain holds, where it breaks if not, and its newest hash (keep it elsewhere)."""
    events = await audit.trail(request.app[DATABASE])
    found = audit.check(events)
    return {"holds": found is None, "break": str(found) if found else None, "entries": len(events),
            "latest_hash": events[-1].hash if events else audit.GENESIS}


@routes.get("/api/audit/export")
async def export_audit(request: web.Request) -> web.StreamResponse:
    """The matching entries, oldest first, as ``format=csv`` or ``json``, for download. The export is
    recorded in the trail (who, which filter, how many)."""
    require_auditor(request)
    wanted = filter_from(request.query)
    kind = request.query.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ValidationFailed({"format": "csv or json"})
    events = list(reversed(await audit.search(request.app[DATABASE], wanted, limit=EXPORT_MAX)))
    rows = [audit.to_json(e) for e in events]
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    if kind == "json":
        body = json.dumps({"exported_at": utcnow().isoformat(), "issuer": request.app[SETTINGS].jwt_issuer,
                           "filter": wanted.as_detail(), "entries": rows}, ensure_ascii=False, indent=1)
        content_type = "application/json"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "detail": json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)})
        body = "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read the Chinese as UTF-8
        content_type = "text/csv"
    await audit.record(request.app[DATABASE], actor=f"user:{caller(request).user.id}", action="audit.exported",
                       detail={"format": kind, "filter": wanted.as_detail(), "entries": len(rows)})
    return web.Response(text=body, content_type=content_type, charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="telemed-audit-{stamp}.{kind}"'})
