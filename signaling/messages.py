"""Typed signaling messages, one model per type, and the ``parse``/``dump`` functions for the wire.

The protocol is described in prose in PROTOCOL.md beside this file; keep the two in step.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pydantic

from .errors import MalformedMessage, MessageTooLarge, UnknownMessageType

PROTOCOL_VERSION = 2
MAX_SDP_CHARS = 128 * 1024  # a relay offer: 2 m-lines per seat, about 3 KB each from Chromium
MAX_CANDIDATE_CHARS = 1024
MAX_CHAT_CHARS = 2000
MAX_TOKEN_CHARS = 4096
MAX_NUMBER_CHARS = 32  # a JSON number's characters: no field needs more, and int() of thousands of digits is slow
MAX_DEPTH = 32  # nested objects and arrays: a message needs four; json's C parser recurses per level
MAX_PING_ID_CHARS = 64


class _Message(pydantic.BaseModel):
    # populate_by_name: server code writes ``from_=``/``self_=``; the wire says "from"/"self".
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)


class IceCandidate(_Message):
    """RTCIceCandidateInit as the browser's ``candidate.toJSON()`` gives it."""

    candidate: str = pydantic.Field(max_length=MAX_CANDIDATE_CHARS)
    sdpMid: str | None = pydantic.Field(default=None, max_length=64)
    sdpMLineIndex: int | None = pydantic.Field(default=None, ge=0, le=255)
    usernameFragment: str | None = pydantic.Field(default=None, max_length=256)


class MediaState(_Message):
    muted: bool = False
    camera_off: bool = False
    screen_sharing: bool = False


class DeviceCheck(_Message):
    """What a patient's device check found before the waiting room, as their browser reports it: each
    part passed (true), failed (false) or was not tried (null). Shown to whoever admits them."""

    camera: bool | None = None
    microphone: bool | None = None
    speaker: bool | None = None
    rtt_ms: int | None = pydantic.Field(default=None, ge=0, le=60_000)
    # Measured against the server's bandwidth probe; absent from older clients, null when not measured.
    down_kbps: int | None = pydantic.Field(default=None, ge=0, le=10_000_000)
    up_kbps: int | None = pydantic.Field(default=None, ge=0, le=10_000_000)


class Grants(pydantic.BaseModel):
    """What a participant may do in the room, in the manner of LiveKit's video grants (a room token names them; see
    grants.py for the host's and the guest's)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    publish: bool = True  # send camera, microphone, screen
    subscribe: bool = True  # receive the others' media
    admit: bool = False  # enter without waiting; let others in from the lobby, or turn them away
    record: bool = False  # start and stop recording (through the media relay)
    moderate: bool = False  # remove participants


class Participant(_Message):
    """Someone in the room. ``id`` names the seat, kept across reconnects; one user in two tabs is two."""

    id: str
    user_id: int | None
    name: str
    role: str
    guest: bool = False
    media: MediaState = MediaState()
    recording_consent: bool = False
    device_check: DeviceCheck | None = None  # patients who took the check on their way in
    # In the lobby: one who held a seat and joined again (a reload), whose seat is kept for them. Said only when
    # true (as the room's lobby shows it, never in the log's events, which older nodes read).
    seat_kept: bool = pydantic.Field(default=False, exclude_if=lambda kept: not kept)


PeerId = Annotated[str, pydantic.Field(min_length=1, max_length=64)]
Sdp = Annotated[str, pydantic.Field(min_length=1, max_length=MAX_SDP_CHARS)]

# ---- client to server ----


class Join(_Message):
    type: Literal["join"] = "join"
    protocol: int
    token: str = pydantic.Field(min_length=1, max_length=MAX_TOKEN_CHARS)
    resume: str | None = pydantic.Field(default=None, max_length=128)


OfferId = Annotated[str, pydantic.Field(min_length=1, max_length=64)]


class Offer(_Message):
    """SDP for one participant, or for the relay: an offer ``to: "relay"`` names itself with ``offer_id``
    (chosen by the client), and the relay's answer echoes it, so a client applies only the answer to the
    offer it is waiting for."""

    type: Literal["offer"] = "offer"
    to: PeerId
    sdp: Sdp
    offer_id: OfferId | None = None

    @pydantic.model_validator(mode="after")
    def _offer_id_for_the_relay_only(self) -> Offer:
        if (self.to == "relay") != (self.offer_id is not None):
            raise ValueError("offer_id is required on an offer to the relay, and only there")
        return self


class Answer(_Message):
    type: Literal["answer"] = "answer"
    to: PeerId
    sdp: Sdp


class Candidate(_Message):
    """A trickled ICE candidate; ``candidate: null`` says the sender has gathered all of them."""

    type: Literal["candidate"] = "candidate"
    to: PeerId
    candidate: IceCandidate | None


class IceRestart(_Message):
    """Ask one participant to restart ICE towards the sender (send a new offer with fresh credentials)."""

    type: Literal["ice-restart"] = "ice-restart"
    to: PeerId


class SetMediaState(_Message):
    type: Literal["media-state"] = "media-state"
    muted: bool
    camera_off: bool
    screen_sharing: bool = False


class SendChat(_Message):
    type: Literal["chat"] = "chat"
    text: str = pydantic.Field(min_length=1, max_length=MAX_CHAT_CHARS)


class Admit(_Message):
    type: Literal["admit"] = "admit"
    participant_id: PeerId


class Deny(_Message):
    type: Literal["deny"] = "deny"
    participant_id: PeerId


class Remove(_Message):
    type: Literal["remove"] = "remove"
    participant_id: PeerId


class SetRecording(_Message):
    """Start or stop recording (record grant; starting needs everyone's recording consent)."""

    type: Literal["recording"] = "recording"
    on: bool


class ReceiveVideo(_Message):
    """Receive video (``video: true``) or audio only (``false``): to the relay, of everyone it forwards; to a
    participant, of that participant's camera on the sender's peer-to-peer call with them."""

    type: Literal["receive"] = "receive"
    to: PeerId
    video: bool


class Leave(_Message):
    type: Literal["leave"] = "leave"


# A ping's id is echoed as given: an integer, or a string (clients often use one).
PingId = int | Annotated[str, pydantic.Field(max_length=MAX_PING_ID_CHARS)] | None


class Ping(_Message):
    type: Literal["ping"] = "ping"
    id: PingId = None


class Pong(_Message):
    """Sent by either side in answer to a ping."""

    type: Literal["pong"] = "pong"
    id: PingId = None


ClientMessage = (
    Join | Offer | Answer | Candidate | IceRestart | ReceiveVideo | SetMediaState | SendChat | Admit | Deny | Remove
    | SetRecording | Leave | Ping | Pong
)
RelayedRequest = Offer | Answer | Candidate | IceRestart
_client_adapter: pydantic.TypeAdapter[ClientMessage] = pydantic.TypeAdapter(
    Annotated[ClientMessage, pydantic.Field(discriminator="type")]
)
CLIENT_TYPES = tuple(sorted(
    model.model_fields["type"].default
    for model in (Join, Offer, Answer, Candidate, IceRestart, ReceiveVideo, SetMediaState, SendChat, Admit, Deny,
                  Remove, SetRecording, Leave, Ping, Pong)
))

# ---- server to client ----


class Joined(_Message):
    """You are in the room (also after being admitted from the lobby, or after resuming)."""

    type: Literal["joined"] = "joined"
    self_: Participant = pydantic.Field(alias="self")
    participants: tuple[Participant, ...]
    waiting: tuple[Participant, ...] = ()
    chat: tuple[ChatMessage, ...] = ()
    resume: str | None = None
    resumed: bool = False
    mode: Literal["p2p", "relay"] = "p2p"
    relay_slots: int = 0
    relay_epoch: int = 0  # names the relay now running (see RoomMode); 0 while peer to peer
    recording: bool = False
    protocol: int = PROTOCOL_VERSION


class InLobby(_Message):
    """You wait in the lobby until someone with the admit grant lets you in."""

    type: Literal["lobby"] = "lobby"
    self_: Participant = pydantic.Field(alias="self")
    resume: str | None = None
    protocol: int = PROTOCOL_VERSION


class LobbyUpdate(_Message):
    """To those who may admit: who is waiting now."""

    type: Literal["lobby-update"] = "lobby-update"
    waiting: tuple[Participant, ...]


class GrantsChanged(_Message):
    """To a participant: what they may do in the room now (an administrator changed their account: a licence
    verified, or no longer). Whoever was let in stays in; what they may do from now on is this."""

    type: Literal["grants"] = "grants"
    grants: Grants


class ParticipantJoined(_Message):
    type: Literal["participant-joined"] = "participant-joined"
    participant: Participant


class ParticipantLeft(_Message):
    type: Literal["participant-left"] = "participant-left"
    participant_id: str
    reason: Literal["left", "timeout", "removed", "node-lost", "consent-withdrawn", "invitation-revoked",
                    "not-a-participant", "session-ended", "replaced"] = "left"


class ParticipantReconnecting(_Message):
    type: Literal["participant-reconnecting"] = "participant-reconnecting"
    participant_id: str


class ParticipantResumed(_Message):
    type: Literal["participant-resumed"] = "participant-resumed"
    participant_id: str


class _NamesItsOffer(_Message):
    """An offer to the relay, or the relay's answer: ``offer_id`` travels only there, so peer-to-peer
    offers and answers keep their shape on the wire."""

    offer_id: str | None = None

    @pydantic.model_serializer(mode="wrap")
    def _without_absent_offer_id(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("offer_id") is None:
            data.pop("offer_id", None)
        return data


class RelayedOffer(_NamesItsOffer):
    type: Literal["offer"] = "offer"
    from_: str = pydantic.Field(alias="from")
    sdp: str


class RelayedAnswer(_NamesItsOffer):
    type: Literal["answer"] = "answer"
    from_: str = pydantic.Field(alias="from")
    sdp: str


class RelayedCandidate(_Message):
    type: Literal["candidate"] = "candidate"
    from_: str = pydantic.Field(alias="from")
    candidate: IceCandidate | None


class RelayedIceRestart(_Message):
    type: Literal["ice-restart"] = "ice-restart"
    from_: str = pydantic.Field(alias="from")


class RelayedReceiveVideo(_Message):
    """``from`` asks for video or for audio only: of everyone, to the relay; of your camera, to a participant
    (who sends ``from`` no video on their peer-to-peer call while it stands)."""

    type: Literal["receive"] = "receive"
    from_: str = pydantic.Field(alias="from")
    video: bool


class MediaStateChanged(_Message):
    type: Literal["media-state"] = "media-state"
    participant_id: str
    media: MediaState


class ChatMessage(_Message):
    """A chat line; ``id`` orders the consultation's chat, the same on every node."""

    type: Literal["chat"] = "chat"
    id: int
    from_: str = pydantic.Field(alias="from")
    name: str
    text: str
    at: float


class RoomMode(_Message):
    """How media flows now: p2p (each pair connects) or relay (everyone connects once, to the server).

    On "relay", close the connections to the others and send one offer ``to: "relay"`` with your own
    tracks and ``relay_slots`` pairs of receive-only audio/video transceivers. Sent only on a change, and
    never to whoever's ``joined`` already said it; each relay started has a new ``relay_epoch``."""

    type: Literal["mode"] = "mode"
    mode: Literal["p2p", "relay"]
    relay_slots: int = 0
    relay_epoch: int = 0


class RelayLayout(_Message):
    """Which participant the relay put in which of your slots: ``slots`` maps the slot's video mid, and
    ``audio_slots`` its audio mid, to the participant id. Slots not named are empty. ``video`` says, by the
    slot's video mid, what the relay forwards of that participant's video to you: ``high``, ``low`` (your
    link cannot carry more) or ``paused`` (audio only: your link cannot carry video, or you asked)."""

    type: Literal["layout"] = "layout"
    slots: dict[str, str]
    audio_slots: dict[str, str] = {}
    video: dict[str, Literal["high", "low", "paused"]] = {}


class RelayAudience(_Message):
    """Who gets only your audio through the relay: ``audio_only`` names the participants to whom the relay
    forwards none of your video (their link cannot carry it, or they asked for audio only); empty when all
    get it. Sent by the relay whenever that set changes."""

    type: Literal["audience"] = "audience"
    audio_only: list[str] = []


class RecordingState(_Message):
    """Recording started or stopped; ``by`` names who started it, or who stopped it by hand (null when
    the server stopped it)."""

    type: Literal["recording"] = "recording"
    on: bool
    by: str | None = None
    reason: Literal["started", "stopped", "consent-withdrawn", "consent-missing", "relay-lost", "left"] = "started"


class ConsentState(_Message):
    """A participant gave or withdrew consent to be recorded."""

    type: Literal["consent"] = "consent"
    participant_id: str
    recording: bool


class Denied(_Message):
    type: Literal["denied"] = "denied"
    message: str


class Removed(_Message):
    type: Literal["removed"] = "removed"
    message: str


class Error(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


ServerMessage = (
    Joined | InLobby | LobbyUpdate | GrantsChanged | ParticipantJoined | ParticipantLeft | ParticipantReconnecting
    | ParticipantResumed | RelayedOffer | RelayedAnswer | RelayedCandidate | RelayedIceRestart | RelayedReceiveVideo
    | MediaStateChanged
    | ChatMessage | RoomMode | RelayLayout | RelayAudience | RecordingState | ConsentState | Denied | Removed
    | Ping | Pong | Error
)
server_adapter: pydantic.TypeAdapter[ServerMessage] = pydantic.TypeAdapter(
    Annotated[ServerMessage, pydantic.Field(discriminator="type")]
)


Joined.model_rebuild()


def parse(text: str | bytes, *, max_bytes: int) -> ClientMessage:
    """Parse one client message, or raise a SignalingError that says what is wrong with it."""
    size = len(text) if isinstance(text, bytes) else len(text.encode())
    if size > max_bytes:
        raise MessageTooLarge(f"Message is {size} bytes; the limit is {max_bytes}.")
    try:
        data: Any = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedMessage("Message is not valid JSON.") from None
    except RecursionError:  # json's C parser recurses once per level; very deep input ends here
        raise MalformedMessage(f"Message nests deeper than {MAX_DEPTH} levels.") from None
    if _depth(text, data) > MAX_DEPTH:
        raise MalformedMessage(f"Message nests deeper than {MAX_DEPTH} levels.")
    if not isinstance(data, dict):
        raise MalformedMessage("Message must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("Message has no 'type' string.")
    if kind not in CLIENT_TYPES:
        raise UnknownMessageType(f"Unknown message type {kind[:40]!r}.")
    try:
        return _client_adapter.validate_python(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'message'}: {err['msg']}" for err in exc.errors()
        )
        raise MalformedMessage(f"Invalid {kind!r} message: {problems}.") from None


def _parse_int(digits: str) -> int:
    if len(digits) > MAX_NUMBER_CHARS:
        raise MalformedMessage(f"A number in the message is longer than {MAX_NUMBER_CHARS} characters.")
    return int(digits)


def _parse_float(digits: str) -> float:
    if len(digits) > MAX_NUMBER_CHARS:
        raise MalformedMessage(f"A number in the message is longer than {MAX_NUMBER_CHARS} characters.")
    return float(digits)


def _no_constant(name: str) -> None:
    raise MalformedMessage(f"{name} is not a JSON number.")


def _depth(text: str | bytes, data: Any) -> int:
    """How deeply ``data`` nests objects and arrays (a top-level object is 1). Counting brackets in the
    text first keeps the common case (a few of them) to one pass in C."""
    brackets = (text.count(b"[") + text.count(b"{")) if isinstance(text, bytes) else (text.count("[") + text.count("{"))
    if brackets <= MAX_DEPTH:
        return brackets
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, level + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


def dump(message: ServerMessage) -> str:
    return message.model_dump_json(by_alias=True)
