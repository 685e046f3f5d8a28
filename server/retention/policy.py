"""What has outlived its retention at a given moment: pure, no I/O.

Each kind of file is kept for its own period from its anchor (a recording from its end; a referral's
attachment or signed report from the last change to its referral, when the case was closed), and not a day less while a
legal hold stands on its patient or its consultation. The audit trail is no kind here: it is never deleted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class Kind(enum.StrEnum):
    RECORDING = "recording"  # audio and video
    ATTACHMENT = "attachment"  # part of the consultation's record: a result or image sent with a referral
    REPORT = "report"  # a signed report version's PDFs (the record copy and its other languages)


@dataclass(frozen=True)
class Periods:
    """How long each kind is kept."""

    recordings: timedelta
    records: timedelta

    def of(self, kind: Kind) -> timedelta:
        return self.recordings if kind is Kind.RECORDING else self.records


@dataclass(frozen=True)
class Item:
    """One file the rules decide on, and what a hold could name it by."""

    kind: Kind
    id: int
    anchor: datetime  # its period starts here
    patient_id: int | None
    consultation_id: int | None


@dataclass(frozen=True)
class Holds:
    """The patients and consultations under a legal hold now."""

    patient_ids: frozenset[int] = frozenset()
    consultation_ids: frozenset[int] = frozenset()

    def cover(self, item: Item) -> bool:
        return item.patient_id in self.patient_ids or item.consultation_id in self.consultation_ids


class Verdict(enum.StrEnum):
    KEEP = "keep"  # its period has not run out
    HELD = "held"  # it has, but a legal hold keeps it
    PURGE = "purge"


def expires_at(item: Item, periods: Periods) -> datetime:
    return item.anchor + periods.of(item.kind)


def verdict(item: Item, periods: Periods, holds: Holds, now: datetime) -> Verdict:
    """Whether ``item`` is kept, held or purged at ``now`` (expiring exactly at ``now`` counts as expired)."""
    if expires_at(item, periods) > now:
        return Verdict.KEEP
    return Verdict.HELD if holds.cover(item) else Verdict.PURGE


def sort(items: list[Item], periods: Periods, holds: Holds, now: datetime) -> dict[Verdict, list[Item]]:
    """The items by verdict, each list in the order given."""
    out: dict[Verdict, list[Item]] = {v: [] for v in Verdict}
    for item in items:
        out[verdict(item, periods, holds, now)].append(item)
    return out
