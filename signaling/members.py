"""Who is in a room: a member's seat or lobby place, the connection it is on, and what it may do."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .events import Where
from .grants import Grants
from .messages import Participant


class Status(enum.StrEnum):
    WAITING = "waiting"  # in the lobby
    PRESENT = "present"  # has a seat
    RECONNECTING = "reconnecting"  # lost its socket; keeps its seat or lobby place for the grace period


@dataclass
class Member:
    participant: Participant
    grants: Grants
    identity: str
    at: Where
    resume_hash: str
    status: Status
    seated: bool  # holds a seat in the room (not the lobby), whether or not its socket is up
    consent_id: int | None = None  # the recording consent on record, if given
    invitation: int | None = None  # the invitation link a patient came in by
    epoch: int = 0  # counts disconnections, so a grace timer from an earlier one is ignored
    # The first chat line id they may see; None for those who see it all. A guest (a patient) sees the chat
    # from their first seating on, not what clinicians said before, and so does a clinician without ``history``.
    chat_from: int | None = None
    # Shown the chat said before they came (Gate.shows_history): not a clinician of another hospital than the
    # patient's while the patient's records are withheld from it (the chat is about the patient, and names them).
    history: bool = True
    # Waits in the lobby with a seat kept for them: their seat's holder joined again (a reload, another tab)
    # and came back through the lobby. Nobody else takes that seat until they are seated, denied or leave.
    keeps_seat: bool = False
    grants_revision: int | None = None  # which of the account's changes ``grants`` are (None: not known)

    @property
    def id(self) -> str:
        return self.participant.id
