"""What auditors do with the audit trail: search it a page at a time, check its chain, export it. The API
and the auditor's page both come here, with the query string as they received it.

A filter's days are the auditor's days: read on the clock of their hospital (the page shows every time on
it), so filtering by a day the page shows finds what the page shows on that day."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import sqlalchemy as sa
from sqlmodel import col

from .. import zones
from ..db import Database
from ..errors import N_, ValidationFailed
from ..models import AuditEvent, Department, Hospital, Partnership, Patient, Specialty, User, utcnow
from ..outputs import Instant, Out
from ..parsing import query_id
from ..permissions import Principal, can_read_audit, require
from ..settings import DEFAULT_TIMEZONE
from ..zones import FIRST_DAY, LAST_DAY
from . import trail as audit

PAGE = 200
EXPORT_MAX = 100_000
# A day's midnight must stay a datetime in every zone once made UTC (year 1 in Shanghai is year 0 in UTC).
CSV_FIELDS = ("id", "at", "actor", "action", "consultation_id", "subject", "detail", "prev_hash", "hash")
FILTER_FIELDS = ("actor", "action", "consultation", "subject", "since", "until")


@dataclass(frozen=True)
class Page:
    entries: list[AuditEvent]
    more: bool  # another page of older entries follows
    chain: AuditChain
    zone: str  # the clock the filter's days were read on, and the page shows times on


async def reader_zone(database: Database, who: Principal, fallback: str = DEFAULT_TIMEZONE) -> str:
    """The time zone of the auditor's hospital (``fallback``, the deployment's default zone, if it has none)."""
    async with database.session() as session:
        return await zones.reader_zone(session, who, fallback)


def filter_from(query: Mapping[str, str], zone: str) -> audit.AuditFilter:
    """The filter in a query string, its days read on ``zone``'s clock (``since`` from its first moment,
    ``until`` to its last); 422 naming each field that cannot be read, with a sentence to show beside it."""
    problems: dict[str, str] = {}

    def day(name: str) -> date | None:
        raw = query.get(name, "")
        if not raw:
            return None
        try:
            found = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            found = None
        if found is None:
            problems[name] = N_("Enter a day as YYYY-MM-DD.")
        elif not FIRST_DAY <= found <= LAST_DAY:
            problems[name] = N_("Enter a day between the years 1900 and 9999.")
            found = None
        return found

    consultation = query_id(query, "consultation", problems, N_("Enter a consultation's number."))
    since, until = day("since"), day("until")
    if since and until and until < since:
        problems["until"] = N_("The last day comes before the first day.")
    if problems:
        raise ValidationFailed(problems)
    clock = ZoneInfo(zone)
    return audit.AuditFilter(
        actor=query.get("actor") or None, action=query.get("action") or None,
        consultation_id=consultation, subject=query.get("subject") or None,
        since=datetime.combine(since, time(), tzinfo=clock) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), tzinfo=clock) if until else None)


# An entry's detail keys whose values name things, by kind; lists name several.
REFERENCES = {
    "hospital_id": "hospital", "lead_hospital_id": "hospital", "member_ids": "hospital", "specialty_id": "specialty",
    "department_id": "department", "participants": "user", "patient": "patient", "found": "patient",
    "for": "identity", "actor": "identity", "subject": "identity", "via": "identity",
    "referral": "referral", "attachment": "attachment", "appointment": "appointment", "invitation": "invitation",
    "consents": "consent", "template": "template", "user_id": "user",
}
COUNTED = {"participants"}  # a whole number under these keys is a count (recording.viewed), not an id
_IDENTITY = re.compile(r"^(?P<kind>[a-z_]+):(?P<id>\S+)$")
ID = re.compile(r"^[0-9]{1,10}$")


def identity_of(raw: Any) -> tuple[str, str] | None:
    """``("user", "4")`` for ``user:4``; None for what is not ``kind:id``."""
    found = _IDENTITY.match(raw) if isinstance(raw, str) else None
    return (found["kind"], found["id"]) if found else None


def detail_of(event: AuditEvent) -> dict[str, Any]:
    """An entry's detail as a mapping (an altered one that no longer reads as JSON, under ``detail``)."""
    try:
        found = json.loads(event.detail)
    except ValueError:  # an altered entry; the chain's check says so, the page still shows the rest
        return {"detail": event.detail}
    return found if isinstance(found, dict) else {"detail": found}


@dataclass(frozen=True)
class Named:
    """A thing the page names: a person, a patient (masked), a hospital or other named row."""

    name: str
    role: str = ""  # a Role's value for accounts
    hospital: str = ""
    other_name: str = ""  # a specialty's English name (its Chinese one is ``name``)


@dataclass
class Names:
    """What the page's entries refer to, by kind and id, read at once (``names``)."""

    found: dict[tuple[str, int], Named] = field(default_factory=dict)

    def get(self, kind: str, ident: int) -> Named | None:
        return self.found.get((kind, ident))


def masked(name: str) -> str:
    """``张*``, ``张* Z****``: each word's first letter, the rest starred, so a patient can be told apart
    without their name being read out."""
    return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split())


def _ids(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31]


def references(events: Iterable[AuditEvent]) -> dict[str, set[int]]:
    """Every ``(kind, id)`` the entries name, by kind: actors, subjects and the ids in their details."""
    wanted: dict[str, set[int]] = {k: set() for k in ("user", "patient", "hospital", "specialty", "department",
                                                      "partnership")}

    def add_identity(raw: Any) -> None:
        if (found := identity_of(raw)) and found[0] in wanted and ID.match(found[1]):
            wanted[found[0]].add(int(found[1]))

    for event in events:
        add_identity(event.actor)
        add_identity(event.subject)
        for key, value in detail_of(event).items():
            kind = REFERENCES.get(key)
            if key == "changes" and isinstance(value, dict):
                for name, pair in value.items():
                    if REFERENCES.get(name) in wanted and isinstance(pair, list):
                        wanted[REFERENCES[name]].update(_ids(pair))
            elif kind == "identity":
                for item in value if isinstance(value, list) else [value]:
                    add_identity(item)
            elif kind in wanted and not (key in COUNTED and not isinstance(value, list)):
                wanted[kind].update(_ids(value))
    return wanted


async def names(database: Database, who: Principal, events: Sequence[AuditEvent]) -> Names:
    """The names of everything the entries refer to, for an auditor, in one query (none when they refer to
    nothing). Patients appear by reference, their record's number and a masked name (``张*``): the auditor
    sees who did what, never a health record, yet can tell one patient from another through the trail."""
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    wanted = references(events)
    text = sa.String()
    parts = []
    if wanted["user"]:
        parts.append(sa.select(sa.literal("user", text), col(User.id), col(User.display_name),
                               sa.cast(col(User.role), sa.String), sa.func.coalesce(col(Hospital.name), ""))
                     .select_from(User).outerjoin(Hospital, col(Hospital.id) == col(User.hospital_id))
                     .where(col(User.id).in_(wanted["user"])))
    if wanted["patient"]:
        parts.append(sa.select(sa.literal("patient", text), col(Patient.id), col(Patient.name),
                               sa.literal("patient", text), sa.func.coalesce(col(Hospital.name), ""))
                     .select_from(Patient).outerjoin(Hospital, col(Hospital.id) == col(Patient.hospital_id))
                     .where(col(Patient.id).in_(wanted["patient"])))
    if wanted["hospital"]:
        parts.append(sa.select(sa.literal("hospital", text), col(Hospital.id), col(Hospital.name),
                               sa.literal("", text), sa.literal("", text))
                     .where(col(Hospital.id).in_(wanted["hospital"])))
    if wanted["department"]:
        parts.append(sa.select(sa.literal("department", text), col(Department.id), col(Department.name),
                               sa.literal("", text), sa.func.coalesce(col(Hospital.name), ""))
                     .select_from(Department).outerjoin(Hospital, col(Hospital.id) == col(Department.hospital_id))
                     .where(col(Department.id).in_(wanted["department"])))
    if wanted["specialty"]:
        parts.append(sa.select(sa.literal("specialty", text), col(Specialty.id), col(Specialty.name_zh),
                               col(Specialty.name_en), sa.literal("", text))
                     .where(col(Specialty.id).in_(wanted["specialty"])))
    if wanted["partnership"]:
        parts.append(sa.select(sa.literal("partnership", text), col(Partnership.id), col(Partnership.name),
                               sa.literal("", text), sa.literal("", text))
                     .where(col(Partnership.id).in_(wanted["partnership"])))
    found = Names()
    if not parts:
        return found
    async with database.session() as session:
        statement = sa.union_all(*parts) if len(parts) > 1 else parts[0]
        rows = (await session.exec(statement)).all()  # type: ignore[call-overload]
    for kind, ident, name, extra, hospital in rows:
        if kind == "patient":
            found.found[(kind, ident)] = Named(masked(name), "patient", hospital)
        elif kind == "specialty":
            found.found[(kind, ident)] = Named(name, other_name=extra)
        else:
            found.found[(kind, ident)] = Named(name, extra, hospital)
    return found


class AuditChain(Out):
    """Whether the whole chain holds, where it breaks if not (``break``), how many entries it has, and its
    newest hash (keep it elsewhere, to notice the newest entries removed)."""

    holds: bool
    broken_at: str | None = pydantic.Field(alias="break")
    entries: int
    latest_hash: str


class AuditSearchPage(Out):
    """Entries newest first; ``more``: older ones follow (ask with ``before`` = the last id); the chain's state."""

    entries: list[audit.AuditEntry]
    more: bool
    chain: AuditChain


class AuditExport(Out):
    """An export of the trail: when, by which server (``issuer``), with which filter, and the entries oldest
    first."""

    exported_at: Instant
    issuer: str
    filter: dict[str, Any]
    entries: list[audit.AuditEntry]


async def chain_state(database: Database) -> AuditChain:
    """Whether the whole chain holds, where it breaks if not, and its newest hash (keep it elsewhere)."""
    events = await audit.trail(database)
    found = audit.check(events)
    return AuditChain(holds=found is None, broken_at=str(found) if found else None, entries=len(events),
                      latest_hash=events[-1].hash if events else audit.GENESIS)


async def search(database: Database, who: Principal, query: Mapping[str, str], *,
                 fallback: str = DEFAULT_TIMEZONE) -> Page:
    """Entries matching the filter, newest first, ``PAGE`` at a time (``before``: the last id seen); the
    filter's days are on the auditor's clock (``reader_zone``)."""
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    zone = await reader_zone(database, who, fallback)
    problems: dict[str, str] = {}
    before = query_id(query, "before", problems, N_("This is not the number of an entry."))
    try:
        wanted = filter_from(query, zone)
    except ValidationFailed as exc:
        raise ValidationFailed({**exc.details["fields"], **problems}) from None
    if problems:
        raise ValidationFailed(problems)
    events = await audit.search(database, wanted, limit=PAGE, before_id=before)
    return Page(events, len(events) == PAGE, await chain_state(database), zone)


async def export(database: Database, who: Principal, query: Mapping[str, str], *, issuer: str,
                 fallback: str = DEFAULT_TIMEZONE) -> tuple[str, str]:
    """The matching entries, oldest first, as ``format=csv`` or ``json``: (body, its kind). The export is
    itself recorded in the trail (who, which filter, how many)."""
    require(can_read_audit(who), N_("Only auditors read the audit trail."))
    wanted = filter_from(query, await reader_zone(database, who, fallback))
    kind = query.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ValidationFailed({"format": N_("Choose CSV or JSON.")})
    entries = [audit.shown(e) for e in reversed(await audit.search(database, wanted, limit=EXPORT_MAX))]
    rows = [e.model_dump(mode="json") for e in entries]
    if kind == "json":
        shown = AuditExport(exported_at=utcnow(), issuer=issuer, filter=wanted.as_detail(), entries=entries)
        body = json.dumps(shown.model_dump(mode="json"), ensure_ascii=False, indent=1)
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
