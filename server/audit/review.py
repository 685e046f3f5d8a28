"""What auditors do with the audit trail: search it a page at a time, check its chain, export it. The API
and the auditor's page both come here, with the query string as they received it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..db import Database
from ..errors import N_, ValidationFailed
from ..models import AuditEvent, utcnow
from ..parsing import query_id
from ..permissions import Principal, can_read_audit, require
from . import trail as audit

PAGE = 200
EXPORT_MAX = 100_000
BEIJING = ZoneInfo("Asia/Shanghai")  # days in a filter are the partnership's working days
CSV_FIELDS = ("id", "at", "actor", "action", "consultation_id", "subject", "detail", "prev_hash", "hash")
FILTER_FIELDS = ("actor", "action", "consultation", "subject", "since", "until")


@dataclass(frozen=True)
class Page:
    entries: list[AuditEvent]
    more: bool  # another page of older entries follows
    chain: dict[str, Any]


def filter_from(query: Mapping[str, str]) -> audit.AuditFilter:
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


async def chain_state(database: Database) -> dict[str, Any]:
    """Whether the whole chain holds, where it breaks if not, and its newest hash (keep it elsewhere)."""
    events = await audit.trail(database)
    found = audit.check(events)
    return {"holds": found is None, "break": str(found) if found else None, "entries": len(events),
            "latest_hash": events[-1].hash if events else audit.GENESIS}


async def search(database: Database, who: Principal, query: Mapping[str, str]) -> Page:
    """Entries matching the filter, newest first, ``PAGE`` at a time (``before``: the last id seen)."""
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    wanted = filter_from(query)
    problems: dict[str, str] = {}
    before = query_id(query, "before", problems, "the id of the last entry seen")
    if problems:
        raise ValidationFailed(problems)
    events = await audit.search(database, wanted, limit=PAGE, before_id=before)
    return Page(events, len(events) == PAGE, await chain_state(database))


async def export(database: Database, who: Principal, query: Mapping[str, str], *, issuer: str) -> tuple[str, str]:
    """The matching entries, oldest first, as ``format=csv`` or ``json``: (body, its kind). The export is
    itself recorded in the trail (who, which filter, how many)."""
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    wanted = filter_from(query)
    kind = query.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ValidationFailed({"format": "csv or json"})
    rows = [audit.to_json(e) for e in reversed(await audit.search(database, wanted, limit=EXPORT_MAX))]
    if kind == "json":
        body = json.dumps({"exported_at": utcnow().isoformat(), "issuer": issuer, "filter": wanted.as_detail(),
                           "entries": rows}, ensure_ascii=False, indent=1)
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "detail": json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)})
        body = "\ufeff" + out.getvalue()  # a BOM, so spreadsheet programs read the Chinese as UTF-8
    await audit.record(database, actor=f"user:{who.user_id}", action="audit.exported",
                       detail={"format": kind, "filter": wanted.as_detail(), "entries": len(rows)})
    return body, kind
