"""The room page's words for the signaling server's ``error`` codes, which it sends in English only, and for
the HTTP API's error codes its script meets."""

from __future__ import annotations

from collections.abc import Callable

from server.errors import N_
from signaling.errors import ErrorCode

from .refusals import BY_CODE

# One text per case of signaling/errors.py's table (a test holds it to the table): the browser shows the
# text for the code it gets, and the server's English message only for a code this table does not know.
SIGNALING_ERRORS: dict[ErrorCode, str] = {
    ErrorCode.MALFORMED: N_("The page sent something the server could not read. Reload the page."),
    ErrorCode.UNKNOWN_TYPE: N_("This page is out of date. Reload it."),
    ErrorCode.TOO_LARGE: N_("That was too long to send."),
    ErrorCode.NOT_JOINED: N_("You are not in the room yet."),
    ErrorCode.ALREADY_JOINED: N_("You are already in the room."),
    ErrorCode.UNKNOWN_PARTICIPANT: N_("That participant is no longer in the room."),
    ErrorCode.NOT_ALLOWED: N_("You are not allowed to do that in this consultation."),
    # NO_SEAT and ROOM_FULL share their wire code, so they share their words too.
    ErrorCode.NO_SEAT: N_("The room is full: nobody more can join now."),
    ErrorCode.ROOM_FULL: N_("The room is full: nobody more can join now."),
    ErrorCode.SEAT_KEPT: N_("A seat is kept for someone who joined again and waits in the lobby: admit them or "
                            "turn them away first."),
    ErrorCode.RESUME_FAILED: N_("Your place in the room was not kept; joining again."),
    ErrorCode.RATE_LIMITED: N_("Too much at once: the last thing you sent was dropped."),
    ErrorCode.NOT_RELAYED: N_("The video was being set up the wrong way; it is set up again."),
    # (The page names who has not consented, as far as it knows: see consentMissing* in consultation.html.)
    ErrorCode.CONSENT_MISSING: N_("Recording needs everyone's consent first."),
    ErrorCode.CHAT_NOT_STORED: N_("Your last message could not be saved with the consultation, so nobody saw "
                                  "it. It is back in the box: send it again."),
    ErrorCode.NEGOTIATION_FAILED: N_("The media server could not set up the video."),
    ErrorCode.NOT_IN_RELAY: N_("The video connection to the media server was not ready yet."),
    ErrorCode.UNSUPPORTED_VERSION: N_("This page is out of date. Reload it."),
    ErrorCode.UNAUTHENTICATED: N_("Your pass into the room was not accepted. Reload the page."),
    ErrorCode.FORBIDDEN: N_("This pass is for another consultation."),
    ErrorCode.INVITATION_REVOKED: N_("Your invitation to this consultation was withdrawn."),
    ErrorCode.CONSENT_WITHDRAWN: N_("You withdrew your consent to the video consultation, so you have left it."),
    ErrorCode.NOT_A_PARTICIPANT: N_("You are no longer a participant of this consultation."),
    ErrorCode.SESSION_ENDED: N_("Your password was reset or changed, or an administrator ended your sessions, so "
                                "you left the consultation. Log in again to come back to it."),
    ErrorCode.TIMEOUT: N_("Nothing was heard from this page for too long."),
    ErrorCode.JOIN_TIMEOUT: N_("Joining took too long."),
    ErrorCode.REPLACED: N_("You joined this consultation from another tab or device, so this page left it."),
    ErrorCode.ABUSE: N_("Too much was sent too fast: the server closed the connection."),
    ErrorCode.SLOW_CONSUMER: N_("The connection was too slow to keep up: the server closed it."),
    ErrorCode.UNAVAILABLE: N_("This server cannot reach the others right now; connecting again."),
}


def signaling_errors(gettext: Callable[[str], str]) -> dict[str, str]:
    """Each wire code's text in the reader's language, as the room page's script looks them up."""
    return {kind.code: gettext(text) for kind, text in SIGNALING_ERRORS.items()}


def api_errors(gettext: Callable[[str], str]) -> dict[str, str]:
    """Each HTTP API error code's sentence in the reader's language (``web/refusals.BY_CODE``), for what the
    room's script shows when a request of its own is refused (an invitation, a consent)."""
    return {kind.code: gettext(text) for kind, text in BY_CODE.items()}
