"""What a room token says: who it lets into which consultation's room, with which grants. The server signs
and verifies the tokens (``server/consultations/room_tokens.py``); signaling only reads the claims."""

from __future__ import annotations

from typing import NamedTuple

import pydantic

from .messages import DeviceCheck, Grants

ROOM_PREFIX = "consultation:"


def room_id_for(consultation: int) -> str:
    """The room of a consultation, as room tokens and room logs name it."""
    return f"{ROOM_PREFIX}{consultation}"


def consultation_of_room(room_id: str) -> int:
    """The consultation a room belongs to; ValueError for a name that is not a consultation's room."""
    number = room_id.removeprefix(ROOM_PREFIX)
    if number == room_id or not number.isdigit():
        raise ValueError(f"{room_id!r} is not a consultation's room")
    return int(number)


class Granted(NamedTuple):
    """What a clinician's account lets them do in a room now, and the account's count of changes to that
    (``revision``), which orders changes told to a room by different paths (a page, the sweep, a resume)."""

    grants: Grants
    revision: int | None


HOST = Grants(publish=True, subscribe=True, admit=True, record=True, moderate=True)
GUEST = Grants(publish=True, subscribe=True)


class RoomClaims(pydantic.BaseModel):
    """Who the token is for and where it lets them in. ``identity`` is ``user:<id>`` or ``guest:<id>``."""

    model_config = pydantic.ConfigDict(frozen=True)

    identity: str
    room: str
    name: str
    role: str
    user_id: int | None
    grants: Grants
    consent_id: int | None = None  # the recording consent on record when the token was issued
    # The consultation's patient (patient:<id>), who must consent to a recording whether or not they are
    # in the room themselves (often they sit beside their doctor), and their consent when this was issued.
    patient: str | None = None
    patient_consent_id: int | None = None
    device_check: DeviceCheck | None = None  # a patient's device check, for the doctor admitting them
    invitation: int | None = None  # the invitation link a patient came in by (revoking it expels them)
    # A clinician's session generation when the token was issued: the server's gate refuses the token once the
    # account has moved on (its password reset or changed since), as it refuses the session it came from.
    generation: int | None = None

    @property
    def is_guest(self) -> bool:
        return self.user_id is None
