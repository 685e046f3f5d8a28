"""Signaling errors and close codes: one table of each, which PROTOCOL.md documents and the browser imports.

``CloseCode`` lists every WebSocket close code a client can meet; ``ErrorCode`` lists every ``error`` a
client can get, one row per case, with the close code that ends the connection, if any. The error classes
take their wire code and close code from their row; the browser gets both tables as an ES module that the
server renders from them (web/codes.py), and a test holds PROTOCOL.md's tables to them.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class CloseCode(enum.IntEnum):
    """A WebSocket close code, what it means, and whether the browser client gives up after it (``final``)."""

    meaning: str
    final: bool

    def __new__(cls, code: int, meaning: str, final: bool) -> CloseCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.final = final
        return member

    # 1000-1999 are the WebSocket protocol's own; 4000-4999 the application's.
    NORMAL = 1000, "after `leave`", True
    GOING_AWAY = 1001, "the node is shutting down; reconnect (to another node) and resume", False
    TOO_BIG = 1009, "a frame over four times the message limit, cut off by the WebSocket layer", False
    DROPPED = (4000, "never sent by the server: the browser client closes its own socket with it to act out a "
               "network failure (tests, diagnosis)", False)
    BAD_REQUEST = 4400, "`join` with another protocol version", True
    UNAUTHENTICATED = 4401, "the room token is forged, expired, or not a room token", True
    FORBIDDEN = (4403, "the room token is for another consultation; turned away from the lobby (`denied`), "
                 "removed (`removed`), the invitation revoked, the video consent withdrawn, no longer a "
                 "participant, or the account's session ended", True)
    TIMEOUT = 4408, "no sign of life within the heartbeat timeout, or no valid `join` in time", False
    ROOM_FULL = 4409, "joining a full room or a full lobby", True
    REPLACED = 4410, "the same participant resumed, or the same identity joined, on a newer socket", True
    ABUSE = 4429, "kept flooding after being rate-limited, or stopped reading", True
    UNAVAILABLE = 4503, "this node cannot reach the bus between nodes (Redis); try again (another node)", False


class ErrorCode(enum.Enum):
    """One case of the ``error`` message: its wire ``code``, the ``close`` code that follows it (None: the
    connection stays open) and ``when`` it is sent. A wire code may have two cases (``room-full``)."""

    code: str
    close: CloseCode | None
    when: str

    def __init__(self, code: str, close: CloseCode | None, when: str) -> None:
        self.code = code
        self.close = close
        self.when = when

    MALFORMED = ("malformed", None, "not JSON, not an object, no `type`, a number over 32 characters, nesting "
                 "over 32 levels, or a field missing, of the wrong type, or unknown (the message names it)")
    UNKNOWN_TYPE = "unknown-type", None, "a `type` this server does not know"
    TOO_LARGE = "too-large", None, "larger than the message limit"
    NOT_JOINED = "not-joined", None, "before `join`, or from the lobby"
    ALREADY_JOINED = "already-joined", None, "a second `join`"
    UNKNOWN_PARTICIPANT = "unknown-participant", None, "`to` or `participant_id` names nobody it could"
    NOT_ALLOWED = "not-allowed", None, "beyond one's grants"
    NO_SEAT = "room-full", None, "admitting into a full room (to the host)"
    SEAT_KEPT = ("seat-kept", None, "admitting someone else into the seat kept for one who joined again from it "
                 "and waits in the lobby (to the host): admit or deny them first")
    RESUME_FAILED = "resume-failed", None, "the seat is gone or the secret is wrong"
    RATE_LIMITED = "rate-limited", None, "over the message rate; the message was dropped"
    NOT_RELAYED = "not-relayed", None, 'an offer or candidate `to: "relay"` while the room is `p2p`'
    CONSENT_MISSING = "consent-missing", None, "`recording` `on` before everyone present has consented"
    CHAT_NOT_STORED = ("chat-not-stored", None, "a `chat` line the server could not keep with the consultation "
                       "(its database is unreachable): nobody was shown it; send it again")
    # The media relay's (media/errors.py): it answers through the room, as a participant would.
    NEGOTIATION_FAILED = ("negotiation-failed", None, "the relay could not use an offer (not SDP with audio or "
                          "video, or without the room's codec) or a candidate")
    NOT_IN_RELAY = "not-in-relay", None, "a candidate for the relay (`null` too) before an offer"
    UNSUPPORTED_VERSION = "unsupported-version", CloseCode.BAD_REQUEST, "`join` with another protocol"
    UNAUTHENTICATED = ("unauthenticated", CloseCode.UNAUTHENTICATED,
                       "the room token is forged, expired, or not a room token")
    FORBIDDEN = "forbidden", CloseCode.FORBIDDEN, "the room token is for another consultation"
    INVITATION_REVOKED = ("invitation-revoked", CloseCode.FORBIDDEN,
                          "`join` by a patient whose invitation was revoked after their room token was issued")
    CONSENT_WITHDRAWN = ("consent-withdrawn", CloseCode.FORBIDDEN,
                         "`join` by a patient who withdrew their video consent after their room token was issued")
    NOT_A_PARTICIPANT = ("not-a-participant", CloseCode.FORBIDDEN,
                         "`join` by a clinician taken off the consultation (an appointment moved to another "
                         "specialist) or whose account was disabled after their room token was issued")
    SESSION_ENDED = ("session-ended", CloseCode.FORBIDDEN,
                     "`join` with a room token issued before the clinician's password was reset or changed, or "
                     "their sessions otherwise ended, or while a password an administrator set stands")
    ROOM_FULL = "room-full", CloseCode.ROOM_FULL, "joining a full room or a full lobby"
    TIMEOUT = "timeout", CloseCode.TIMEOUT, "no sign of life within the heartbeat timeout"
    JOIN_TIMEOUT = "join-timeout", CloseCode.TIMEOUT, "no valid `join` within 10 s of opening the socket"
    REPLACED = "replaced", CloseCode.REPLACED, "the same identity joined on a newer socket"
    ABUSE = "abuse", CloseCode.ABUSE, "kept flooding after being rate-limited"
    SLOW_CONSUMER = "slow-consumer", CloseCode.ABUSE, "more than 256 messages wait for a client that does not read"
    UNAVAILABLE = ("unavailable", CloseCode.UNAVAILABLE,
                   "this node cannot reach the bus between nodes (Redis); try again")


class SignalingError(Exception):
    """An error answered with an ``error`` message; the connection stays open unless ``close_code`` is set.

    Each subclass names its row of the table (``kind``), and takes its ``code`` and ``close_code`` from it.
    """

    kind: ClassVar[ErrorCode]
    code: ClassVar[str]
    close_code: ClassVar[CloseCode | None]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must name its row of the table: kind = ErrorCode.…")
        cls.code = cls.kind.code
        cls.close_code = cls.kind.close

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedMessage(SignalingError):
    kind = ErrorCode.MALFORMED


class UnknownMessageType(SignalingError):
    kind = ErrorCode.UNKNOWN_TYPE


class MessageTooLarge(SignalingError):
    kind = ErrorCode.TOO_LARGE


class NotJoined(SignalingError):
    kind = ErrorCode.NOT_JOINED


class AlreadyJoined(SignalingError):
    kind = ErrorCode.ALREADY_JOINED


class UnknownParticipant(SignalingError):
    kind = ErrorCode.UNKNOWN_PARTICIPANT


class NotAllowed(SignalingError):
    """The participant's grants do not cover this."""

    kind = ErrorCode.NOT_ALLOWED


class ConsentMissing(SignalingError):
    """Recording needs the recording consent of everyone in the room."""

    kind = ErrorCode.CONSENT_MISSING


class ChatNotStored(SignalingError):
    """A chat line that could not be written to the consultation's record; it was shown to nobody."""

    kind = ErrorCode.CHAT_NOT_STORED


class NotRelayed(SignalingError):
    """A message for the media relay while the room is peer to peer."""

    kind = ErrorCode.NOT_RELAYED


class ResumeFailed(SignalingError):
    """The seat is gone or the resume token is wrong; the client should join afresh on the same socket."""

    kind = ErrorCode.RESUME_FAILED


class RateLimited(SignalingError):
    """One message over the rate: dropped, answered, connection kept."""

    kind = ErrorCode.RATE_LIMITED


class UnsupportedVersion(SignalingError):
    kind = ErrorCode.UNSUPPORTED_VERSION


class InvalidToken(SignalingError):
    """The room token is missing, forged or expired."""

    kind = ErrorCode.UNAUTHENTICATED


class WrongRoom(SignalingError):
    kind = ErrorCode.FORBIDDEN


class InvitationRevoked(SignalingError):
    """The invitation a patient's room token names was revoked after the token was issued."""

    kind = ErrorCode.INVITATION_REVOKED


class ConsentWithdrawn(SignalingError):
    """The patient withdrew their consent to the video visit after their room token was issued."""

    kind = ErrorCode.CONSENT_WITHDRAWN


class NoLongerParticipant(SignalingError):
    """The clinician was taken off the consultation, or their account disabled, after their room token was
    issued."""

    kind = ErrorCode.NOT_A_PARTICIPANT


class SessionEnded(SignalingError):
    """The session the clinician's room token came from has ended since it was issued (their password was reset
    or changed, or an administrator ended their sessions), or they are on a password an administrator set."""

    kind = ErrorCode.SESSION_ENDED


# Why the server's gate may bar someone it let in before (``Gate.check``): each sends them out of the room.
BARRED = (InvitationRevoked, ConsentWithdrawn, NoLongerParticipant, SessionEnded)


class RoomFull(SignalingError):
    kind = ErrorCode.ROOM_FULL


class NoSeat(SignalingError):
    """Admitting someone into a full room: refused, and the host's connection stays."""

    kind = ErrorCode.NO_SEAT


class SeatKept(SignalingError):
    """Admitting someone into the seat kept for one who joined again (a reload): refused, the connection stays."""

    kind = ErrorCode.SEAT_KEPT


class HeartbeatTimeout(SignalingError):
    kind = ErrorCode.TIMEOUT


class JoinTimeout(SignalingError):
    """The socket sent no valid join within the join deadline: a seatless socket holds nothing open."""

    kind = ErrorCode.JOIN_TIMEOUT


class Replaced(SignalingError):
    """The same identity joined on a newer socket, which took this one's seat or lobby place."""

    kind = ErrorCode.REPLACED


class Abuse(SignalingError):
    """Persistent flooding: the connection is closed."""

    kind = ErrorCode.ABUSE


class SlowConsumer(SignalingError):
    """The client does not read its messages fast enough; keeping them would grow memory without bound."""

    kind = ErrorCode.SLOW_CONSUMER


class BusUnavailable(SignalingError):
    """The node lost its connection to the bus between nodes: joins are refused until it is back."""

    kind = ErrorCode.UNAVAILABLE


def close_code_for(error: SignalingError) -> CloseCode | None:
    """The WebSocket close code that ends the connection for this error, or None to keep it open."""
    return error.close_code
