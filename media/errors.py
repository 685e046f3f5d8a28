"""Media errors: one root, each with a wire code and a message safe to show the participant.

The ones a participant can meet reach them as signaling ``error`` messages, so their codes are rows of
signaling's one table (``ErrorCode`` in signaling/errors.py); none of them ends the signaling connection.
"""

from __future__ import annotations

from signaling.errors import ErrorCode


class MediaError(Exception):
    code = "media-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NegotiationFailed(MediaError):
    """An offer or ICE candidate the relay could not use."""

    code = ErrorCode.NEGOTIATION_FAILED.code


class NotInRelay(MediaError):
    code = ErrorCode.NOT_IN_RELAY.code


class RecordingError(MediaError):
    code = "recording-failed"


class TamperedRecording(RecordingError):
    """A recording file failed its authentication check: altered, truncated or the wrong key."""

    code = "recording-tampered"
