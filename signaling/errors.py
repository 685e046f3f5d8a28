"""Signaling errors: each has a wire code; the ones that end a connection carry its close code. One table."""

from __future__ import annotations

# Close codes a client can meet (documented in PROTOCOL.md). 4000-4999 is the application's range.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the node is shutting down; reconnect (to another node) and resume
CLOSE_TOO_BIG = 1009
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403  # token for another room, turned away from the lobby, removed
CLOSE_TIMEOUT = 4408  # no sign of life from the client within the heartbeat timeout
CLOSE_ROOM_FULL = 4409
CLOSE_REPLACED = 4410  # the same participant resumed, or the same identity joined, on a newer connection
CLOSE_ABUSE = 4429  # kept sending faster than allowed, or stopped reading
CLOSE_UNAVAILABLE = 4503  # this node cannot reach the bus between nodes; try again (another node)


class SignalingError(Exception):
    """An error answered with an ``error`` message; the connection stays open unless ``close_code`` is set."""

    code = "error"
    close_code: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedMessage(SignalingError):
    code = "malformed"


class UnknownMessageType(SignalingError):
    code = "unknown-type"


class MessageTooLarge(SignalingError):
    code = "too-large"


class NotJoined(SignalingError):
    code = "not-joined"


class AlreadyJoined(SignalingError):
    code = "already-joined"


class UnknownParticipant(SignalingError):
    code = "unknown-participant"


class NotAllowed(SignalingError):
    """The participant's grants do not cover this."""

    code = "not-allowed"


class ConsentMissing(SignalingError):
    """Recording needs the recording consent of everyone in the room."""

    code = "consent-missing"


class NotRelayed(SignalingError):
    """A message for the media relay while the room is peer to peer."""

    code = "not-relayed"


class ResumeFailed(SignalingError):
    """The seat is gone or the resume token is wrong; the client should join afresh on the same socket."""

    code = "resume-failed"


class RateLimited(SignalingError):
    """One message over the rate: dropped, answered, connection kept."""

    code = "rate-limited"


class UnsupportedVersion(SignalingError):
    code = "unsupported-version"
    close_code = CLOSE_BAD_REQUEST


class InvalidToken(SignalingError):
    """The room token is missing, forged or expired."""

    code = "unauthenticated"
    close_code = CLOSE_UNAUTHENTICATED


class WrongRoom(SignalingError):
    code = "forbidden"
    close_code = CLOSE_FORBIDDEN


class InvitationRevoked(SignalingError):
    """The invitation a patient's room token names was revoked after the token was issued."""

    code = "invitation-revoked"
    close_code = CLOSE_FORBIDDEN


class ConsentWithdrawn(SignalingError):
    """The patient withdrew their consent to the video visit after their room token was issued."""

    code = "consent-withdrawn"
    close_code = CLOSE_FORBIDDEN


class RoomFull(SignalingError):
    code = "room-full"
    close_code = CLOSE_ROOM_FULL


class NoSeat(SignalingError):
    """Admitting someone into a full room: refused, and the host's connection stays."""

    code = "room-full"


class HeartbeatTimeout(SignalingError):
    code = "timeout"
    close_code = CLOSE_TIMEOUT


class JoinTimeout(SignalingError):
    """The socket sent no valid join within the join deadline: a seatless socket holds nothing open."""

    code = "join-timeout"
    close_code = CLOSE_TIMEOUT


class Replaced(SignalingError):
    """The same identity joined on a newer socket, which took this one's seat or lobby place."""

    code = "replaced"
    close_code = CLOSE_REPLACED


class Abuse(SignalingError):
    """Persistent flooding: the connection is closed."""

    code = "abuse"
    close_code = CLOSE_ABUSE


class SlowConsumer(SignalingError):
    """The client does not read its messages fast enough; keeping them would grow memory without bound."""

    code = "slow-consumer"
    close_code = CLOSE_ABUSE


class BusUnavailable(SignalingError):
    """The node lost its connection to the bus between nodes: joins are refused until it is back."""

    code = "unavailable"
    close_code = CLOSE_UNAVAILABLE


def close_code_for(error: SignalingError) -> int | None:
    """The WebSocket close code that ends the connection for this error, or None to keep it open."""
    return error.close_code
