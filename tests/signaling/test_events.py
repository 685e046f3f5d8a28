"""Room events on the wire between nodes: a field newer than the previous release is left off while it says what
that release does, so a node of it (which refuses fields it does not know) reads every event that asks nothing new
of it; and what the field says when it differs comes back whole, through a snapshot too."""

from __future__ import annotations

import json

from signaling.events import Admitting, Joining, Regranting, Resuming, Where, decode, encode
from signaling.grants import GUEST, HOST
from signaling.messages import Participant
from signaling.room import Room
from signaling.snapshots import restore, take

SPECIALIST = Participant(id="s", user_id=7, name="S", role="specialist", guest=False)


def test_a_join_or_resume_that_asks_nothing_new_carries_no_new_field() -> None:
    """Guards rolling upgrades: an ordinary join and resume are written without ``chat_history``; one that withholds
    the chat's history carries it, and decodes to the same event. A grant change whose revision is not known is
    written without one."""
    join = Joining(participant=SPECIALIST, grants=HOST, identity="user:7", at=Where(node="n1", conn="c"),
                   resume_hash="h")
    resume = Resuming(participant_id="s", identity="user:7", at=Where(node="n1", conn="c2"), resume_hash="h",
                      new_resume_hash="h2")
    for event in (join, resume):
        assert "chat_history" not in json.loads(encode(event))
        withheld = event.model_copy(update={"chat_history": False})
        assert json.loads(encode(withheld))["chat_history"] is False
        assert decode(encode(withheld)) == withheld
    assert "revision" not in json.loads(encode(Regranting(identity="user:7", grants=HOST)))


def test_a_snapshot_keeps_a_members_withheld_history() -> None:
    """Guards re-seeding a room's log from a node's copy: a member not shown the chat's history is still not shown it
    in the room restored from the snapshot; one who is shown it is written without the field."""
    room = Room("consultation:1", max_participants=3)
    room.apply(Joining(participant=SPECIALIST, grants=HOST, identity="user:7", at=Where(node="n1", conn="c"),
                       resume_hash="h", chat_history=False), 1)
    room.apply(Joining(participant=SPECIALIST.model_copy(update={"id": "d", "user_id": 8}), grants=HOST,
                       identity="user:8", at=Where(node="n1", conn="d"), resume_hash="h"), 2)
    written = json.loads(encode(take(room)))
    assert [m.get("history") for m in written["members"]] == [False, None]
    again = Room("consultation:1", max_participants=3)
    restore(again, decode(encode(take(room))))  # type: ignore[arg-type]
    assert again.members["s"].history is False and again.members["d"].history is True
    assert again.members["s"].chat_from == room.members["s"].chat_from == 1


def test_a_snapshot_keeps_the_seat_kept_for_one_who_joined_again() -> None:
    """Guards re-seeding a room's log: the seat a reload left, kept for its holder while they wait in the lobby, is
    still kept in the room restored from the snapshot (a clinician joining afresh is refused); others are written
    without the field, so a node of the previous release reads them."""
    patient = Participant(id="p", user_id=None, name="P", role="patient", guest=True)
    room = Room("consultation:1", max_participants=2)
    room.apply(Joining(participant=SPECIALIST, grants=HOST, identity="user:7", at=Where(node="n1", conn="c"),
                       resume_hash="h"), 1)
    room.apply(Joining(participant=patient, grants=GUEST, identity="patient:1", at=Where(node="n1", conn="p"),
                       resume_hash="h"), 2)
    room.apply(Admitting(by="s", participant_id="p"), 3)
    room.apply(Joining(participant=patient.model_copy(update={"id": "p2"}), grants=GUEST, identity="patient:1",
                       at=Where(node="n1", conn="p2"), resume_hash="h"), 4)  # the patient reloads
    written = json.loads(encode(take(room)))
    assert [m.get("keeps_seat") for m in written["members"]] == [None, True]
    again = Room("consultation:1", max_participants=2)
    restore(again, decode(encode(take(room))))  # type: ignore[arg-type]
    assert again.members["p2"].keeps_seat is True
    newcomer = Joining(participant=SPECIALIST.model_copy(update={"id": "d", "user_id": 8}), grants=HOST,
                       identity="user:8", at=Where(node="n1", conn="d"), resume_hash="h")
    assert again.refusal(newcomer) is not None and again.refusal(newcomer).code == "room-full"  # type: ignore[union-attr]


def test_a_snapshot_keeps_the_revision_of_a_members_grants() -> None:
    """Guards re-seeding a room's log: the account revision a member's grants are of comes back through a
    snapshot, so a grant change told late (older) is still not applied in the restored room."""
    room = Room("consultation:1", max_participants=3)
    room.apply(Joining(participant=SPECIALIST, grants=HOST, identity="user:7", at=Where(node="n1", conn="c"),
                       resume_hash="h"), 1)
    room.apply(Regranting(identity="user:7", grants=HOST, revision=4), 2)  # (what the gate says after a join)
    again = Room("consultation:1", max_participants=3)
    restore(again, decode(encode(take(room))))  # type: ignore[arg-type]
    assert again.members["s"].grants_revision == 4
    again.apply(Regranting(identity="user:7", grants=GUEST, revision=3), 3)
    assert again.members["s"].grants == HOST
