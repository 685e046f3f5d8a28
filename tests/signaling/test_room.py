"""The room state machine, table-driven: lobby, admit, deny, remove, limits, reconnect and resume.

No server: events in, effects out. Effects are summarised as short tuples so each row reads like the protocol.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling.effects import ANY_NODE, Close, Deliver, Effect, StartGrace, StartRelay, StopRelay, StoreChat
from signaling.events import (
    Admitting,
    ChatStored,
    Chatting,
    Consenting,
    Denying,
    Disconnected,
    Expelling,
    FromRelay,
    GraceExpired,
    IceCandidate,
    Joining,
    Leaving,
    MediaChanged,
    NodeLost,
    NodeStopping,
    Recording,
    Regranting,
    RelayHandoff,
    Relaying,
    RelayLost,
    Removing,
    Resuming,
    RoomEvent,
    Where,
)
from signaling.grants import GUEST, HOST
from signaling.messages import (
    ChatMessage,
    ConsentState,
    Error,
    GrantsChanged,
    InLobby,
    Joined,
    LobbyUpdate,
    MediaState,
    MediaStateChanged,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnecting,
    ParticipantResumed,
    ReceiveVideo,
    RecordingState,
    RoomMode,
    dump,
    parse,
)
from signaling.room import Room, sends_media

MAX = 3


def at(pid: str, node: str = "n1", generation: int = 0) -> Where:
    return Where(node=node, conn=f"{pid}{generation or ''}")


def join(pid: str, host: bool = True, node: str = "n1") -> Joining:
    person = Participant(id=pid, user_id=None if not host else ord(pid[0]), name=pid.upper(),
                         role="specialist" if host else "patient", guest=not host)
    return Joining(participant=person, grants=HOST if host else GUEST, identity=f"id:{pid}", at=at(pid, node),
                   resume_hash=f"hash-{pid}")


def _detail(m: Any) -> Any:
    """The one field that tells one message of a type from another."""
    if isinstance(m, Joined):
        return tuple(p.id for p in m.participants)
    if isinstance(m, InLobby):
        return m.self_.id
    if isinstance(m, LobbyUpdate):
        return tuple(p.id for p in m.waiting)
    if isinstance(m, ParticipantJoined):
        return m.participant.id
    if isinstance(m, ParticipantLeft):
        return (m.participant_id, m.reason)
    if isinstance(m, ParticipantReconnecting | ParticipantResumed | MediaStateChanged):
        return m.participant_id
    if isinstance(m, ChatMessage):
        return (m.id, m.text)
    if isinstance(m, Error):
        return m.code
    if isinstance(m, RoomMode):
        return m.mode
    if isinstance(m, RecordingState):
        return (m.on, m.reason)
    if isinstance(m, ConsentState):
        return (m.participant_id, m.recording)
    if isinstance(m, GrantsChanged):
        return "host" if m.grants == HOST else "guest" if m.grants == GUEST else m.grants
    return getattr(m, "from_", None)


def summary(effects: list[Effect]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for effect in effects:
        if isinstance(effect, Close):
            rows.append(("close", effect.at.conn, effect.code))
        elif isinstance(effect, StartGrace) and effect.reason == "timeout" and effect.node != ANY_NODE:
            rows.append(("grace", effect.participant_id, effect.epoch))
        elif isinstance(effect, StartGrace):
            rows.append(("grace", effect.participant_id, effect.epoch, effect.reason, effect.node))
        elif isinstance(effect, StopRelay):
            rows.append(("stop-relay", effect.node, effect.epoch))
        elif isinstance(effect, StoreChat):
            rows.append(("store", effect.node, effect.seq, effect.text))
        elif isinstance(effect, StartRelay):
            rows.append(("start-relay", effect.node, effect.epoch, *(("placed",) if effect.placed else ())))
        else:
            m = effect.message
            detail = _detail(m)
            rows.append((effect.at.conn, m.type, detail))
    return rows


def room_after(*events: RoomEvent) -> Room:
    room = Room("consultation:1", max_participants=MAX)
    for seq, event in enumerate(events, start=1):
        room.apply(event, seq)
    return room


DOC, SPEC, PAT = join("d"), join("s"), join("p", host=False)
UNVERIFIED = join("u").model_copy(update={"grants": GUEST})  # a clinician whose licence is not verified yet
PAT_BY_LINK_1 = PAT.model_copy(update={"invitation": 1})
OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"


def host_seated_for(reason: str, lobby: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """A clinician ``u`` made a host while waiting in a full room (d, s, t seated, relayed), once t's seat frees
    (``reason``): t's leaving is told, then u takes the seat and, with the others who may admit, sees the
    lobby without them (``lobby``: who still waits)."""
    left = ("t", reason)
    return [("d", "participant-left", left), ("s", "participant-left", left),
            ("relay:consultation:1:1", "participant-left", left),
            ("u", "joined", ("d", "s")), ("d", "participant-joined", "u"), ("s", "participant-joined", "u"),
            ("d", "lobby-update", lobby), ("s", "lobby-update", lobby), ("u", "lobby-update", lobby)]


# A full room (d, s and the admitted patient t) with u, made a host, waiting; then t reloads (a new join of
# the same identity, as t2).
RELOAD_IN_FULL_ROOM = (DOC, SPEC, join("t", host=False), Admitting(by="d", participant_id="t"), UNVERIFIED,
                       Regranting(identity="id:u", grants=HOST))
RELOADED = join("t", host=False).model_copy(update={
    "participant": join("t", host=False).participant.model_copy(update={"id": "t2"}), "at": at("t2")})
RELOADED_AGAIN = RELOADED.model_copy(update={
    "participant": RELOADED.participant.model_copy(update={"id": "t3"}), "at": at("t3")})
# The same full room with nobody waiting; then t reloads.
FULL_THEN_RELOADED = (DOC, SPEC, join("t", host=False), Admitting(by="d", participant_id="t"), RELOADED)


def wish(sender: str, to: str, *, video: bool = False) -> Relaying:
    """``sender`` asks ``to`` for audio only (or for video again) on their peer-to-peer call."""
    return Relaying(sender=sender, to=to, type="receive", video=video)


@pytest.mark.parametrize(
    ("before", "event", "expected"),
    [
        # joining, and the lobby
        ((), DOC, [("d", "joined", ())]),
        ((DOC,), SPEC, [("s", "joined", ("d",)), ("d", "participant-joined", "s")]),
        ((DOC,), PAT, [("p", "lobby", "p"), ("d", "lobby-update", ("p",))]),
        ((), PAT, [("p", "lobby", "p")]),  # nobody to admit yet: wait
        ((DOC, PAT), SPEC, [("s", "joined", ("d",)), ("d", "participant-joined", "s")]),
        ((DOC, PAT), Admitting(by="d", participant_id="p"),
         [("p", "joined", ("d",)), ("d", "participant-joined", "p"), ("d", "lobby-update", ())]),
        ((DOC, PAT), Denying(by="d", participant_id="p"),
         [("p", "denied", None), ("close", "p", 4403), ("d", "lobby-update", ())]),
        ((DOC, PAT), Admitting(by="d", participant_id="nobody"), [("d", "error", "unknown-participant")]),
        ((DOC, PAT), Admitting(by="p", participant_id="p"), [("p", "error", "not-joined")]),
        ((DOC, PAT, Admitting(by="d", participant_id="p"), join("q", host=False)),
         Admitting(by="p", participant_id="q"), [("p", "error", "not-allowed")]),
        ((DOC, SPEC, join("t"), PAT), Admitting(by="d", participant_id="p"), [("d", "error", "room-full")]),
        # limits
        ((DOC, SPEC, join("t")), join("u"), [("u", "error", "room-full"), ("close", "u", 4409)]),
        ((join("p1", False), join("p2", False), join("p3", False)), join("p4", False),
         [("p4", "error", "room-full"), ("close", "p4", 4409)]),
        ((DOC,), join("d"), [("d", "error", "already-joined")]),
        # removing
        ((DOC, SPEC), Removing(by="d", participant_id="s"),
         [("s", "removed", None), ("close", "s", 4403), ("d", "participant-left", ("s", "removed"))]),
        ((DOC, SPEC), Removing(by="d", participant_id="d"), [("d", "error", "unknown-participant")]),
        ((DOC, PAT, Admitting(by="d", participant_id="p")), Removing(by="p", participant_id="d"),
         [("p", "error", "not-allowed")]),
        # the server expels an identity: an invitation revoked, the video consent withdrawn
        ((DOC, PAT, Admitting(by="d", participant_id="p")), Expelling(identity="id:p", reason="consent-withdrawn"),
         [("p", "removed", None), ("close", "p", 4403), ("d", "participant-left", ("p", "consent-withdrawn"))]),
        ((DOC, PAT), Expelling(identity="id:p", reason="invitation-revoked"),
         [("p", "removed", None), ("close", "p", 4403), ("d", "lobby-update", ())]),
        ((DOC, PAT, Admitting(by="d", participant_id="p"), Disconnected(participant_id="p", at=at("p"))),
         Expelling(identity="id:p", reason="invitation-revoked"),  # gone already: no seat held for a return
         [("d", "participant-left", ("p", "invitation-revoked"))]),
        ((DOC,), Expelling(identity="id:nobody", reason="invitation-revoked"), []),
        # a clinician taken off the consultation (its appointment moved to another specialist)
        ((DOC, SPEC), Expelling(identity="id:s", reason="not-a-participant"),
         [("s", "removed", None), ("close", "s", 4403), ("d", "participant-left", ("s", "not-a-participant"))]),
        # a clinician whose password an administrator reset
        ((DOC, SPEC), Expelling(identity="id:s", reason="session-ended"),
         [("s", "removed", None), ("close", "s", 4403), ("d", "participant-left", ("s", "session-ended"))]),
        # revoking one invitation expels only whoever came in by it, not the same patient by another link
        ((DOC, PAT_BY_LINK_1), Expelling(identity="id:p", reason="invitation-revoked", invitation=2), []),
        ((DOC, PAT_BY_LINK_1), Expelling(identity="id:p", reason="invitation-revoked", invitation=1),
         [("p", "removed", None), ("close", "p", 4403), ("d", "lobby-update", ())]),
        # an administrator changed what a clinician may do (a licence verified, or no longer): a seated host
        # who may no longer host keeps the seat but not the lobby nor admitting; a clinician waiting in the lobby
        # who may now host takes a free seat (and, seated, sees the lobby); one reconnecting is told nothing
        ((DOC, SPEC, PAT), Regranting(identity="id:s", grants=GUEST), [("s", "grants", "guest")]),
        ((DOC, SPEC, PAT, Regranting(identity="id:s", grants=GUEST)), Admitting(by="s", participant_id="p"),
         [("s", "error", "not-allowed")]),
        ((DOC, SPEC, Regranting(identity="id:s", grants=GUEST)), PAT,
         [("p", "lobby", "p"), ("d", "lobby-update", ("p",))]),
        ((DOC, PAT, UNVERIFIED), Regranting(identity="id:u", grants=HOST),
         [("u", "grants", "host"), ("u", "joined", ("d",)), ("d", "participant-joined", "u"),
          ("d", "lobby-update", ("p",)), ("u", "lobby-update", ("p",))]),
        ((DOC, PAT, UNVERIFIED, Admitting(by="d", participant_id="u")), Regranting(identity="id:u", grants=HOST),
         [("u", "grants", "host"), ("u", "lobby-update", ("p",))]),
        ((DOC, SPEC, join("t"), UNVERIFIED), Regranting(identity="id:u", grants=HOST),
         [("u", "grants", "host")]),  # no free seat: waits on, as a host admitting them would be told
        # ... and takes the first seat that frees, however it frees (in the order they came, if two wait)
        ((DOC, SPEC, join("t"), UNVERIFIED, Regranting(identity="id:u", grants=HOST)),
         Leaving(participant_id="t", at=at("t")), host_seated_for("left")),
        ((DOC, SPEC, join("t"), UNVERIFIED, Regranting(identity="id:u", grants=HOST),
          Disconnected(participant_id="t", at=at("t"))), GraceExpired(participant_id="t", epoch=1),
         host_seated_for("timeout")),
        ((DOC, SPEC, join("t"), UNVERIFIED, Regranting(identity="id:u", grants=HOST)),
         Removing(by="d", participant_id="t"),
         [("t", "removed", None), ("close", "t", 4403), *host_seated_for("removed")]),
        ((DOC, SPEC, join("t"), UNVERIFIED, join("v").model_copy(update={"grants": GUEST}),
          Regranting(identity="id:v", grants=HOST), Regranting(identity="id:u", grants=HOST)),
         Leaving(participant_id="t", at=at("t")), host_seated_for("left", lobby=("v",))),
        # a seated patient who reloads goes through the lobby again, and the seat they left is theirs to be
        # admitted back to, not the waiting host's; if they are sent away instead, the host takes it
        (RELOAD_IN_FULL_ROOM, RELOADED,
         [("t", "error", "replaced"), ("close", "t", 4410),
          *[(to, "participant-left", ("t", "replaced")) for to in ("d", "s", "relay:consultation:1:1")],
          ("t2", "lobby", "t2"), ("d", "lobby-update", ("u", "t2")), ("s", "lobby-update", ("u", "t2"))]),
        ((*RELOAD_IN_FULL_ROOM, RELOADED), Admitting(by="d", participant_id="t2"),
         [("t2", "joined", ("d", "s")), ("d", "participant-joined", "t2"), ("s", "participant-joined", "t2"),
          ("d", "lobby-update", ("u",)), ("s", "lobby-update", ("u",))]),
        ((*RELOAD_IN_FULL_ROOM, RELOADED), Denying(by="d", participant_id="t2"),
         [("t2", "denied", None), ("close", "t2", 4403), ("d", "lobby-update", ("u",)), ("s", "lobby-update", ("u",)),
          ("u", "joined", ("d", "s")), ("d", "participant-joined", "u"), ("s", "participant-joined", "u"),
          ("d", "lobby-update", ()), ("s", "lobby-update", ()), ("u", "lobby-update", ())]),
        # ... nor a clinician joining afresh, nor one a host admits from the lobby instead, while t2 waits (and
        # one reloading again keeps it): once t2 leaves the lobby the seat is free again
        (FULL_THEN_RELOADED, join("v"), [("v", "error", "room-full"), ("close", "v", 4409)]),
        ((*FULL_THEN_RELOADED, RELOADED_AGAIN), join("v"), [
            ("v", "error", "room-full"), ("close", "v", 4409)]),
        ((*FULL_THEN_RELOADED, PAT), Admitting(by="d", participant_id="p"), [("d", "error", "seat-kept")]),
        ((*FULL_THEN_RELOADED, Leaving(participant_id="t2", at=at("t2"))), join("v"),
         [("v", "joined", ("d", "s")), ("d", "participant-joined", "v"), ("s", "participant-joined", "v")]),
        ((*FULL_THEN_RELOADED, RELOADED_AGAIN), Admitting(by="d", participant_id="t3"),
         [("t3", "joined", ("d", "s")), ("d", "participant-joined", "t3"), ("s", "participant-joined", "t3"),
          ("d", "lobby-update", ()), ("s", "lobby-update", ())]),
        ((*FULL_THEN_RELOADED, Admitting(by="d", participant_id="t2"), Leaving(participant_id="s", at=at("s"))),
         join("v"),  # seated again, they keep no second seat
         [("v", "joined", ("d", "t2")), ("d", "participant-joined", "v"), ("t2", "participant-joined", "v")]),
        # one waiting who is reconnecting takes no seat now (they take it when they resume)
        ((DOC, SPEC, join("t"), UNVERIFIED, Regranting(identity="id:u", grants=HOST),
          Disconnected(participant_id="u", at=at("u"))), Leaving(participant_id="t", at=at("t")),
         host_seated_for("left")[:3]),
        ((DOC, SPEC), Regranting(identity="id:s", grants=HOST), []),  # nothing changed
        # a change is applied only over an older one (its account's revision): one told late, after a later
        # one (even one that changed nothing here), is not; one of no known revision (an older node's) is
        ((DOC, SPEC, Regranting(identity="id:s", grants=GUEST, revision=2)),
         Regranting(identity="id:s", grants=HOST, revision=1), []),
        ((DOC, SPEC, Regranting(identity="id:s", grants=HOST, revision=2)),
         Regranting(identity="id:s", grants=GUEST, revision=1), []),
        ((DOC, SPEC, Regranting(identity="id:s", grants=HOST, revision=2)),
         Regranting(identity="id:s", grants=GUEST, revision=3), [("s", "grants", "guest")]),
        ((DOC, SPEC, Regranting(identity="id:s", grants=GUEST, revision=2)),
         Regranting(identity="id:s", grants=HOST), [("s", "grants", "host"), ("s", "lobby-update", ())]),
        ((DOC,), Regranting(identity="id:nobody", grants=GUEST), []),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))), Regranting(identity="id:s", grants=GUEST), []),
        ((DOC, PAT, UNVERIFIED, Disconnected(participant_id="u", at=at("u")), Regranting(identity="id:u", grants=HOST)),
         Resuming(participant_id="u", identity="id:u", at=at("u", generation=2), resume_hash="hash-u",
                  new_resume_hash="h2"),  # made a host while away: seated on coming back, not put in the lobby
         [("u2", "joined", ("d",)), ("d", "participant-joined", "u"), ("d", "lobby-update", ("p",)),
          ("u2", "lobby-update", ("p",))]),
        ((DOC, SPEC, PAT, Disconnected(participant_id="s", at=at("s")), Regranting(identity="id:s", grants=GUEST),
          Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="hash-s",
                   new_resume_hash="h2")),
         Admitting(by="s", participant_id="p"), [("s2", "error", "not-allowed")]),  # kept across the resume
        # negotiation and media state
        ((DOC, SPEC), Relaying(sender="d", to="s", type="offer", sdp=OFFER), [("s", "offer", "d")]),
        ((DOC, SPEC), Relaying(sender="s", to="d", type="candidate", candidate=IceCandidate(candidate="c")),
         [("d", "candidate", "s")]),
        ((DOC, SPEC), Relaying(sender="s", to="d", type="ice-restart"), [("d", "ice-restart", "s")]),
        ((DOC, PAT), Relaying(sender="d", to="p", type="offer", sdp=OFFER), [("d", "error", "unknown-participant")]),
        ((DOC, PAT), Relaying(sender="p", to="d", type="offer", sdp=OFFER), [("p", "error", "not-joined")]),
        ((DOC, SPEC), Relaying(sender="d", to="d", type="offer", sdp=OFFER), [("d", "error", "unknown-participant")]),
        ((DOC, SPEC), MediaChanged(participant_id="s", media=MediaState(muted=True)), [("d", "media-state", "s")]),
        # audio only on a peer-to-peer call: the wish goes to the one who would send the video, whatever the
        # room's mode (a client keeps it for when the two are peer to peer again); never to the lobby, to
        # oneself, or from the lobby. To one reconnecting it goes to their old socket and is lost: the
        # chooser says it again when they hear "participant-resumed"
        ((DOC, SPEC), wish("s", "d"), [("d", "receive", "s")]),
        ((DOC, SPEC), wish("s", "d", video=True), [("d", "receive", "s")]),
        ((DOC, SPEC, join("t")), wish("s", "d"), [("d", "receive", "s")]),
        ((DOC, PAT), wish("d", "p"), [("d", "error", "unknown-participant")]),
        ((DOC, PAT), wish("p", "d"), [("p", "error", "not-joined")]),
        ((DOC, SPEC), wish("d", "d"), [("d", "error", "unknown-participant")]),
        ((DOC, SPEC), wish("d", "gone"), [("d", "error", "unknown-participant")]),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))), wish("d", "s"), [("s", "receive", "d")]),
        ((DOC, SPEC, Leaving(participant_id="s", at=at("s"))), wish("d", "s"), [("d", "error", "unknown-participant")]),
        # a chat line is kept by its sender's node, and shown once it is kept; one that could not be is refused
        ((DOC, SPEC), Chatting(participant_id="s", text="BP 150/95", at_time=1.0), [("store", "n1", 3, "BP 150/95")]),
        ((DOC, SPEC, Chatting(participant_id="s", text="BP 150/95", at_time=1.0)), ChatStored(seq=3, stored=True),
         [("d", "chat", (3, "BP 150/95")), ("s", "chat", (3, "BP 150/95"))]),
        ((DOC, SPEC, Chatting(participant_id="s", text="BP 150/95", at_time=1.0)), ChatStored(seq=3, stored=False),
         [("s", "error", "chat-not-stored")]),
        ((DOC, SPEC, Chatting(participant_id="s", text="BP", at_time=1.0), ChatStored(seq=3, stored=True)),
         ChatStored(seq=3, stored=True), []),  # told twice: shown once
        ((DOC, PAT), Chatting(participant_id="p", text="hello?", at_time=1.0), [("p", "error", "not-joined")]),
        # leaving, dropping, resuming
        ((DOC, SPEC), Leaving(participant_id="s", at=at("s")), [("d", "participant-left", ("s", "left"))]),
        ((DOC, SPEC), Leaving(participant_id="s", at=at("s", generation=9)), []),  # a replaced connection
        ((DOC, SPEC), Disconnected(participant_id="s", at=at("s")),
         [("grace", "s", 1), ("d", "participant-reconnecting", "s")]),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))),
         Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="hash-s",
                  new_resume_hash="h2"),
         [("s2", "joined", ("d",)), ("d", "participant-resumed", "s")]),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))),
         Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="guess",
                  new_resume_hash="h2"),
         [("s2", "error", "resume-failed")]),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))),
         Resuming(participant_id="s", identity="id:someone-else", at=at("s", generation=2), resume_hash="hash-s",
                  new_resume_hash="h2"),
         [("s2", "error", "resume-failed")]),
        ((DOC, SPEC),  # the server had not yet noticed the old socket die: the new one takes over
         Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="hash-s",
                  new_resume_hash="h2"),
         [("close", "s", 4410), ("s2", "joined", ("d",)), ("d", "participant-resumed", "s")]),
        ((DOC, PAT, Disconnected(participant_id="p", at=at("p"))),
         Resuming(participant_id="p", identity="id:p", at=at("p", generation=2), resume_hash="hash-p",
                  new_resume_hash="h2"),
         [("p2", "lobby", "p")]),  # back in the lobby, same place
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))), GraceExpired(participant_id="s", epoch=1),
         [("d", "participant-left", ("s", "timeout"))]),
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s")),
          Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="hash-s",
                   new_resume_hash="h2")),
         GraceExpired(participant_id="s", epoch=1), []),  # resumed in time: the old timer is void
        # a lost node's participants are reconnecting (their clients resume elsewhere at once, or leave one
        # presence TTL later, on every node's timer); the relay, on n2 too, moves to n1
        ((DOC, join("s", node="n2"), join("t", node="n2")), NodeLost(node="n2"),
         [("grace", "s", 1, "node-lost", "*"), ("grace", "t", 1, "node-lost", "*"),
          ("d", "participant-reconnecting", "s"), ("d", "participant-reconnecting", "t"),
          ("stop-relay", "n2", 1), ("start-relay", "n1", 2), ("d", "mode", "relay")]),
        ((DOC, join("s", node="n2"), NodeLost(node="n2")), NodeLost(node="n2"), []),  # another node said it first
        ((DOC, join("s", node="n2"), NodeLost(node="n2")),
         GraceExpired(participant_id="s", epoch=1, reason="node-lost"),
         [("d", "participant-left", ("s", "node-lost"))]),
        ((DOC, join("s", node="n2"), Disconnected(participant_id="s", at=at("s", node="n2"))), NodeLost(node="n2"),
         [("grace", "s", 2, "timeout", "*")]),  # its socket had closed: the whole grace, on the others' timers
        ((DOC, join("p", host=False, node="n2")), NodeLost(node="n2"), [("grace", "p", 1, "node-lost", "*")]),
        # a node stopping: the relay moves at once; its participants stay until their sockets go
        ((DOC, join("s", node="n2"), join("t")), NodeStopping(node="n2"), []),  # the relay is on n1
        ((DOC, join("s", node="n2"), join("t", node="n2")), NodeStopping(node="n2"),
         [("stop-relay", "n2", 1), ("start-relay", "n1", 2), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("t", "mode", "relay")]),
        # the relay's worker process died on a node that lives on: it moves (here to the same node, a new
        # epoch everyone connects to); a report about an epoch already replaced changes nothing
        ((DOC, SPEC, join("t")), RelayLost(epoch=1),
         [("stop-relay", "n1", 1), ("start-relay", "n1", 2), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("t", "mode", "relay")]),
        ((DOC, SPEC, join("t"), RelayLost(epoch=1)), RelayLost(epoch=1), []),
        ((DOC, SPEC), RelayLost(epoch=0), []),  # never relayed
        # the node given the relay hands it to another (a media node): it starts there, a new epoch for all
        ((DOC, SPEC, join("t")), RelayHandoff(epoch=1, node="m"),
         [("stop-relay", "n1", 1), ("start-relay", "m", 2, "placed"), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("t", "mode", "relay")]),
        # a handoff of a relay already replaced, or in a room not relayed, changes nothing
        ((DOC, SPEC, join("t"), RelayLost(epoch=1)), RelayHandoff(epoch=1, node="m"), []),
        ((DOC, SPEC), RelayHandoff(epoch=0, node="m"), []),
        # handed to a node lost meanwhile: it starts on the node that handed it over
        ((DOC, SPEC, join("t"), NodeLost(node="m")), RelayHandoff(epoch=1, node="m"),
         [("stop-relay", "n1", 1), ("start-relay", "n1", 2, "placed"), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("t", "mode", "relay")]),
        # (the relay moved off a stopping node is placed again by its new node, n2)
        ((DOC, join("s", node="n2"), join("t"), NodeStopping(node="m"), NodeStopping(node="n1")),
         RelayHandoff(epoch=2, node="m"),
         [("stop-relay", "n2", 2), ("start-relay", "n2", 3, "placed"), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("t", "mode", "relay")]),
    ],
)
def test_event_produces(before: tuple[RoomEvent, ...], event: RoomEvent, expected: list[tuple]) -> None:
    """Each row: the room after some events, one more event, and the messages, closes, timers and relay moves it
    produces, in order: joining and the lobby, admitting and denying, the room's and the lobby's limits, removing and
    expelling, a clinician's grants changed by an administrator, negotiation, audio-only wishes, chat kept before
    it is shown, leaving, dropping and resuming, lost and stopping nodes, and a relay lost or handed over."""
    room = room_after(*before)
    assert summary(room.apply(event, len(before) + 1)) == expected


def test_refused_events_change_nothing() -> None:
    """A join to a full room, removing someone unknown and an offer from someone unknown leave every member and their
    status as they were."""
    room = room_after(DOC, SPEC, join("t"))
    snapshot = [(m.id, m.status) for m in room.members.values()]
    room.apply(join("u"), 4)
    room.apply(Removing(by="d", participant_id="nobody"), 5)
    room.apply(Relaying(sender="zz", to="d", type="offer", sdp=OFFER), 6)
    assert [(m.id, m.status) for m in room.members.values()] == snapshot


def test_refusal_answers_without_changing_the_room() -> None:
    """Asked beforehand, a full room refuses another clinician (room-full) but not a guest, and asking adds nobody."""
    room = room_after(DOC, SPEC, join("t"))
    assert room.refusal(join("u")).code == "room-full"
    assert room.refusal(join("v", host=False)) is None
    assert len(room.members) == 3


def test_a_reconnecting_participant_keeps_their_seat() -> None:
    """A reconnecting participant's seat stays theirs: a newcomer to the full room is refused until the grace period
    runs out, then takes it."""
    room = room_after(DOC, SPEC, join("t"), Disconnected(participant_id="t", at=at("t")))
    assert summary(room.apply(join("u"), 5))[0] == ("u", "error", "room-full")
    room.apply(GraceExpired(participant_id="t", epoch=1), 6)
    assert summary(room.apply(join("u"), 7))[0] == ("u", "joined", ("d", "s"))


def test_newcomers_see_the_chat_so_far_and_hosts_see_the_lobby() -> None:
    """A clinician joining gets, in their joined message, the chat kept so far and, as a host, who is waiting in the
    lobby."""
    room = room_after(DOC, PAT, Chatting(participant_id="d", text="first", at_time=1.0),
                      ChatStored(seq=3, stored=True))
    joined = room.apply(SPEC, 5)[0]
    assert isinstance(joined, Deliver) and isinstance(joined.message, Joined)
    assert [line.text for line in joined.message.chat] == ["first"]
    assert [p.id for p in joined.message.waiting] == ["p"]


def test_an_admitted_patient_sees_the_chat_from_their_admission_on() -> None:
    """What the clinicians said before the patient was let in stays theirs: the patient's ``joined`` carries
    no earlier line, a line after it reaches them, and resuming their seat does not bring the old ones."""
    room = room_after(DOC, Chatting(participant_id="d", text="before the patient", at_time=1.0), PAT,
                      ChatStored(seq=2, stored=True))  # kept (and shown) after the patient entered the lobby
    joined = [e for e in room.apply(Admitting(by="d", participant_id="p"), 4)
              if isinstance(e, Deliver) and isinstance(e.message, Joined) and e.at.conn == "p"]
    assert [line.text for line in joined[0].message.chat] == []
    room.apply(Chatting(participant_id="d", text="hello", at_time=2.0), 5)
    room.apply(ChatStored(seq=5, stored=True), 6)
    room.apply(Disconnected(participant_id="p", at=at("p")), 7)
    resumed = [e for e in room.apply(Resuming(participant_id="p", identity="id:p", at=at("p", generation=1),
                                              resume_hash="hash-p", new_resume_hash="hash-p2"), 8)
               if isinstance(e, Deliver) and isinstance(e.message, Joined)]
    assert [line.text for line in resumed[0].message.chat] == ["hello"]
    doc_view = room_after(DOC, Chatting(participant_id="d", text="before the patient", at_time=1.0),
                          ChatStored(seq=2, stored=True), SPEC)
    assert [line.text for line in doc_view.chat] == ["before the patient"], "clinicians see it all"


def test_a_clinician_not_shown_the_chat_history_sees_only_what_is_said_after() -> None:
    """Guards the patient's withheld records in the room: a clinician joining with ``chat_history`` false (of another
    hospital, the patient not consenting to sharing) gets no earlier line in ``joined``, nor on resuming, while lines
    said after they came reach them; a clinician without that mark joining the same room sees the whole chat."""
    partner = join("s").model_copy(update={"chat_history": False})
    room = room_after(DOC, Chatting(participant_id="d", text="about the patient", at_time=1.0),
                      ChatStored(seq=2, stored=True))
    joined = [e for e in room.apply(partner, 4) if isinstance(e, Deliver) and isinstance(e.message, Joined)]
    assert [line.text for line in joined[0].message.chat] == []
    room.apply(Chatting(participant_id="d", text="hello", at_time=2.0), 5)
    room.apply(ChatStored(seq=5, stored=True), 6)
    room.apply(Disconnected(participant_id="s", at=at("s")), 7)
    resumed = [e for e in room.apply(Resuming(participant_id="s", identity="id:s", at=at("s", generation=1),
                                              resume_hash="hash-s", new_resume_hash="hash-s2"), 8)
               if isinstance(e, Deliver) and isinstance(e.message, Joined)]
    assert [line.text for line in resumed[0].message.chat] == ["hello"]
    whole = [e for e in room.apply(join("t"), 9) if isinstance(e, Deliver) and isinstance(e.message, Joined)]
    assert [line.text for line in whole[0].message.chat] == ["about the patient", "hello"]


def test_the_chat_history_withheld_since_a_clinician_came_narrows_at_their_resume_and_never_widens() -> None:
    """Guards a withdrawal during the call: a clinician who came while the history was shown, resuming with
    ``chat_history`` false, gets only lines said from their resume on (not the whole chat again); resuming later with it
    true does not bring the earlier lines back."""
    room = room_after(DOC, Chatting(participant_id="d", text="about the patient", at_time=1.0),
                      ChatStored(seq=2, stored=True), join("s"), Disconnected(participant_id="s", at=at("s")))

    def resumed(seq: int, generation: int, history: bool) -> list[str]:
        event = Resuming(participant_id="s", identity="id:s", at=at("s", generation=generation),
                         resume_hash=f"hash-s{generation - 1 or ''}", new_resume_hash=f"hash-s{generation}",
                         chat_history=history)
        joined = [e for e in room.apply(event, seq) if isinstance(e, Deliver) and isinstance(e.message, Joined)]
        return [line.text for line in joined[0].message.chat]

    assert resumed(6, 1, history=False) == []
    room.apply(Chatting(participant_id="d", text="after", at_time=2.0), 7)
    room.apply(ChatStored(seq=7, stored=True), 8)
    room.apply(Disconnected(participant_id="s", at=at("s", generation=1)), 9)
    assert resumed(10, 2, history=True) == ["after"]


def test_a_clinician_not_shown_the_history_who_waits_in_the_lobby_sees_the_chat_from_their_admission() -> None:
    """Guards the lobby: lines said while a clinician without ``chat_history`` (an unverified licence makes them a
    guest) waits in the lobby are not replayed when the host admits them."""
    waiting = Joining(participant=Participant(id="s", user_id=7, name="S", role="specialist", guest=False),
                      grants=GUEST, identity="id:s", at=at("s"), resume_hash="hash-s", chat_history=False)
    room = room_after(DOC, waiting, Chatting(participant_id="d", text="said while they wait", at_time=1.0),
                      ChatStored(seq=3, stored=True))
    joined = [e for e in room.apply(Admitting(by="d", participant_id="s"), 5)
              if isinstance(e, Deliver) and isinstance(e.message, Joined) and e.at.conn == "s"]
    assert [line.text for line in joined[0].message.chat] == []


def test_a_line_said_before_someone_came_but_kept_after_is_not_sent_to_them() -> None:
    """Guards the chat's boundary live: a patient admitted between a line being said and being kept (their node's
    write) is not sent that line when it is kept, as their ``joined`` did not carry it; the clinicians are."""
    room = room_after(DOC, PAT, Chatting(participant_id="d", text="before the patient", at_time=1.0),
                      Admitting(by="d", participant_id="p"))
    sent = room.apply(ChatStored(seq=3, stored=True), 5)
    assert [e.at.conn for e in sent if isinstance(e, Deliver) and isinstance(e.message, ChatMessage)] == ["d"]


def test_guests_never_see_the_lobby_list() -> None:
    """An admitted guest gets no lobby update when the host turns away another guest: who else is waiting is not a
    patient's to know."""
    room = room_after(DOC, PAT, join("q", host=False), Admitting(by="d", participant_id="p"))
    assert all(not (isinstance(e, Deliver) and e.at.conn == "p" and e.message.type == "lobby-update")
               for e in room.apply(Denying(by="d", participant_id="q"), 5))


@pytest.mark.parametrize(
    ("sdp", "sends"),
    [
        ("v=0\r\nm=audio 9 UDP 111\r\na=sendrecv\r\n", True),
        ("v=0\r\nm=video 9 UDP 96\r\na=sendonly\r\n", True),
        ("v=0\r\nm=audio 9 UDP 111\r\na=recvonly\r\nm=video 9 UDP 96\r\na=inactive\r\n", False),
        ("v=0\r\nm=video 0 UDP 96\r\na=sendrecv\r\n", False),  # rejected section
        ("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", False),
    ],
)
def test_sends_media(sdp: str, sends: bool) -> None:
    """Each row: whether an SDP sends media: a section that is sendrecv or sendonly does; receive-only and inactive
    sections, a rejected section (port 0) and a data channel do not."""
    assert sends_media(sdp) is sends


def test_without_the_publish_grant_only_receive_only_offers_pass() -> None:
    """A participant without the publish grant cannot offer to send media (not-allowed), but their receive-only offer
    and answer still reach the other side."""
    viewer = Joining(participant=Participant(id="v", user_id=9, name="V", role="specialist"),
                     grants=HOST.model_copy(update={"publish": False}), identity="id:v", at=at("v"),
                     resume_hash="h")
    room = room_after(DOC, viewer)
    assert summary(room.apply(Relaying(sender="v", to="d", type="offer", sdp=OFFER), 3)) == [
        ("v", "error", "not-allowed")]
    receive_only = OFFER.replace("sendrecv", "recvonly")
    assert summary(room.apply(Relaying(sender="v", to="d", type="offer", sdp=receive_only), 4)) == [
        ("d", "offer", "v")]
    assert summary(room.apply(Relaying(sender="v", to="d", type="answer", sdp=receive_only), 5)) == [
        ("d", "answer", "v")]


# ---- media mode, the relay, recording and consent ----

RELAY = "relay:consultation:1:1"  # the room's first relay (epoch 1)


def consenting(pid: str, consent_id: int | None = 7) -> Consenting:
    return Consenting(identity=f"id:{pid}", consent_id=consent_id)


OFFER_TO_RELAY = Relaying(sender="d", to="relay", type="offer", sdp="v=0\r\nm=audio 9 x\r\na=sendrecv\r\n")


@pytest.mark.parametrize(
    ("before", "event", "expected"),
    [
        # the third seated participant switches the room to the relay, on the newcomer's node; its "joined"
        # says so, and it gets no "mode" besides (a client connecting on each would offer twice)
        ((DOC, SPEC), join("t", node="n2"),
         [("t", "joined", ("d", "s")), ("d", "participant-joined", "t"), ("s", "participant-joined", "t"),
          ("start-relay", "n2", 1), ("d", "mode", "relay"), ("s", "mode", "relay")]),
        ((DOC, SPEC, PAT), Admitting(by="d", participant_id="p"),  # admitted: the same, one notice
         [("p", "joined", ("d", "s")), ("d", "participant-joined", "p"), ("s", "participant-joined", "p"),
          ("start-relay", "n1", 1), ("d", "mode", "relay"), ("s", "mode", "relay"), ("d", "lobby-update", ()),
          ("s", "lobby-update", ())]),
        # offers to the relay: refused while peer to peer, delivered to the relay's node otherwise
        ((DOC, SPEC), OFFER_TO_RELAY, [("d", "error", "not-relayed")]),
        ((DOC, SPEC, join("t")), OFFER_TO_RELAY, [(RELAY, "offer", "d")]),
        ((DOC, SPEC, join("t")), Relaying(sender="d", to="relay", type="answer", sdp="v=0"),
         [("d", "error", "not-allowed")]),
        # recording needs everyone's consent, then forces the relay even for two
        ((DOC, SPEC, consenting("d")), Recording(by="d", on=True), [("d", "error", "consent-missing")]),
        ((DOC, SPEC, consenting("d"), consenting("s")), Recording(by="d", on=True),
         [("start-relay", "n1", 1), ("d", "mode", "relay"), ("s", "mode", "relay"),
          ("d", "recording", (True, "started")), ("s", "recording", (True, "started")),
          (RELAY, "recording", (True, "started"))]),
        ((DOC, join("p", host=False), Admitting(by="d", participant_id="p"), consenting("d"), consenting("p")),
         Recording(by="p", on=True), [("p", "error", "not-allowed")]),  # a patient has no record grant
        # withdrawing consent, or a newcomer without it, stops the recording at once
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True)), consenting("s", None),
         [("d", "consent", ("s", False)), ("s", "consent", ("s", False)),
          ("d", "recording", (False, "consent-withdrawn")),
          ("s", "recording", (False, "consent-withdrawn")), (RELAY, "recording", (False, "consent-withdrawn"))]),
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True)), join("t"),
         [("t", "joined", ("d", "s")), ("d", "participant-joined", "t"), ("s", "participant-joined", "t"),
          ("d", "recording", (False, "consent-missing")), ("s", "recording", (False, "consent-missing")),
          ("t", "recording", (False, "consent-missing")), (RELAY, "recording", (False, "consent-missing"))]),
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True)), Recording(by="d", on=False),
         [("d", "recording", (False, "stopped")), ("s", "recording", (False, "stopped")),
          (RELAY, "recording", (False, "stopped"))]),
        # who started a recording may stop it after losing the record grant; nobody else without it may
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True),
          Regranting(identity="id:d", grants=GUEST)), Recording(by="d", on=False),
         [("d", "recording", (False, "stopped")), ("s", "recording", (False, "stopped")),
          (RELAY, "recording", (False, "stopped"))]),
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True),
          Regranting(identity="id:s", grants=GUEST)), Recording(by="s", on=False), [("s", "error", "not-allowed")]),
        ((DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True),
          Regranting(identity="id:d", grants=GUEST), Recording(by="d", on=False)), Recording(by="d", on=True),
         [("d", "error", "not-allowed")]),
        # one who resumes in a relayed room: the relay hears it too (what it sent them meanwhile is lost)
        ((DOC, SPEC, join("t"), Disconnected(participant_id="s", at=at("s"))),
         Resuming(participant_id="s", identity="id:s", at=at("s", generation=2), resume_hash="hash-s",
                  new_resume_hash="h2"),
         [("s2", "joined", ("d", "t")), ("d", "participant-resumed", "s"), ("t", "participant-resumed", "s"),
          (RELAY, "participant-resumed", "s")]),
        # the relay's answers go to the one participant
        ((DOC, SPEC, join("t")), FromRelay(epoch=1, to="s", type="answer", sdp="v=0"), [("s", "answer", "relay")]),
        ((DOC, SPEC, join("t")), FromRelay(epoch=1, to="gone", type="answer", sdp="v=0"), []),
    ],
)
def test_media_events_produce(before: tuple[RoomEvent, ...], event: RoomEvent, expected: list[tuple]) -> None:
    """Each row, as in test_event_produces, for media: the third seat switches the room to the relay (with one notice
    each), offers to the relay pass only in relay mode, recording starts only with everyone's consent and never at a
    patient's request, a withdrawal, a newcomer without consent or a stop by hand ends it (by its starter even once
    they may no longer record, who cannot start another), a resume is told to the
    relay too, and the relay's answers go to their one participant."""
    room = room_after(*before)
    assert summary(room.apply(event, len(before) + 1)) == expected


# a consultation with a patient: the doctor's token names them; they sit beside the doctor, not in the room
DOC_WITH_PATIENT = DOC.model_copy(update={"patient": "id:p"})
STARTED = [("start-relay", "n1", 1), ("d", "mode", "relay"), ("s", "mode", "relay"),
           ("d", "recording", (True, "started")), ("s", "recording", (True, "started")),
           (RELAY, "recording", (True, "started"))]


@pytest.mark.parametrize(
    ("before", "event", "expected"),
    [
        ((DOC_WITH_PATIENT, SPEC, consenting("d"), consenting("s")), Recording(by="d", on=True),
         [("d", "error", "consent-missing")]),
        ((DOC_WITH_PATIENT, SPEC, consenting("d"), consenting("s"), consenting("p", 9)), Recording(by="d", on=True),
         STARTED),
        ((DOC.model_copy(update={"patient": "id:p", "patient_consent_id": 9}), SPEC, consenting("d"),
          consenting("s")), Recording(by="d", on=True), STARTED),  # on record before the doctor joined
        ((DOC_WITH_PATIENT, SPEC, consenting("d"), consenting("s"), consenting("p", 9), Recording(by="d", on=True)),
         consenting("p", None),  # the doctor records the patient's withdrawal: the recording stops
         [("d", "recording", (False, "consent-withdrawn")), ("s", "recording", (False, "consent-withdrawn")),
          (RELAY, "recording", (False, "consent-withdrawn"))]),
        ((DOC, SPEC, consenting("d"), consenting("s")), Recording(by="d", on=True), STARTED),  # no patient
    ],
)
def test_a_recording_needs_the_patients_consent_in_the_room_or_not(before: tuple[RoomEvent, ...], event: RoomEvent,
                                                                   expected: list[tuple]) -> None:
    """Each row: when the doctor's token names a patient who is not in the room, recording waits for that patient's
    consent too, given in the room or on record before the doctor joined, and their withdrawal stops it; with no
    patient named, the clinicians' consent is enough."""
    room = room_after(*before)
    assert summary(room.apply(event, len(before) + 1)) == expected


def test_a_recording_relies_on_the_patients_consent_too() -> None:
    """The consents a recording relies on are each clinician's and that of the patient named in the doctor's token,
    though the patient is not in the room."""
    room = room_after(DOC_WITH_PATIENT, SPEC, consenting("d", 3), consenting("s", 4), consenting("p", 9))
    assert room.relied_on() == [3, 4, 9]


def test_consent_given_before_joining_travels_with_the_join() -> None:
    """A recording consent given before joining comes with the join: the room counts it for that participant, and
    their participant entry shows it."""
    room = room_after(DOC, SPEC.model_copy(update={"consent_id": 3}))
    assert room.consents() == {"d": None, "s": 3}
    assert room.member("s").participant.recording_consent


def test_room_goes_back_to_peer_to_peer_when_the_last_seat_empties() -> None:
    """The relay stops with its last participant; those still in the lobby start again peer to peer."""
    room = room_after(DOC, SPEC, join("t"), join("p", host=False))
    assert room.mode == "relay"
    for n, pid in enumerate(("d", "s", "t")):
        room.apply(Leaving(participant_id=pid, at=at(pid)), 10 + n)
    assert room.mode == "p2p" and room.relay_at is None and [p.id for p in room.waiting] == ["p"]


def _messages(effects: list[Effect], conn: str) -> list[Any]:
    return [e.message for e in effects if isinstance(e, Deliver) and e.at.conn == conn]


def test_each_participant_hears_of_a_switch_to_the_relay_once_with_its_epoch() -> None:
    """The newcomer whose join switches the room learns it from "joined" alone; the others from one
    "mode". Both name the relay's epoch, so a client connects once per relay."""
    room = room_after(DOC, SPEC)
    effects = room.apply(join("t"), 3)
    (joined,) = _messages(effects, "t")
    assert isinstance(joined, Joined) and (joined.mode, joined.relay_epoch) == ("relay", 1)
    for pid in ("d", "s"):
        assert [(m.mode, m.relay_epoch) for m in _messages(effects, pid) if isinstance(m, RoomMode)] == [("relay", 1)]


def test_a_relay_lost_with_its_node_is_announced_with_a_new_epoch() -> None:
    """A relay restarted elsewhere is a new relay: "mode" says relay again, with the next epoch, so a
    client already in relay mode knows to connect again; a room of two goes back to peer to peer."""
    room = room_after(DOC, SPEC, join("t", node="n2"), join("u"))  # MAX is 3: u is refused
    effects = room.apply(NodeLost(node="n2"), 5)  # t is reconnecting, still one of three
    assert [(m.mode, m.relay_epoch) for m in _messages(effects, "d") if isinstance(m, RoomMode)] == [("relay", 2)]
    assert room.relay_node == "n1"
    room = room_after(DOC, join("s", node="n2"))
    room.mode, room.relay_node, room.relay_epoch = "relay", "n2", 1  # as if recording had started it there
    effects = room.apply(NodeLost(node="n2"), 3)
    assert [(m.mode, m.relay_epoch) for m in _messages(effects, "d") if isinstance(m, RoomMode)] == [("p2p", 0)]
    room = room_after(DOC, SPEC, join("t"), join("x", node="n2"))
    room.relay_node = "n2"  # as if the relay had been started on n2
    effects = room.apply(NodeLost(node="n2"), 5)
    assert [(m.mode, m.relay_epoch) for m in _messages(effects, "d") if isinstance(m, RoomMode)] == [("relay", 2)]


def test_a_replaced_relay_is_not_heard() -> None:
    """A relay that is moved away closes while its successor already answers: its last layouts (everyone
    gone) once reached pages connected to the new relay and emptied their slots for good. The room passes
    on only what the relay of its current epoch says."""
    room = room_after(DOC, SPEC, join("t"), join("x", node="n2"))
    room.relay_node = "n2"  # as if the relay had been started on n2
    room.apply(NodeStopping(node="n2"), 5)
    assert (room.relay_node, room.relay_epoch) == ("n1", 2)
    assert room.apply(FromRelay(epoch=1, to="d", type="layout", layout={}), 6) == []
    assert room.apply(FromRelay(epoch=1, to="d", type="answer", sdp="v=0", offer_id="1.1"), 7) == []
    (layout,) = room.apply(FromRelay(epoch=2, to="d", type="layout", layout={"3": "s"}), 8)
    assert isinstance(layout, Deliver) and layout.message.slots == {"3": "s"}


def test_offers_to_the_relay_and_its_answers_carry_the_offer_id() -> None:
    """The relay's answer names the offer it answers, so a client drops an answer to an older offer."""
    room = room_after(DOC, SPEC, join("t"))
    (offer,) = room.apply(OFFER_TO_RELAY.model_copy(update={"offer_id": "1.2"}), 4)
    assert isinstance(offer, Deliver) and offer.message.offer_id == "1.2"
    (answer,) = room.apply(FromRelay(epoch=1, to="d", type="answer", sdp="v=0", offer_id="1.2"), 5)
    assert isinstance(answer, Deliver) and answer.message.offer_id == "1.2"
    assert '"offer_id":"1.2"' in dump(answer.message)
    (p2p,) = room_after(DOC, SPEC).apply(Relaying(sender="d", to="s", type="answer", sdp=OFFER), 3)
    assert "offer_id" not in dump(p2p.message), "peer-to-peer messages keep their shape"


def test_a_layout_names_the_audio_slots_and_what_each_forwards_of_the_video() -> None:
    """A client need not guess which audio transceiver carries whom, and learns which slots the relay
    forwards at the low layer or has paused (audio only)."""
    room = room_after(DOC, SPEC, join("t"))
    (layout,) = room.apply(FromRelay(epoch=1, to="d", type="layout", layout={"3": "s", "5": "t"},
                                     audio_layout={"2": "s", "4": "t"},
                                     video_layout={"3": "low", "5": "paused"}), 4)
    assert isinstance(layout, Deliver) and json.loads(dump(layout.message)) == {
        "type": "layout", "slots": {"3": "s", "5": "t"}, "audio_slots": {"2": "s", "4": "t"},
        "video": {"3": "low", "5": "paused"}}


def test_a_publisher_hears_who_gets_only_their_audio_and_only_from_the_relay_of_the_day() -> None:
    """The relay tells a participant who gets none of their video (a weak link, or audio only chosen), so
    the doctor knows the specialist cannot see them; a relay the room has replaced says nothing more."""
    room = room_after(DOC, SPEC, join("t"))
    (audience,) = room.apply(FromRelay(epoch=1, to="d", type="audience", audio_only=["s", "t"]), 4)
    assert isinstance(audience, Deliver) and audience.at == room.members["d"].at
    assert json.loads(dump(audience.message)) == {"type": "audience", "audio_only": ["s", "t"]}
    assert room.apply(FromRelay(epoch=7, to="d", type="audience", audio_only=["s"]), 5) == []


def test_asking_the_relay_for_audio_only_reaches_the_relay_and_nobody_else() -> None:
    """"receive" goes to the relay's connection as the sender's wish; in a peer-to-peer room there is no
    relay to ask, and the sender is told so."""
    room = room_after(DOC, SPEC, join("t"))
    (wish,) = room.apply(Relaying(sender="d", to="relay", type="receive", video=False), 4)
    assert isinstance(wish, Deliver) and wish.at == room.relay_at is not None
    assert json.loads(dump(wish.message)) == {"type": "receive", "from": "d", "video": False}
    (refused,) = room_after(DOC, SPEC).apply(Relaying(sender="d", to="relay", type="receive", video=True), 3)
    assert isinstance(refused, Deliver) and refused.message.type == "error"
    assert refused.message.code == "not-relayed"


def test_a_screen_share_in_a_relayed_room_is_told_to_the_relay_too() -> None:
    """The relay forwards a shared screen even to those who chose audio only, so it must hear when someone
    starts or stops sharing; a peer-to-peer room has no relay to tell."""
    room = room_after(DOC, SPEC, join("t"))
    effects = room.apply(MediaChanged(participant_id="s", media=MediaState(screen_sharing=True)), 4)
    assert sorted((e.at == room.relay_at, e.message.type) for e in effects if isinstance(e, Deliver)) == [
        (False, "media-state"), (False, "media-state"), (True, "media-state")]
    assert room.members["s"].participant.media.screen_sharing
    p2p = room_after(DOC, SPEC).apply(MediaChanged(participant_id="s", media=MediaState(screen_sharing=True)), 3)
    assert [e.message.type for e in p2p if isinstance(e, Deliver)] == ["media-state"]


def test_asking_a_participant_for_audio_only_reaches_them_alone_in_the_relays_shape() -> None:
    """On a peer-to-peer call "receive" goes to the participant named, and to nobody else, with the same wire
    shape the relay gets ({type, from, video}): one message, whoever pauses the video. From the socket, what
    the client sent parses and becomes that event."""
    room = room_after(DOC, SPEC)
    client = parse('{"type": "receive", "to": "d", "video": false}', max_bytes=1024)
    assert isinstance(client, ReceiveVideo)
    (wish,) = room.apply(Relaying(sender="s", to=client.to, type="receive", video=client.video), 3)
    assert isinstance(wish, Deliver) and wish.at == at("d")
    assert json.loads(dump(wish.message)) == {"type": "receive", "from": "s", "video": False}
    relayed = room_after(DOC, SPEC, join("t")).apply(Relaying(sender="s", to="relay", type="receive", video=False), 4)
    assert [json.loads(dump(e.message)) for e in relayed if isinstance(e, Deliver)] == [json.loads(dump(wish.message))]


def test_a_recording_stopped_by_hand_names_who_stopped_it() -> None:
    """"by" says who stopped it; a recording the room stopped names nobody."""
    before = (DOC, SPEC, consenting("d"), consenting("s"), Recording(by="d", on=True))
    stopped = room_after(*before).apply(Recording(by="s", on=False), 6)
    assert {(m.on, m.by, m.reason) for m in _messages(stopped, "d")} == {(False, "s", "stopped")}
    withdrawn = room_after(*before).apply(consenting("s", None), 6)
    assert {(m.by, m.reason) for m in _messages(withdrawn, "d") if isinstance(m, RecordingState)} == {
        (None, "consent-withdrawn")}


# ---- one seat or lobby place per identity ----

def again(pid: str, generation: int, host: bool = True, node: str = "n1") -> Joining:
    """The same person as join(pid) joining on another socket, as a new participant."""
    first = join(pid, host, node)
    return first.model_copy(update={
        "participant": first.participant.model_copy(update={"id": f"{pid}{generation}"}),
        "at": at(pid, node, generation)})


@pytest.mark.parametrize(
    ("before", "event", "expected"),
    [
        # a host on a second socket: the first is told and closed, leaves, and the second takes a seat
        ((DOC, SPEC), again("s", 2),
         [("s", "error", "replaced"), ("close", "s", 4410), ("d", "participant-left", ("s", "replaced")),
          ("s2", "joined", ("d",)), ("d", "participant-joined", "s2")]),
        # in a full room too: the identity's own seat is the one it takes
        ((DOC, SPEC, join("t")), again("t", 2),
         [("t", "error", "replaced"), ("close", "t", 4410), ("d", "participant-left", ("t", "replaced")),
          ("s", "participant-left", ("t", "replaced")), (RELAY, "participant-left", ("t", "replaced")),
          ("t2", "joined", ("d", "s")),
          ("d", "participant-joined", "t2"), ("s", "participant-joined", "t2")]),
        # a guest's second socket takes the lobby place of the first
        ((DOC, PAT), again("p", 2, host=False),
         [("p", "error", "replaced"), ("close", "p", 4410), ("d", "lobby-update", ()),
          ("p2", "lobby", "p2"), ("d", "lobby-update", ("p2",))]),
        # an admitted guest on a new socket waits again: an admission is for the connection the host saw
        ((DOC, PAT, Admitting(by="d", participant_id="p")), again("p", 2, host=False),
         [("p", "error", "replaced"), ("close", "p", 4410), ("d", "participant-left", ("p", "replaced")),
          ("p2", "lobby", "p2"), ("d", "lobby-update", ("p2",))]),
        # a reconnecting seat is replaced too, without a word to the socket that is gone
        ((DOC, SPEC, Disconnected(participant_id="s", at=at("s"))), again("s", 2),
         [("d", "participant-left", ("s", "replaced")), ("s2", "joined", ("d",)), ("d", "participant-joined", "s2")]),
    ],
)
def test_one_place_per_identity(before: tuple[RoomEvent, ...], event: RoomEvent, expected: list[tuple]) -> None:
    """A new socket with the same identity replaces the old one, so one token cannot take every seat."""
    room = room_after(*before)
    assert summary(room.apply(event, len(before) + 1)) == expected
    assert len({m.identity for m in room.members.values()}) == len(room.members)


def test_one_token_on_many_sockets_holds_one_seat_and_one_lobby_place() -> None:
    """Twenty sockets of one clinician, twelve of one guest: the room keeps seats and lobby for others."""
    room = room_after(DOC)
    for n in range(1, 21):
        room.apply(again("s", n), 1 + n)
    for n in range(1, 13):
        room.apply(again("p", n, host=False), 30 + n)
    assert [p.id for p in room.participants] == ["d", "s20"] and [p.id for p in room.waiting] == ["p12"]
    assert summary(room.apply(join("t"), 50))[0] == ("t", "joined", ("d", "s20"))
    assert room.refusal(join("q", host=False)) is None


def test_a_participant_whose_node_died_does_not_hold_up_a_recording_but_stops_it_without_consent() -> None:
    """A ghost seat must not block recording: someone reconnecting after their node died is not asked for
    consent; if they resume without it, the recording stops (consent-missing), as for a newcomer."""
    consenting = [join(pid).model_copy(update={"consent_id": n}) for n, pid in enumerate("ds", start=1)]
    absent = join("t", node="n2")  # no recording consent
    room = room_after(*consenting, absent, NodeLost(node="n2"))
    effects = room.apply(Recording(by="d", on=True), 5)
    assert ("d", "recording", (True, "started")) in summary(effects) and room.recording
    effects = room.apply(Resuming(participant_id="t", identity="id:t", at=at("t", node="n1", generation=2),
                                  resume_hash="hash-t", new_resume_hash="h2"), 6)
    assert ("d", "recording", (False, "consent-missing")) in summary(effects) and not room.recording
