"""Typed signaling messages, one model per type, and the ``parse``/``dump`` functions for the wire.

The protocol is described in prose in PROTOCOL.md beside this file; keep the two in step.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pydantic

from .errors import MalformedMessage, MessageTooLarge, UnknownMessageType

PROTOCOL_VERSION = 1
MAX_SDP_CHARS = 32 * 1024
MAX_CANDIDATE_CHARS = 1024


class _Message(pydantic.BaseModel):
    # populate_by_name: server code writes ``from_=``/``self_=``; the wire says "from"/"self".
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class IceCandidate(_Message):
    """RTCIceCandidateInit as the browser's ``candidate.toJSON()`` gives it."""

    candidate: str = pydantic.Field(max_length=MAX_CANDIDATE_CHARS)
    sdpMid: str | None = pydantic.Field(default=None, max_length=64)
    sdpMLineIndex: int | None = pydantic.Field(default=None, ge=0, le=255)
    usernameFragment: str | None = pydantic.Field(default=None, max_length=256)


class Participant(_Message):
    """Someone in the room. ``id`` names the connection, so one user in two tabs is two participants."""

    id: str
    user_id: int
    name: str
    role: str


PeerId = Annotated[str, pydantic.Field(min_length=1, max_length=64)]
Sdp = Annotated[str, pydantic.Field(min_length=1, max_length=MAX_SDP_CHARS)]

# ---- client to server ----


class Join(_Message):
    type: Literal["join"] = "join"
    protocol: int = PROTOCOL_VERSION


class Offer(_Message):
    type: Literal["offer"] = "offer"
    to: PeerId
    sdp: Sdp


class Answer(_Message):
    type: Literal["answer"] = "answer"
    to: PeerId
    sdp: Sdp


class Candidate(_Message):
    """A trickled ICE candidate; ``candidate: null`` says the sender has gathered all of them."""

    type: Literal["candidate"] = "candidate"
    to: PeerId
    candidate: IceCandidate | None


class Leave(_Message):
    type: Literal["leave"] = "leave"


class Ping(_Message):
    type: Literal["ping"] = "ping"
    id: int | None = None


ClientMessage = Join | Offer | Answer | Candidate | Leave | Ping
CLIENT_TYPES = ("join", "offer", "answer", "candidate", "leave", "ping")
_client_adapter: pydantic.TypeAdapter[ClientMessage] = pydantic.TypeAdapter(
    Annotated[ClientMessage, pydantic.Field(discriminator="type")]
)

# ---- server to client ----


class Joined(_Message):
    type: Literal["joined"] = "joined"
    self_: Participant = pydantic.Field(alias="self")
    participants: tuple[Participant, ...]
    protocol: int = PROTOCOL_VERSION


class ParticipantJoined(_Message):
    type: Literal["participant-joined"] = "participant-joined"
    participant: Participant


class ParticipantLeft(_Message):
    type: Literal["participant-left"] = "participant-left"
    participant_id: str


class RelayedOffer(_Message):
    type: Literal["offer"] = "offer"
    from_: str = pydantic.Field(alias="from")
    sdp: str


class RelayedAnswer(_Message):
    type: Literal["answer"] = "answer"
    from_: str = pydantic.Field(alias="from")
    sdp: str


class RelayedCandidate(_Message):
    type: Literal["candidate"] = "candidate"
    from_: str = pydantic.Field(alias="from")
    candidate: IceCandidate | None


class Pong(_Message):
    type: Literal["pong"] = "pong"
    id: int | None = None


class Error(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


ServerMessage = (
    Joined | ParticipantJoined | ParticipantLeft | RelayedOffer | RelayedAnswer | RelayedCandidate | Pong | Error
)


def parse(text: str | bytes, *, max_bytes: int) -> ClientMessage:
    """Parse one client message, or raise a SignalingError that says what is wrong with it."""
    size = len(text) if isinstance(text, bytes) else len(text.encode())
    if size > max_bytes:
        raise MessageTooLarge(f"Message is {size} bytes; the limit is {max_bytes}.")
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedMessage("Message is not valid JSON.") from None
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


def dump(message: ServerMessage) -> str:
    return message.model_dump_json(by_alias=True)
