"""A consultation room as a pure state machine: events in, new state and effects out. No I/O.

Every node applies the same events in the same order (see events.py), so a refusal is decided here,
at apply time, and comes out as an effect (an error to the sender), never as an exception.
"""

from __future__ import annotations

from . import snapshots
from .effects import ANY_NODE, Close, Deliver, Effect, StartGrace, StoreChat
from .errors import (
    AlreadyJoined,
    ChatNotStored,
    CloseCode,
    NoSeat,
    NotAllowed,
    NotJoined,
    NotRelayed,
    Replaced,
    ResumeFailed,
    RoomFull,
    SeatKept,
    SignalingError,
    UnknownParticipant,
)
from .events import (
    Admitting,
    ChatStored,
    Chatting,
    Denying,
    Disconnected,
    Expelling,
    GraceExpired,
    Joining,
    Leaving,
    MediaChanged,
    NodeLost,
    Recording,
    Regranting,
    Relaying,
    Removing,
    Resuming,
    RoomEvent,
    Snapshot,
    Where,
)
from .members import Member, Status
from .messages import (
    ChatMessage,
    Denied,
    Error,
    GrantsChanged,
    InLobby,
    Joined,
    LobbyUpdate,
    MediaStateChanged,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnecting,
    ParticipantResumed,
    RecordingState,
    RelayedAnswer,
    RelayedCandidate,
    RelayedIceRestart,
    RelayedOffer,
    RelayedReceiveVideo,
    Removed,
    ServerMessage,
)
from .room_media import RELAY_FROM, RELAY_ID, MediaRules, sends_media

__all__ = ["CHAT_KEPT", "RELAY_FROM", "RELAY_ID", "Member", "Room", "Status", "sends_media"]

CHAT_KEPT = 200  # chat lines a newcomer sees; the whole chat is kept in the database
# After these a clinician made a host while waiting may find a free seat: one left, timed out, was removed or
# expelled (a seat frees), one waiting was denied or sent away (the seat a reload left, which was theirs), or
# someone's grants changed. Not after a join: it frees a seat only by replacing its holder (another tab, a
# reload), and that seat is kept for them to be admitted back to, not taken by whoever waits.
FREE_A_SEAT = (Leaving, GraceExpired, Removing, Expelling, Denying, Regranting)


class Room(MediaRules):
    """Who is in one consultation's room, who waits in its lobby, and what each event makes everyone see."""

    def __init__(self, room_id: str, *, max_participants: int) -> None:
        self.room_id = room_id
        self.max_participants = max_participants
        self.members: dict[str, Member] = {}  # in order of joining
        self.chat: list[ChatMessage] = []  # the latest lines, shown to whoever joins
        # Names this run of the room's log (the first joiner's random id): a log forgotten when the room
        # emptied starts counting again, so (session, seq) is what orders a consultation's chat.
        self.session = ""
        self.mode = "p2p"
        # In relay mode, None while the relay has no node to run on (its node went, and nobody present is
        # on a live node yet): it starts where the next participant takes or resumes a seat.
        self.relay_node: str | None = None
        self.relay_epoch = 0
        self.lost_nodes: set[str] = set()  # nodes declared lost (each process start is a node of its own)
        self.stopping: set[str] = set()  # nodes shutting down: no relay is started there
        # Chat lines waiting for their sender's node to store them: log position -> (sender, node, line).
        self.pending_chat: dict[int, tuple[str, str, ChatMessage]] = {}
        self.seq = 0  # the position in the log of the event being applied
        self.recording_by: str | None = None  # who started the recording now running, if one is
        # The consultation's patient and their recording consent: needed for any recording, in the room
        # or not (a patient beside their doctor consents through them).
        self.patient: str | None = None
        self.patient_consent_id: int | None = None

    # ---- views ----

    @property
    def participants(self) -> tuple[Participant, ...]:
        """Those with a seat, reconnecting ones included."""
        return tuple(m.participant for m in self.members.values() if m.seated)

    @property
    def waiting(self) -> tuple[Participant, ...]:
        """Those in the lobby, as hosts see them: whether a seat is kept for them too."""
        return tuple(m.participant.model_copy(update={"seat_kept": True}) if m.keeps_seat else m.participant
                     for m in self.members.values() if not m.seated)

    @property
    def is_empty(self) -> bool:
        return not self.members

    def member(self, participant_id: str) -> Member | None:
        return self.members.get(participant_id)

    # ---- snapshots: a log re-seeded after Redis lost it ----

    def snapshot(self) -> Snapshot:
        """The whole room as of the last event applied, to start a new log with."""
        return snapshots.take(self)

    def _on_Snapshot(self, event: Snapshot, seq: int) -> list[Effect]:
        """Become the room the snapshot describes. Nothing changes for anyone (every copy was that room, or
        an event or two behind it), so nobody is told anything."""
        snapshots.restore(self, event)
        return []

    # ---- events ----

    def apply(self, event: RoomEvent, seq: int = 0) -> list[Effect]:
        """Apply one event from the room's log; ``seq`` is its position there."""
        self.seq = seq
        handler = getattr(self, f"_on_{type(event).__name__}")
        effects = handler(event, seq)
        return effects + self._seat_waiting_hosts() if isinstance(event, FREE_A_SEAT) else effects

    def refusal(self, event: RoomEvent) -> SignalingError | None:
        """Why this event would be refused now, or None. Lets a node answer at once without a round trip."""
        if isinstance(event, Recording):
            # Rests on consents the server appends (from any node): this copy may not have read the latest
            # yet, so the room decides when the event comes up in the log, after every consent given before.
            return None
        check = getattr(self, f"_check_{type(event).__name__}", None)
        return check(event) if check else None

    def _refuse(self, error: SignalingError, at: Where | None) -> list[Effect]:
        if at is None:
            return []
        effects: list[Effect] = [Deliver(at, Error(code=error.code, message=error.message))]
        if error.close_code is not None:
            effects.append(Close(at, error.close_code, error.code))
        return effects

    def _origin(self, participant_id: str) -> Where | None:
        member = self.members.get(participant_id)
        return member.at if member else None

    # join

    def _same_identity(self, identity: str) -> Member | None:
        """The member this identity already has: one seat or lobby place per person (and so per invitation,
        which names one patient), however many sockets they open."""
        return next((m for m in self.members.values() if m.identity == identity), None)

    def _check_Joining(self, event: Joining) -> SignalingError | None:
        if event.participant.id in self.members:
            return AlreadyJoined("You have already joined this room.")
        old = self._same_identity(event.identity)  # its place is freed for the newcomer
        waiting = len(self.waiting) - (1 if old is not None and not old.seated else 0)
        if event.grants.admit and self._seats_taken(but=old) >= self.max_participants:
            return RoomFull(f"The room is full ({self.max_participants} participants).")
        if not event.grants.admit and waiting >= self.max_participants:
            return RoomFull("The waiting room is full; please try again later.")
        return None

    def _on_Joining(self, event: Joining, seq: int) -> list[Effect]:
        if error := self._check_Joining(event):
            return self._refuse(error, event.at)
        effects: list[Effect] = []
        if (old := self._same_identity(event.identity)) is not None:
            effects = self._replace(old)
        # A seat's holder who comes back through the lobby keeps the seat (as one who came back before did)
        keeps_seat = old is not None and (old.seated or old.keeps_seat)
        return effects + self._enter(event, keeps_seat=keeps_seat)

    def _replace(self, old: Member) -> list[Effect]:
        """The same identity joined again (another tab, another device, a reload): the newer socket wins.
        The old one is told and closed, and leaves like anyone else; the new one enters afresh (a guest
        through the lobby again: an admission is for a connection the host saw, not for a link)."""
        effects: list[Effect] = []
        if old.status is not Status.RECONNECTING:
            effects += self._refuse(Replaced("You joined this consultation again on another connection; "
                                             "this one is closed."), old.at)
        return effects + self._drop(old, "replaced")

    def _enter(self, event: Joining, *, keeps_seat: bool) -> list[Effect]:
        self.session = self.session or event.participant.id
        if event.patient is not None:  # the newest token knows best (Consenting events keep it current)
            self.patient, self.patient_consent_id = event.patient, event.patient_consent_id
        status = Status.PRESENT if event.grants.admit else Status.WAITING
        participant = event.participant
        if participant.recording_consent != (event.consent_id is not None):  # else shared, not copied, per member
            participant = participant.model_copy(update={"recording_consent": event.consent_id is not None})
        member = Member(participant, event.grants, event.identity, event.at, event.resume_hash, status,
                        seated=status is Status.PRESENT, consent_id=event.consent_id, invitation=event.invitation,
                        history=event.chat_history, keeps_seat=keeps_seat and status is Status.WAITING)
        self.members[member.id] = member
        if status is Status.WAITING:
            return [Deliver(member.at, InLobby(self_=member.participant)), *self._lobby_update()]
        return self._seat(member)

    # leaving, disconnecting, resuming, expiring

    def _on_Leaving(self, event: Leaving, seq: int) -> list[Effect]:
        member = self.members.get(event.participant_id)
        if member is None or member.at != event.at:
            return []  # already gone, or a connection that was since replaced
        return self._drop(member, "left")

    def _on_Disconnected(self, event: Disconnected, seq: int) -> list[Effect]:
        member = self.members.get(event.participant_id)
        if member is None or member.at != event.at or member.status is Status.RECONNECTING:
            return []
        member.status = Status.RECONNECTING
        member.epoch += 1
        effects: list[Effect] = [StartGrace(event.at.node, member.id, member.epoch)]
        if member.seated:
            effects += self._to_seated(ParticipantReconnecting(participant_id=member.id), but=member.id)
        return effects

    def _check_Resuming(self, event: Resuming) -> SignalingError | None:
        member = self.members.get(event.participant_id)
        if member is None:
            return ResumeFailed("Your place in the room was not kept; join again.")
        if member.identity != event.identity or member.resume_hash != event.resume_hash:
            return ResumeFailed("That resume token does not match; join again.")
        return None

    def _on_Resuming(self, event: Resuming, seq: int) -> list[Effect]:
        if error := self._check_Resuming(event):
            return self._refuse(error, event.at)
        member = self.members[event.participant_id]
        effects: list[Effect] = []
        if member.at != event.at and member.status is not Status.RECONNECTING:
            # The old socket still looked alive here: the newer connection wins.
            effects.append(Close(member.at, CloseCode.REPLACED, "replaced"))
        member.at, member.resume_hash, member.epoch = event.at, event.new_resume_hash, member.epoch + 1
        member.status = Status.PRESENT if member.seated else Status.WAITING
        if not event.chat_history and member.history:  # withheld since they came: from now on only
            member.history = False
            if member.seated and member.chat_from is None:
                member.chat_from = self.seq
        if (member.status is Status.WAITING and member.grants.admit
                and self._seats_taken(but=member) < self.max_participants):
            # Made a host while they were away (Regranting): a host does not wait in the lobby.
            return [*effects, *self._out_of_the_lobby(member)]
        if member.status is Status.WAITING:
            return [*effects, Deliver(member.at, InLobby(self_=member.participant))]
        placed = self._ensure_mode(member.at.node, but=member.id)  # a relay waiting for a node starts here
        effects.append(self._joined(member, resumed=True))
        effects += placed + self._to_seated(ParticipantResumed(participant_id=member.id), but=member.id)
        if self.recording and member.consent_id is None:  # started while they were away
            effects += self._stop_recording("consent-missing")
        return effects

    def _on_GraceExpired(self, event: GraceExpired, seq: int) -> list[Effect]:
        member = self.members.get(event.participant_id)
        if member is None or member.status is not Status.RECONNECTING or member.epoch != event.epoch:
            return []  # came back in time, a timer from an earlier disconnection, or another node's timer
        return self._drop(member, event.reason)

    def _on_NodeLost(self, event: NodeLost, seq: int) -> list[Effect]:
        """A node is gone with its sockets: their participants are reconnecting (a live client comes back at
        once, on another node), and a relay that ran there moves."""
        if event.node in self.lost_nodes:
            return []  # another node said so first
        self.lost_nodes.add(event.node)
        self.stopping.discard(event.node)
        effects: list[Effect] = []
        dropped = []  # whose socket died with the node (all marked first: nobody there is told anything)
        for member in [m for m in self.members.values() if m.at.node == event.node]:
            member.epoch += 1
            if member.status is Status.RECONNECTING:
                # Its socket had closed before (a graceful stop): it keeps the whole grace period, but the
                # timer that node ran is gone, so every node still following the room runs one.
                effects.append(StartGrace(ANY_NODE, member.id, member.epoch))
                continue
            member.status = Status.RECONNECTING
            effects.append(StartGrace(ANY_NODE, member.id, member.epoch, reason="node-lost"))
            dropped.append(member)
        for member in dropped:
            if member.seated:
                effects += self._to_seated(ParticipantReconnecting(participant_id=member.id))
        for seq_, (_, node, _) in list(self.pending_chat.items()):
            if node == event.node:
                del self.pending_chat[seq_]  # its node can no longer say whether it kept the line
        if self.relay_node == event.node:
            effects += self._move_relay()
        return effects

    # the lobby

    def _host(self, participant_id: str, grant: str) -> SignalingError | None:
        member = self.members.get(participant_id)
        if member is None or member.status is not Status.PRESENT:
            return NotJoined("You are not in the room.")
        if not getattr(member.grants, grant):
            return NotAllowed(f"You do not have the {grant} grant.")
        return None

    def _check_Admitting(self, event: Admitting) -> SignalingError | None:
        target = self.members.get(event.participant_id)
        if error := self._host(event.by, "admit"):
            return error
        if target is None or target.status is not Status.WAITING:
            return UnknownParticipant(f"Nobody {event.participant_id!r} is waiting in the lobby.")
        if self._seats_taken(but=target) >= self.max_participants:
            if kept := [m.participant.name for m in self.members.values() if m.keeps_seat and m is not target]:
                return SeatKept(f"The room is full ({self.max_participants} participants): a seat is kept for "
                                f"{', '.join(kept)}, who joined again; admit or deny them first.")
            return NoSeat(f"The room is full ({self.max_participants} participants); someone must leave first.")
        return None

    def _on_Admitting(self, event: Admitting, seq: int) -> list[Effect]:
        if error := self._check_Admitting(event):
            return self._refuse(error, self._origin(event.by))
        target = self.members[event.participant_id]
        return self._out_of_the_lobby(target)

    def _check_Denying(self, event: Denying) -> SignalingError | None:
        if error := self._host(event.by, "admit"):
            return error
        target = self.members.get(event.participant_id)
        if target is None or target.seated:
            return UnknownParticipant(f"Nobody {event.participant_id!r} is waiting in the lobby.")
        return None

    def _on_Denying(self, event: Denying, seq: int) -> list[Effect]:
        if error := self._check_Denying(event):
            return self._refuse(error, self._origin(event.by))
        target = self.members.pop(event.participant_id)
        return [Deliver(target.at, Denied(message="The doctor could not admit you to this consultation.")),
                Close(target.at, CloseCode.FORBIDDEN, "denied"), *self._lobby_update()]

    def _check_Removing(self, event: Removing) -> SignalingError | None:
        if error := self._host(event.by, "moderate"):
            return error
        target = self.members.get(event.participant_id)
        if target is None or not target.seated or target.id == event.by:
            return UnknownParticipant(f"No other participant {event.participant_id!r} is in this room.")
        return None

    def _on_Removing(self, event: Removing, seq: int) -> list[Effect]:
        if error := self._check_Removing(event):
            return self._refuse(error, self._origin(event.by))
        target = self.members[event.participant_id]
        return [Deliver(target.at, Removed(message="You were removed from the consultation.")),
                Close(target.at, CloseCode.FORBIDDEN, "removed"), *self._drop(target, "removed")]

    EXPELLED = {
        "invitation-revoked": "Your invitation to this consultation was withdrawn.",
        "consent-withdrawn": "You withdrew your consent to the video consultation, so you have left it.",
        "not-a-participant": "You are no longer a participant of this consultation.",
        "session-ended": "Your session has ended: your password was reset. Please log in again.",
    }

    def _on_Expelling(self, event: Expelling, seq: int) -> list[Effect]:
        effects: list[Effect] = []
        for target in [m for m in self.members.values() if m.identity == event.identity
                       and event.invitation in (None, m.invitation)]:
            if target.status is not Status.RECONNECTING:  # in the room or in the lobby, on a live socket
                effects += [Deliver(target.at, Removed(message=self.EXPELLED[event.reason])),
                            Close(target.at, CloseCode.FORBIDDEN, event.reason)]
            effects += self._drop(target, event.reason)
        return effects

    def _on_Regranting(self, event: Regranting, seq: int) -> list[Effect]:
        """Whoever has this identity may do what ``event.grants`` says from now on, where they are: one with a
        seat keeps it (a host who may no longer admit stops seeing the lobby; a recording they started goes on,
        under the consent it was started with), one waiting in the lobby who may now admit takes a free seat (in
        a full room, the first that frees). One reconnecting is told nothing now: the room token they come back
        with says the same, and one waiting takes their seat when they resume. A change older than the one the
        member's grants are (``revision``) is not applied: it was told late, after a later one."""
        effects: list[Effect] = []
        for member in [m for m in self.members.values() if m.identity == event.identity]:
            if event.revision is not None and member.grants_revision is not None \
                    and event.revision < member.grants_revision:
                continue
            if event.revision is not None:
                member.grants_revision = event.revision
            if member.grants == event.grants:
                continue
            member.grants = event.grants
            if member.status is Status.RECONNECTING:
                continue
            effects.append(Deliver(member.at, GrantsChanged(grants=event.grants)))
            if member.seated and event.grants.admit:
                effects.append(Deliver(member.at, LobbyUpdate(waiting=self.waiting)))
        return effects  # (one waiting who may now admit takes a free seat: _seat_waiting_hosts, after each event)

    # what participants send each other

    def _speaker(self, participant_id: str) -> SignalingError | None:
        member = self.members.get(participant_id)
        if member is None or member.status is not Status.PRESENT:
            return NotJoined("You are not in the room yet.")
        return None

    def _check_Relaying(self, event: Relaying) -> SignalingError | None:
        if error := self._speaker(event.sender):
            return error
        if event.to == RELAY_ID:
            if self.mode != "relay":
                return NotRelayed("This room is peer to peer now; send your offer to the other participant.")
            if self.relay_node is None:
                return NotRelayed("The relay is moving to another server; wait for the mode message.")
            if event.type in ("answer", "ice-restart"):
                return NotAllowed("The relay takes offers, candidates and receive; to restart, send a new offer.")
            if event.sdp is not None and not self.members[event.sender].grants.publish and sends_media(event.sdp):
                return NotAllowed("You do not have the publish grant: offer to receive only.")
            return None
        target = self.members.get(event.to)
        if target is None or not target.seated or event.to == event.sender:
            return UnknownParticipant(f"No other participant {event.to!r} is in this room.")
        if event.sdp is not None and not self.members[event.sender].grants.publish and sends_media(event.sdp):
            return NotAllowed("You do not have the publish grant: offer and answer to receive only.")
        return None

    def _on_Relaying(self, event: Relaying, seq: int) -> list[Effect]:
        if error := self._check_Relaying(event):
            return self._refuse(error, self._origin(event.sender))
        message: ServerMessage
        if event.type == "offer":
            message = RelayedOffer(from_=event.sender, sdp=event.sdp or "", offer_id=event.offer_id)
        elif event.type == "answer":
            message = RelayedAnswer(from_=event.sender, sdp=event.sdp or "")
        elif event.type == "candidate":
            message = RelayedCandidate(from_=event.sender, candidate=event.candidate)
        elif event.type == "receive":
            message = RelayedReceiveVideo(from_=event.sender, video=bool(event.video))
        else:
            message = RelayedIceRestart(from_=event.sender)
        to = self.relay_at if event.to == RELAY_ID else self.members[event.to].at
        assert to is not None
        return [Deliver(to, message)]

    def _check_MediaChanged(self, event: MediaChanged) -> SignalingError | None:
        return self._speaker(event.participant_id)

    def _on_MediaChanged(self, event: MediaChanged, seq: int) -> list[Effect]:
        if error := self._check_MediaChanged(event):
            return self._refuse(error, self._origin(event.participant_id))
        member = self.members[event.participant_id]
        member.participant = member.participant.model_copy(update={"media": event.media})
        return self._to_seated(MediaStateChanged(participant_id=member.id, media=event.media), but=member.id)

    def _check_Chatting(self, event: Chatting) -> SignalingError | None:
        return self._speaker(event.participant_id)

    def _on_Chatting(self, event: Chatting, seq: int) -> list[Effect]:
        if error := self._check_Chatting(event):
            return self._refuse(error, self._origin(event.participant_id))
        member = self.members[event.participant_id]
        line = ChatMessage(id=seq, from_=member.id, name=member.participant.name, text=event.text,
                           at=event.at_time)
        self.pending_chat[seq] = (member.id, member.at.node, line)
        return [StoreChat(member.at.node, self.session, seq, member.participant, event.text, event.at_time)]

    def _on_ChatStored(self, event: ChatStored, seq: int) -> list[Effect]:
        pending = self.pending_chat.pop(event.seq, None)
        if pending is None:
            return []
        sender, _, line = pending
        if not event.stored:
            return self._refuse(ChatNotStored("Your message could not be saved with the consultation, so nobody "
                                              "was shown it; please send it again."), self._origin(sender))
        self.chat = [*self.chat[-(CHAT_KEPT - 1):], line]
        # (not to one who came after it was said, before it was kept: it is not theirs, as in their joined)
        return [Deliver(m.at, line) for m in self.members.values()
                if m.status is Status.PRESENT and line.id >= (m.chat_from or 0)]

    # ---- helpers ----

    def _seat_waiting_hosts(self) -> list[Effect]:
        """A clinician made a host while waiting in the lobby (Regranting), in a full room or not, takes the
        first seat that frees, in the order they came: asked after each event of ``FREE_A_SEAT``. One
        reconnecting takes it when they resume."""
        effects: list[Effect] = []
        for member in [m for m in self.members.values() if m.status is Status.WAITING and m.grants.admit]:
            if self._seats_taken(but=member) >= self.max_participants:
                continue  # (one who keeps a seat may still take theirs)
            effects += self._out_of_the_lobby(member)
        return effects

    def _seats_taken(self, *, but: Member | None = None) -> int:
        """Seats held (reconnecting ones too) or kept for someone waiting who joined again from one, not
        counting ``but``'s: the seat one who joins again leaves is theirs to come back to."""
        return sum(1 for m in self.members.values() if (m.seated or m.keeps_seat) and m is not but)

    def _out_of_the_lobby(self, member: Member) -> list[Effect]:
        """A member waiting in the lobby takes a seat (admitted, or made a host): they and the others are told,
        and those who may admit see the lobby without them."""
        member.status, member.seated, member.keeps_seat = Status.PRESENT, True, False
        return [*self._seat(member), *self._lobby_update()]

    def _seat(self, member: Member) -> list[Effect]:
        """A member has just taken a seat: tell it and the others; the room may change how media flows."""
        if (member.participant.guest or not member.history) and member.chat_from is None:
            member.chat_from = self.seq  # lines said before (lower in the log), even if kept after, are not theirs
        effects: list[Effect] = [
            *self._to_seated(ParticipantJoined(participant=member.participant), but=member.id)]
        effects += self._ensure_mode(member.at.node, but=member.id)
        if self.recording and member.consent_id is None:
            effects += self._stop_recording("consent-missing")
        return [self._joined(member), *effects]

    def _joined(self, member: Member, *, resumed: bool = False) -> Deliver:
        others = tuple(p for p in self.participants if p.id != member.id)
        waiting = self.waiting if member.grants.admit else ()
        return Deliver(member.at, Joined(self_=member.participant, participants=others, waiting=waiting,
                                         chat=tuple(line for line in self.chat if line.id >= (member.chat_from or 0)),
                                         resumed=resumed, mode=self.mode,  # type: ignore[arg-type]
                                         relay_slots=self.relay_slots,
                                         relay_epoch=self.relay_epoch if self.mode == "relay" else 0,
                                         recording=self.recording))

    def _to_seated(self, message: ServerMessage, *, but: str | None = None) -> list[Effect]:
        """To everyone with a live seat (a reconnecting one hears nothing until it resumes), and to the relay
        what it must act on."""
        effects: list[Effect] = [Deliver(m.at, message) for m in self.members.values()
                                 if m.status is Status.PRESENT and m.id != but]
        if self.relay_at is not None and isinstance(
                message, ParticipantLeft | ParticipantResumed | RecordingState | MediaStateChanged):
            effects.append(Deliver(self.relay_at, message))
        return effects

    def _lobby_update(self) -> list[Effect]:
        update = LobbyUpdate(waiting=self.waiting)
        return [Deliver(m.at, update) for m in self.members.values()
                if m.status is Status.PRESENT and m.grants.admit]

    def _drop(self, member: Member, reason: str) -> list[Effect]:
        del self.members[member.id]
        if not member.seated:
            return self._lobby_update()
        effects = self._to_seated(ParticipantLeft(participant_id=member.id, reason=reason))  # type: ignore[arg-type]
        if self.recording_by == member.id:
            effects += self._stop_recording("left")  # whoever started it answers for it; it ends with them
        if not self.participants:
            self.mode, self.relay_node = "p2p", None  # the relay stops with its last participant
        return effects
