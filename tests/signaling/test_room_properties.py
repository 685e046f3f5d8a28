"""Property tests: any sequence of events leaves the room consistent, and no one outside it hears anything."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from signaling.effects import Close, Deliver
from signaling.events import (
    Admitting,
    ChatStored,
    Chatting,
    Denying,
    Disconnected,
    GraceExpired,
    Joining,
    Leaving,
    MediaChanged,
    NodeLost,
    NodeStopping,
    Regranting,
    Relaying,
    Removing,
    Resuming,
    RoomEvent,
    Where,
)
from signaling.grants import GUEST, HOST
from signaling.messages import (
    MediaState,
    MediaStateChanged,
    Participant,
    ParticipantLeft,
    ParticipantResumed,
    RecordingState,
    RelayedCandidate,
    RelayedOffer,
)
from signaling.room import Room, Status

MAX = 3
# What the relay acts on: offers and candidates to it, who left or came back, whose media changed, the recording.
RELAY_HEARS = (RelayedOffer, RelayedCandidate, ParticipantLeft, ParticipantResumed, MediaStateChanged, RecordingState)
# "a2" and "b2" are "a" and "b" joining again (a reload, another tab): another seat id, the same identity.
pids = st.sampled_from(["a", "b", "c", "d", "e", "a2", "b2"])
nodes = st.sampled_from(["n1", "n2", "n3"])
wheres = st.builds(Where, node=nodes, conn=st.sampled_from(["x", "y", "z", "w"]))


def _identity(pid: str) -> str:
    return f"id:{pid[0]}"


def _join(pid: str, host: bool, where: Where) -> Joining:
    return Joining(participant=Participant(id=pid, user_id=1 if host else None, name=pid, role="r", guest=not host),
                   grants=HOST if host else GUEST, identity=_identity(pid), at=where, resume_hash=f"h:{pid}")


events = st.one_of(
    st.builds(_join, pids, st.booleans(), wheres),
    st.builds(Leaving, participant_id=pids, at=wheres),
    st.builds(Disconnected, participant_id=pids, at=wheres),
    st.builds(lambda p, w, good: Resuming(participant_id=p, identity=_identity(p), at=w,
                                          resume_hash=f"h:{p}" if good else "bad", new_resume_hash=f"h:{p}"),
              pids, wheres, st.booleans()),
    st.builds(GraceExpired, participant_id=pids, epoch=st.integers(0, 3),
              reason=st.sampled_from(["timeout", "node-lost"])),
    st.builds(NodeLost, node=nodes),
    st.builds(NodeStopping, node=nodes),
    st.builds(ChatStored, seq=st.integers(1, 40), stored=st.booleans()),
    st.builds(Admitting, by=pids, participant_id=pids),
    st.builds(Denying, by=pids, participant_id=pids),
    st.builds(Removing, by=pids, participant_id=pids),
    st.builds(lambda s, t, k: Relaying(sender=s, to=t, type=k, sdp="v=0" if k in ("offer", "answer") else None),
              pids, pids, st.sampled_from(["offer", "answer", "candidate", "ice-restart"])),
    st.builds(MediaChanged, participant_id=pids, media=st.builds(MediaState)),
    st.builds(Chatting, participant_id=pids, text=st.text(min_size=1, max_size=5), at_time=st.floats(0, 1e9)),
    st.builds(lambda p, host, revision: Regranting(identity=_identity(p), grants=HOST if host else GUEST,
                                                   revision=revision),
              pids, st.booleans(), st.one_of(st.none(), st.integers(0, 3))),
)


N1 = Where(node="n1", conn="x")
# A patient reloads in a full room and a clinician joins afresh: found by hand, too rare to be drawn.
RELOAD_IN_FULL_ROOM = [_join("a", False, N1), _join("b", True, N1), Admitting(by="b", participant_id="a"),
                       _join("c", True, N1), _join("a2", False, N1), _join("d", True, N1)]


@settings(max_examples=400, deadline=None)
@example(RELOAD_IN_FULL_ROOM)
@given(st.lists(events, min_size=1, max_size=40))
def test_any_sequence_keeps_the_room_consistent(sequence: list[RoomEvent]) -> None:
    """Whatever events arrive in whatever order: only members (before or after the event), the connection that sent
    it and the room's relay hear anything, and the relay only what it acts on (``RELAY_HEARS``: a resume and a
    media change were once missing from the list, and a rare sequence hypothesis found failed on them); a
    relay never runs on a lost or stopping node; at most three are seated and three waiting, nobody both, and
    seats kept for one who joined again count among the three; nobody waiting holds a seat, and a host waits only
    while no seat is free for them."""
    room = Room("consultation:1", max_participants=MAX)
    for seq, event in enumerate(sequence, start=1):
        members_before = {m.at for m in room.members.values()}
        relays = {room.relay_at}  # the room's relay, before this event and after it
        effects = room.apply(event, seq)
        relays = (relays | {room.relay_at}) - {None}
        asking = getattr(event, "at", None)
        for effect in effects:
            if isinstance(effect, Deliver | Close):
                # Only members (before or after this event), the connection that asked, and the room's relay
                # hear anything; the relay only what it acts on.
                assert effect.at in members_before | {m.at for m in room.members.values()} | {asking} | relays, \
                    (event, effect)
                if effect.at in relays and effect.at not in members_before:
                    assert isinstance(effect, Deliver) and isinstance(effect.message, RELAY_HEARS), effect
        if room.relay_node is not None:
            assert room.mode == "relay" and room.live(room.relay_node), "a relay never runs on a going node"
        assert len(room.participants) <= MAX
        assert sum(1 for m in room.members.values() if m.seated or m.keeps_seat) <= MAX, "a kept seat is a seat"
        assert len(room.waiting) <= MAX
        assert not {p.id for p in room.participants} & {p.id for p in room.waiting}
        for member in room.members.values():
            assert member.status in set(Status)
            assert member.epoch >= 0
            assert not (member.status is Status.WAITING and member.seated), "a waiting member holds no seat"
            if member.grants.admit and member.status is Status.WAITING:
                taken = sum(1 for m in room.members.values() if (m.seated or m.keeps_seat) and m is not member)
                assert taken >= MAX, "a host waits only while no seat is free for them"
