"""Room events: everything that changes a room, in the order of the room's log, the same on every node.

Each node feeds the same events in the same order to its own copy of the pure ``Room``, so all copies
agree. Events are JSON on the wire between nodes (the Redis log), hence pydantic models.

A field added to an event leaves it on the wire while it has the value the older nodes behave as
(``_unsaid``): during a rolling upgrade a node of the previous release, which refuses fields it does not know,
reads every event that asks nothing new of it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from .grants import Grants
from .messages import ChatMessage, IceCandidate, MediaState, Participant


class _Event(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


def _unsaid(older: object) -> Any:
    """A field newer than some nodes: defaults to what they do, and is left off the wire while it says that."""
    return pydantic.Field(default=older, exclude_if=lambda value: value == older)


class Where(_Event):
    """One connection: the node holding the socket and the connection's id there."""

    node: str
    conn: str


class Joining(_Event):
    kind: Literal["join"] = "join"
    participant: Participant
    grants: Grants
    identity: str
    at: Where
    resume_hash: str
    consent_id: int | None = None  # the participant's recording consent on record, if given
    patient: str | None = None  # the consultation's patient, whose consent a recording needs
    patient_consent_id: int | None = None  # their recording consent on record, if given
    invitation: int | None = None  # the invitation link a patient came in by
    chat_history: bool = _unsaid(True)  # shown the chat said before they came (Gate.shows_history)


class Leaving(_Event):
    kind: Literal["leave"] = "leave"
    participant_id: str
    at: Where


class Disconnected(_Event):
    """The socket closed without a leave: the seat is kept for the grace period."""

    kind: Literal["disconnect"] = "disconnect"
    participant_id: str
    at: Where


class Resuming(_Event):
    kind: Literal["resume"] = "resume"
    participant_id: str
    identity: str
    at: Where
    resume_hash: str
    new_resume_hash: str
    chat_history: bool = _unsaid(True)  # still shown the chat said before they came (Gate.shows_history): never widens


class GraceExpired(_Event):
    """Appended when a reconnecting participant's grace period ran out: by the node that held them, or (after
    their node was lost) by every node that follows the room; the room acts on the first."""

    kind: Literal["expire"] = "expire"
    participant_id: str
    epoch: int
    reason: Literal["timeout", "node-lost"] = "timeout"


class NodeLost(_Event):
    """A node stopped refreshing its presence (killed, or cut off), or finished stopping: its connections
    are gone, and so is any relay it ran. Appended by every node that notices; the room acts on the first."""

    kind: Literal["node-lost"] = "node-lost"
    node: str


class NodeStopping(_Event):
    """A node is shutting down gracefully (SIGTERM): it takes nothing new, and a relay it runs must move."""

    kind: Literal["node-stopping"] = "node-stopping"
    node: str


class RelayLost(_Event):
    """The relay of ``epoch`` stopped without being asked (the worker process that ran it died) on a node that
    lives on: it moves, as when its node is lost. Appended by that node."""

    kind: Literal["relay-lost"] = "relay-lost"
    epoch: int


class RelayHandoff(_Event):
    """The node the room gave relay ``epoch`` hands it to ``node`` (a media-only node, or one with room while it
    has none: see placement.py). Appended by the node the room named, which has not started it."""

    kind: Literal["relay-handoff"] = "relay-handoff"
    epoch: int
    node: str


class Admitting(_Event):
    kind: Literal["admit"] = "admit"
    by: str
    participant_id: str


class Denying(_Event):
    kind: Literal["deny"] = "deny"
    by: str
    participant_id: str


class Removing(_Event):
    kind: Literal["remove"] = "remove"
    by: str
    participant_id: str


class Expelling(_Event):
    """Everyone in the room with this identity must go, now: they withdrew their consent to the video
    visit, (only those who came in by it) their ``invitation`` was revoked, a clinician was taken off
    the consultation, or an administrator reset their password. Appended by the server, never by a
    participant's message."""

    kind: Literal["expel"] = "expel"
    identity: str
    reason: Literal["invitation-revoked", "consent-withdrawn", "not-a-participant", "session-ended"]
    invitation: int | None = None


class Regranting(_Event):
    """Everyone in the room with this identity may do what ``grants`` says from now on: an administrator changed
    the clinician's account so that they may host (their licence verified), or no longer. Appended by the
    server, never by a participant's message."""

    kind: Literal["regrant"] = "regrant"
    identity: str
    grants: Grants
    # The account's count of such changes when these grants were read (``Granted.revision``): a room applies a
    # change only over an older one, so one told late (or read before another) cannot undo a later one. None:
    # applied whatever the seat's (an older node's).
    revision: int | None = _unsaid(None)


class Relaying(_Event):
    """Negotiation from one participant to another, or to the relay: offer, answer, candidate or ice-restart;
    or whether the sender receives video (``receive``: of everyone, from the relay; of one participant's
    camera, from that participant on their peer-to-peer call)."""

    kind: Literal["relay"] = "relay"
    sender: str
    to: str
    type: Literal["offer", "answer", "candidate", "ice-restart", "receive"]
    sdp: str | None = None
    candidate: IceCandidate | None = None
    offer_id: str | None = None  # an offer to the relay names itself; the relay's answer echoes it
    video: bool | None = None  # receive: video (True) or audio only (False)


class MediaChanged(_Event):
    kind: Literal["media"] = "media"
    participant_id: str
    media: MediaState


class Chatting(_Event):
    kind: Literal["chat"] = "chat"
    participant_id: str
    text: str
    at_time: float


class ChatStored(_Event):
    """The sender's node wrote chat line ``seq`` (a Chatting event's place in the log) with the consultation,
    or could not (``stored`` false): only a stored line is shown, so the record has every line anyone saw."""

    kind: Literal["chat-stored"] = "chat-stored"
    seq: int
    stored: bool


class Consenting(_Event):
    """Everyone in the room with this identity gave (``consent_id``) or withdrew (None) recording consent.

    Appended by the server when the consent record is written, never by a participant's message."""

    kind: Literal["consent"] = "consent"
    identity: str
    consent_id: int | None


class Recording(_Event):
    kind: Literal["recording"] = "recording"
    by: str
    on: bool


class FromRelay(_Event):
    """The media relay's answer (to the offer ``offer_id``), layout, audience or error for one participant, from the
    relay of ``epoch``: a relay the room has replaced may still be closing, and its last layouts (everyone
    gone) must not reach a client already connected to its successor."""

    kind: Literal["from-relay"] = "from-relay"
    epoch: int = 0  # 0: written by a node older than this field (a rolling upgrade), passed on as before
    to: str
    type: Literal["answer", "layout", "audience", "error"]
    sdp: str | None = None
    offer_id: str | None = None
    layout: dict[str, str] = {}  # slot's video mid -> participant id
    audio_layout: dict[str, str] = {}  # slot's audio mid -> participant id
    video_layout: dict[str, str] = {}  # slot's video mid -> "high", "low" or "paused"
    audio_only: list[str] = []  # (audience) who gets none of this participant's video from the relay
    code: str = ""
    message: str = ""


class MemberState(_Event):
    """One member of a room as a snapshot keeps it (see room.Member)."""

    participant: Participant
    grants: Grants
    identity: str
    at: Where
    resume_hash: str
    status: Literal["waiting", "present", "reconnecting"]
    seated: bool
    consent_id: int | None = None
    invitation: int | None = None
    epoch: int = 0
    chat_from: int | None = None
    history: bool = _unsaid(True)
    keeps_seat: bool = _unsaid(False)
    grants_revision: int | None = _unsaid(None)


class PendingChat(_Event):
    seq: int
    sender: str
    node: str
    line: ChatMessage


class Snapshot(_Event):
    """A room's whole state, as of log position ``seq``: the first entry of a log re-seeded by a node after
    Redis lost it (restarted empty). Whoever reads it takes it as the room, and counts on from ``seq``."""

    kind: Literal["snapshot"] = "snapshot"
    seq: int
    session: str
    members: list[MemberState]
    chat: list[ChatMessage]
    pending_chat: list[PendingChat] = []
    mode: Literal["p2p", "relay"]
    relay_node: str | None
    relay_epoch: int
    lost_nodes: list[str] = []
    stopping: list[str] = []
    recording_by: str | None = None
    patient: str | None = None
    patient_consent_id: int | None = None


RoomEvent = (
    Joining | Leaving | Disconnected | Resuming | GraceExpired | NodeLost | NodeStopping | RelayLost | RelayHandoff
    | Admitting | Denying | Removing | Expelling | Regranting | Relaying | MediaChanged | Chatting | ChatStored
    | Consenting | Recording | FromRelay | Snapshot
)
event_adapter: pydantic.TypeAdapter[RoomEvent] = pydantic.TypeAdapter(
    Annotated[RoomEvent, pydantic.Field(discriminator="kind")]
)


def encode(event: RoomEvent) -> str:
    return event.model_dump_json()


def decode(data: str | bytes) -> RoomEvent:
    return event_adapter.validate_json(data)
