"""The room state machine, table-driven: joins, leaves, forwarding, limits. No server involved."""

from __future__ import annotations

import pytest

from signaling.errors import AlreadyJoined, NotJoined, RoomFull, SignalingError, UnknownParticipant
from signaling.messages import (
    Answer,
    Candidate,
    IceCandidate,
    Joined,
    Offer,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    RelayedAnswer,
    RelayedCandidate,
    RelayedOffer,
)
from signaling.room import Room, Send


def person(pid: str) -> Participant:
    return Participant(id=pid, user_id=ord(pid[0]), name=pid.upper(), role="specialist")


A, B, C = person("a"), person("b"), person("c")


def room_with(*people: Participant, max_participants: int = 3) -> Room:
    room = Room("consultation:1", max_participants=max_participants)
    for p in people:
        room.join(p)
    return room


@pytest.mark.parametrize(
    ("present", "event", "expected"),
    [
        ((), ("join", A), [Send("a", Joined(self_=A, participants=()))]),
        ((A,), ("join", B), [Send("b", Joined(self_=B, participants=(A,))),
                             Send("a", ParticipantJoined(participant=B))]),
        ((A, B), ("join", C), [Send("c", Joined(self_=C, participants=(A, B))),
                               Send("a", ParticipantJoined(participant=C)),
                               Send("b", ParticipantJoined(participant=C))]),
        ((A, B), ("leave", "a"), [Send("b", ParticipantLeft(participant_id="a"))]),
        ((A,), ("leave", "a"), []),
        ((A,), ("leave", "zz"), []),
        ((A, B), ("forward", "a", Offer(to="b", sdp="o")), [Send("b", RelayedOffer(from_="a", sdp="o"))]),
        ((A, B), ("forward", "b", Answer(to="a", sdp="x")), [Send("a", RelayedAnswer(from_="b", sdp="x"))]),
        ((A, B), ("forward", "a", Candidate(to="b", candidate=IceCandidate(candidate="c1"))),
         [Send("b", RelayedCandidate(from_="a", candidate=IceCandidate(candidate="c1")))]),
        ((A, B), ("forward", "a", Candidate(to="b", candidate=None)),
         [Send("b", RelayedCandidate(from_="a", candidate=None))]),
    ],
)
def test_events_produce_these_messages(present: tuple[Participant, ...], event: tuple, expected: list[Send]) -> None:
    room = room_with(*present)
    kind, *args = event
    assert getattr(room, kind)(*args) == expected


@pytest.mark.parametrize(
    ("present", "event", "error"),
    [
        ((A, B, C), ("join", person("d")), RoomFull),
        ((A,), ("join", A), AlreadyJoined),
        ((A,), ("forward", "zz", Offer(to="a", sdp="o")), NotJoined),
        ((A, B), ("forward", "a", Offer(to="zz", sdp="o")), UnknownParticipant),
        ((A, B), ("forward", "a", Offer(to="a", sdp="o")), UnknownParticipant),
    ],
)
def test_refused_events_change_nothing(present: tuple[Participant, ...], event: tuple,
                                       error: type[SignalingError]) -> None:
    room = room_with(*present)
    kind, *args = event
    with pytest.raises(error):
        getattr(room, kind)(*args)
    assert room.participants == present


def test_a_seat_freed_by_leaving_can_be_taken() -> None:
    room = room_with(A, B, C)
    room.leave("b")
    room.join(person("d"))
    assert [p.id for p in room.participants] == ["a", "c", "d"]


def test_room_is_empty_when_the_last_one_leaves() -> None:
    room = room_with(A)
    assert not room.is_empty and "a" in room
    room.leave("a")
    assert room.is_empty and "a" not in room
