"""Signaling errors: each has a wire code; the few that end a connection map to one close code here."""

from __future__ import annotations


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


class UnsupportedVersion(SignalingError):
    code = "unsupported-version"
    close_code = 4400


class RoomFull(SignalingError):
    code = "room-full"
    close_code = 4409


class SlowConsumer(SignalingError):
    """The client does not read its messages fast enough; keeping them would grow memory without bound."""

    code = "slow-consumer"
    close_code = 4429


# Close codes a client can meet (documented in PROTOCOL.md). 4000-4999 is the application's range.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_CODES = {
    "bad-request": 4400,
    "unauthenticated": 4401,
    "forbidden": 4403,
    "room-full": 4409,
    "slow-consumer": 4429,
}


def close_code_for(error: SignalingError) -> int | None:
    """The WebSocket close code that ends the connection for this error, or None to keep it open."""
    return error.close_code
