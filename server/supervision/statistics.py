"""Statistics per hospital and month across the partnerships a supervisor oversees: consultations held and
recorded, referrals sent and received, their turnaround (from the referral events), declined and redirected
shares, and consent coverage. Only counts, shares and durations leave this module: never a patient's name,
id or any free text. Months are calendar months in the deployment's default zone (``TELEMED_DEFAULT_TIMEZONE``),
whatever the hospitals' own zones, so every hospital's figures are cut at the same instants.

Every query runs once for the whole request (a constant number of statements, however many hospitals,
months or referrals): the figures are folded together in Python."""

from __future__ import annotations

import json
import math
import re
import statistics as stats
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import N_, ValidationFailed
from ..models import (
    Consent,
    ConsentPurpose,
    Consultation,
    ConsultationStatus,
    Hospital,
    Partnership,
    PartnershipMember,
    PartnershipSupervisor,
    Recording,
    RecordingStatus,
    Referral,
    ReferralEvent,
)
from ..outputs import Instant, Named, Out
from ..parsing import Id
from ..permissions import Principal, can_supervise, oversees, require
from ..zones import FIRST_DAY, LAST_DAY

SCHEMA_VERSION = 1  # docs/supervision.md: bumped when a field changes meaning or goes; new fields keep it
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DEFAULT_MONTHS = 12


class StatisticsQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    from_month: str | None = pydantic.Field(default=None, pattern=MONTH.pattern)
    to_month: str | None = pydantic.Field(default=None, pattern=MONTH.pattern)
    partnership_id: Id | None = None
    hospital_id: Id | None = None

    @pydantic.field_validator("from_month", "to_month")
    @classmethod
    def _a_month_every_clock_has(cls, value: str | None) -> str | None:
        if value is not None and not FIRST_DAY.year <= int(value[:4]) < LAST_DAY.year:
            raise ValueError(N_("Choose a month from 1900 to 9998."))
        return value


# The figures of one row, in the order of the CSV's columns (docs/supervision.md describes each).
COUNTS = ("consultations_held", "consultations_recorded", "recordings", "recordings_with_everyones_consent",
          "referrals_sent", "referrals_sent_with_sharing_consent", "referrals_received", "referrals_declined",
          "referrals_redirected", "referrals_accepted", "referrals_booked", "referrals_reported")
SHARES = ("recording_coverage", "recording_consent_coverage", "sharing_consent_coverage", "declined_share",
          "redirected_share")
STAGES = ("accepted", "booked", "reported")  # submitted -> each; from the first event of each kind
DURATIONS = tuple(f"hours_to_{stage}_{which}" for stage in STAGES for which in ("median", "p90"))
FIELDS = ("month", "hospital_id", "hospital_name", *COUNTS, *SHARES, *DURATIONS)
# A row of the JSON export, its fields FIELDS': the counts whole numbers, shares and durations null where
# there is nothing to take them of (docs/supervision.md describes each).
StatisticsRow = pydantic.create_model(
    "StatisticsRow", __base__=Out,
    __doc__="One hospital in one month (``hospital_id`` and ``hospital_name`` null in ``totals``, all of them "
            "together); the fields and their meaning are docs/supervision.md's.",
    month=(str, ...), hospital_id=(int | None, ...), hospital_name=(str | None, ...),
    **{name: (int, ...) for name in COUNTS}, **{name: (float | None, ...) for name in (*SHARES, *DURATIONS)})


class SupervisionStatistics(Out):
    """The statistics as the JSON export sends them (docs/supervision.md): per hospital and month (``rows``)
    and per month for every hospital of the filter (``totals``), months in ``time_zone``."""

    schema_version: int
    time_zone: str
    from_month: str
    to_month: str
    generated_at: Instant
    partnerships: list[Named]
    rows: list[StatisticsRow]  # type: ignore[valid-type]
    totals: list[StatisticsRow]  # type: ignore[valid-type]


STAGE_ACTION = {"accepted": "accept", "booked": "schedule", "reported": "complete"}


def p90(values: list[float]) -> float:
    """The nearest-rank 90th percentile: the smallest value with at least 90% of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Cell:
    """The raw figures of one hospital (or all of them: ``hospital_id`` None) in one month."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    hours: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    def row(self, month: str, hospital_id: int | None, hospital_name: str | None) -> dict[str, Any]:
        c = self.counts
        row: dict[str, Any] = {"month": month, "hospital_id": hospital_id, "hospital_name": hospital_name, **c}
        row["recording_coverage"] = share(c["consultations_recorded"], c["consultations_held"])
        row["recording_consent_coverage"] = share(c["recordings_with_everyones_consent"], c["recordings"])
        row["sharing_consent_coverage"] = share(c["referrals_sent_with_sharing_consent"], c["referrals_sent"])
        row["declined_share"] = share(c["referrals_declined"], c["referrals_received"])
        row["redirected_share"] = share(c["referrals_redirected"], c["referrals_received"])
        for stage, values in self.hours.items():
            row[f"hours_to_{stage}_median"] = round(stats.median(values), 2) if values else None
            row[f"hours_to_{stage}_p90"] = round(p90(values), 2) if values else None
        return row


@dataclass(frozen=True)
class Statistics:
    """What the page shows and the export sends: per hospital and month, and per month for all of them."""

    zone: str
    from_month: str
    to_month: str
    months: list[str]
    partnerships: list[tuple[int, str]]  # the caller's, for the filter
    hospitals: list[tuple[int, str]]  # in the chosen partnerships, for the filter
    rows: list[dict[str, Any]]  # per hospital and month, hospitals by name, months in order
    totals: list[dict[str, Any]]  # per month, every hospital in the filter together

    def shown(self) -> SupervisionStatistics:
        return SupervisionStatistics(
            schema_version=SCHEMA_VERSION, time_zone=self.zone, from_month=self.from_month, to_month=self.to_month,
            generated_at=datetime.now(UTC).replace(microsecond=0),
            partnerships=[Named(id=i, name=n) for i, n in self.partnerships],
            rows=[StatisticsRow(**row) for row in self.rows], totals=[StatisticsRow(**row) for row in self.totals])

    def to_json(self) -> dict[str, Any]:
        return self.shown().model_dump(mode="json")


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def _shift(month: str, by: int) -> str:
    year, number = int(month[:4]), int(month[5:]) - 1 + by
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    months = [first]
    while months[-1] < last:
        months.append(_shift(months[-1], 1))
    return months


def _start(month: str, zone: ZoneInfo) -> datetime:
    """The first instant of a month in the zone, in UTC."""
    return datetime(int(month[:4]), int(month[5:]), 1, tzinfo=zone).astimezone(UTC)


async def overseen(session: AsyncSession, who: Principal) -> list[tuple[int, str]]:
    """The partnerships linked to this supervisor, by name."""
    rows = (await session.exec(select(Partnership.id, Partnership.name).join(
        PartnershipSupervisor, col(PartnershipSupervisor.partnership_id) == Partnership.id).where(
        PartnershipSupervisor.user_id == who.user_id).order_by(col(Partnership.name)))).all()
    return [(i, n) for i, n in rows if i is not None]


async def compute(session: AsyncSession, who: Principal, query: StatisticsQuery, zone_name: str,
                  now: datetime | None = None) -> Statistics:
    """The statistics the filters ask for; a partnership or hospital outside the caller's is refused."""
    require(can_supervise(who), N_("Only supervisors read the partnerships' statistics."))
    zone = ZoneInfo(zone_name)
    last = query.to_month or month_of(now or datetime.now(UTC), zone)
    first = query.from_month or _shift(last, 1 - DEFAULT_MONTHS)
    if first > last:
        raise ValidationFailed({"from_month": N_("The first month comes after the last.")})
    if len(month_range(first, last)) > 120:
        raise ValidationFailed({"from_month": N_("Ask for ten years at most.")})
    mine = await overseen(session, who)
    ids = frozenset(i for i, _ in mine)
    if query.partnership_id is not None:
        require(oversees(who, ids, query.partnership_id), N_("You do not oversee this partnership."))
    chosen = [query.partnership_id] if query.partnership_id is not None else sorted(ids)
    members = (await session.exec(select(Hospital.id, Hospital.name).join(
        PartnershipMember, col(PartnershipMember.hospital_id) == Hospital.id).where(
        col(PartnershipMember.partnership_id).in_(chosen)).distinct().order_by(col(Hospital.name)))).all()
    hospitals = [(i, n) for i, n in members if i is not None]
    names = dict(hospitals)
    if query.hospital_id is not None:
        require(query.hospital_id in names, N_("This hospital is not in a partnership you oversee."))
    scope = {query.hospital_id} if query.hospital_id is not None else set(names)
    since, until = _start(first, zone), _start(_shift(last, 1), zone)
    cells: dict[tuple[int | None, str], Cell] = defaultdict(Cell)

    def add(hospital_id: int, month: str, counter: str) -> None:
        for key in ((hospital_id, month), (None, month)):
            cells[key].counts[counter] += 1

    await _referrals(session, cells, add, chosen, scope, since, until, zone)
    await _consultations(session, add, scope, since, until, zone)
    months = month_range(first, last)
    rows = [cells[(h, m)].row(m, h, names[h]) for h, _ in hospitals if h in scope for m in months]
    totals = [cells[(None, m)].row(m, None, None) for m in months]
    return Statistics(zone_name, first, last, months, mine, hospitals, rows, totals)


async def _referrals(session: AsyncSession, cells: dict[tuple[int | None, str], Cell], add: Any, chosen: list[int],
                     scope: set[int], since: datetime, until: datetime, zone: ZoneInfo) -> None:
    """Referrals submitted in the months, by their submission's month: sent by the referring hospital,
    received (and declined, redirected, turned around) by the receiving one."""
    where = (col(Referral.partnership_id).in_(chosen), col(Referral.submitted_at).is_not(None),
             col(Referral.submitted_at) >= since, col(Referral.submitted_at) < until,
             or_(col(Referral.referring_hospital_id).in_(scope), col(Referral.target_hospital_id).in_(scope)))
    referrals = (await session.exec(select(Referral.id, Referral.referring_hospital_id, Referral.target_hospital_id,
                                           Referral.submitted_at).where(*where))).all()
    wanted = select(Referral.id).where(*where)
    firsts: dict[int, dict[str, datetime]] = defaultdict(dict)
    for referral_id, action, at in (await session.exec(
            select(ReferralEvent.referral_id, ReferralEvent.action, func.min(ReferralEvent.at))
            .where(col(ReferralEvent.referral_id).in_(wanted))
            .group_by(col(ReferralEvent.referral_id), col(ReferralEvent.action)))).all():
        # SQLite's MIN hands back the stored text, not the column's type: read it as UTC either way
        firsts[referral_id][action] = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    consented = set((await session.exec(select(Consent.referral_id).where(
        Consent.purpose == ConsentPurpose.RECORD_SHARING, col(Consent.referral_id).in_(wanted)).distinct())).all())
    for referral_id, referring, target, submitted_at in referrals:
        events = {a: (t if t.tzinfo else t.replace(tzinfo=UTC)) for a, t in firsts[referral_id].items()}
        submitted = events.get("submit", submitted_at)
        month = month_of(submitted_at, zone)
        if referring in scope:
            add(referring, month, "referrals_sent")
            if referral_id in consented:
                add(referring, month, "referrals_sent_with_sharing_consent")
        if target not in scope:
            continue
        add(target, month, "referrals_received")
        if "decline" in events:
            add(target, month, "referrals_declined")
        if "redirect" in events:
            add(target, month, "referrals_redirected")
        for stage, action in STAGE_ACTION.items():
            if action in events:
                add(target, month, f"referrals_{stage}")
                hours = (events[action] - submitted).total_seconds() / 3600
                for key in ((target, month), (None, month)):
                    cells[key].hours[stage].append(hours)


async def _consultations(session: AsyncSession, add: Any, scope: set[int], since: datetime, until: datetime,
                         zone: ZoneInfo) -> None:
    """Consultations held (completed) in the months, by their planned start, at their hospital; their
    recordings (failed ones aside), and whether everyone recorded had consented."""
    where = (col(Consultation.hospital_id).in_(scope), Consultation.status == ConsultationStatus.COMPLETED,
             col(Consultation.planned_start) >= since, col(Consultation.planned_start) < until)
    held = {cid: (hospital, month_of(start, zone)) for cid, hospital, start in (await session.exec(
        select(Consultation.id, Consultation.hospital_id, Consultation.planned_start).where(*where))).all()}
    recordings = (await session.exec(select(Recording.consultation_id, Recording.participants, Recording.consent_ids)
                                     .where(col(Recording.consultation_id).in_(select(Consultation.id).where(*where)),
                                            Recording.status != RecordingStatus.FAILED))).all()
    relied = {i for _, _, ids in recordings for i in json.loads(ids)}
    consent_identity = dict((await session.exec(select(Consent.id, Consent.identity).where(
        col(Consent.id).in_(relied), Consent.purpose == ConsentPurpose.RECORDING))).all()) if relied else {}
    for hospital, month in held.values():
        add(hospital, month, "consultations_held")
    for consultation_id in {r[0] for r in recordings}:
        add(*held[consultation_id], "consultations_recorded")
    for consultation_id, participants, ids in recordings:
        add(*held[consultation_id], "recordings")
        given = {consent_identity[i] for i in json.loads(ids) if i in consent_identity}
        if {p["identity"] for p in json.loads(participants)} <= given:
            add(*held[consultation_id], "recordings_with_everyones_consent")
