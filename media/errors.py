"""Media errors: one root, each with a wire code and a message safe to show the participant.

They reach clients as signaling ``error`` messages (see signaling/errors.py for the one mapping to
close codes); none of them ends the signaling connection.
"""

from __future__ import annotations


class MediaError(Exception):
    code = "media-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NegotiationFailed(MediaError):
    """An offer or ICE candidate the relay could not use."""

    code = "negotiation-failed"


class NotInRelay(MediaError):
    code = "not-in-relay"


class RecordingError(MediaError):
    code = "recording-failed"


class TamperedRecording(RecordingError):
    """A recording file failed its authentication check: altered, truncated or the wrong key."""

    code = "recording-tampered"
