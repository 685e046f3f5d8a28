"""Room tokens: short-lived JWTs that let one user or guest into one consultation's room with some grants."""

from __future__ import annotations

from typing import Any

import pydantic

from server.errors import Unauthenticated
from server.tokens import AccessToken, KeyRing, TokenVerifier

from .messages import DeviceCheck

ROOM_AUDIENCE = "telemed-room"
ROOM_PREFIX = "consultation:"
ROOM_TOKEN_TTL = 10 * 60  # long enough to join or rejoin; the page asks for a fresh one each time


def room_id_for(consultation: int) -> str:
    """The room of a consultation, as room tokens and room logs name it."""
    return f"{ROOM_PREFIX}{consultation}"


def consultation_of_room(room_id: str) -> int:
    """The consultation a room belongs to; ValueError for a name that is not a consultation's room."""
    number = room_id.removeprefix(ROOM_PREFIX)
    if number == room_id or not number.isdigit():
        raise ValueError(f"{room_id!r} is not a consultation's room")
    return int(number)


class Grants(pydantic.BaseModel):
    """What a participant may do in the room, in the manner of LiveKit's video grants."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    publish: bool = True  # send camera, microphone, screen
    subscribe: bool = True  # receive the others' media
    admit: bool = False  # enter without waiting; let others in from the lobby, or turn them away
    record: bool = False  # start and stop recording (media relay, issue 4)
    moderate: bool = False  # remove participants


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

    @property
    def is_guest(self) -> bool:
        return self.user_id is None


def room_token(keys: KeyRing, issuer: str, claims: RoomClaims, *, ttl: int = ROOM_TOKEN_TTL) -> str:
    return (
        AccessToken(issuer=issuer, audience=ROOM_AUDIENCE, ttl=ttl)
        .with_identity(claims.identity)
        .with_claims(room=claims.room, name=claims.name, role=claims.role, user_id=claims.user_id,
                     grants=claims.grants.model_dump(), consent_id=claims.consent_id, patient=claims.patient,
                     patient_consent_id=claims.patient_consent_id,
                     device_check=claims.device_check.model_dump() if claims.device_check else None,
                     invitation=claims.invitation)
        .to_jwt(keys)
    )


def verify_room_token(keys: KeyRing, issuer: str, token: str) -> RoomClaims:
    """The token's claims; raises Unauthenticated (expired, forged, other audience) like any token."""
    payload: dict[str, Any] = TokenVerifier(keys, issuer=issuer, audience=ROOM_AUDIENCE).verify(token)
    try:
        return RoomClaims(identity=payload["sub"], room=payload["room"], name=payload["name"], role=payload["role"],
                          user_id=payload.get("user_id"), grants=Grants.model_validate(payload["grants"]),
                          consent_id=payload.get("consent_id"), patient=payload.get("patient"),
                          patient_consent_id=payload.get("patient_consent_id"),
                          device_check=payload.get("device_check"), invitation=payload.get("invitation"))
    except (KeyError, pydantic.ValidationError):
        raise Unauthenticated("The room token lacks the room, name or grants.", code="token-invalid") from None
