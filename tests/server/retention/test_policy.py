"""The retention policy, table-driven: what is kept, held or purged at a given moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.retention.policy import Holds, Item, Kind, Periods, Verdict, expires_at, sort, verdict

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIODS = Periods(recordings=timedelta(days=3 * 365), records=timedelta(days=15 * 365))
REC = Item(Kind.RECORDING, 1, T0, patient_id=7, consultation_id=3)
ATT = Item(Kind.ATTACHMENT, 2, T0, patient_id=7, consultation_id=None)
NONE = Holds()


@pytest.mark.parametrize(("item", "holds", "now", "expected"), [
    (REC, NONE, T0, Verdict.KEEP),
    (REC, NONE, T0 + timedelta(days=3 * 365) - timedelta(seconds=1), Verdict.KEEP),
    (REC, NONE, T0 + timedelta(days=3 * 365), Verdict.PURGE),  # the period's last instant is its end
    (REC, NONE, T0 + timedelta(days=4 * 365), Verdict.PURGE),
    (REC, Holds(patient_ids=frozenset({7})), T0 + timedelta(days=4 * 365), Verdict.HELD),
    (REC, Holds(consultation_ids=frozenset({3})), T0 + timedelta(days=4 * 365), Verdict.HELD),
    (REC, Holds(patient_ids=frozenset({8}), consultation_ids=frozenset({4})), T0 + timedelta(days=4 * 365),
     Verdict.PURGE),  # a hold on someone else keeps nothing of this patient
    (REC, Holds(patient_ids=frozenset({7})), T0 + timedelta(days=365), Verdict.KEEP),  # held, but not due anyway
    (ATT, NONE, T0 + timedelta(days=4 * 365), Verdict.KEEP),  # records are kept 15 years, not 3
    (ATT, NONE, T0 + timedelta(days=15 * 365), Verdict.PURGE),
    (ATT, Holds(consultation_ids=frozenset({3})), T0 + timedelta(days=16 * 365), Verdict.PURGE),  # no consultation
    (ATT, Holds(patient_ids=frozenset({7})), T0 + timedelta(days=16 * 365), Verdict.HELD),
])
def test_verdict(item: Item, holds: Holds, now: datetime, expected: Verdict) -> None:
    """Each kind runs out after its own period from its anchor, and a hold on its patient or consultation keeps
    it however long ago it ran out."""
    assert verdict(item, PERIODS, holds, now) is expected


def test_an_item_without_a_patient_is_held_only_by_its_consultation() -> None:
    """A recording of a consultation with no patient, once run out, is not held by a hold on a patient (here
    patient 1) nor on another consultation; only a hold on its own consultation keeps it."""
    orphan = Item(Kind.RECORDING, 3, T0, patient_id=None, consultation_id=5)
    late = T0 + timedelta(days=4 * 365)
    assert verdict(orphan, PERIODS, Holds(patient_ids=frozenset({1})), late) is Verdict.PURGE
    assert verdict(orphan, PERIODS, Holds(consultation_ids=frozenset({6})), late) is Verdict.PURGE
    assert verdict(orphan, PERIODS, Holds(consultation_ids=frozenset({5})), late) is Verdict.HELD


def test_sort_keeps_order_and_expiry_is_anchor_plus_period() -> None:
    """Items sorted by verdict keep their given order within each (one purged, the two under their patient's hold
    held, none kept), and an item expires at its anchor plus its kind's period."""
    late = T0 + timedelta(days=16 * 365)
    second = Item(Kind.RECORDING, 9, T0 + timedelta(days=1), patient_id=1, consultation_id=1)
    sorted_ = sort([second, REC, ATT], PERIODS, Holds(patient_ids=frozenset({7})), late)
    assert sorted_[Verdict.PURGE] == [second] and sorted_[Verdict.HELD] == [REC, ATT] and sorted_[Verdict.KEEP] == []
    assert expires_at(ATT, PERIODS) == T0 + timedelta(days=15 * 365)
