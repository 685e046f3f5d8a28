"""Room tokens: short-lived JWTs that let one user or guest into one consultation's room with some grants."""

from __future__ import annotations

from typing import Any

import pydantic

from signaling.grants import GUEST, HOST, Grants, RoomClaims

from ..errors import Unauthenticated
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..permissions import Principal, can_host

ROOM_AUDIENCE = "telemed-room"
ROOM_TOKEN_TTL = 10 * 60  # long enough to join or rejoin; the page asks for a fresh one each time


def clinician_grants(who: Principal) -> Grants:
    """What a participating clinician may do in the room: host (``permissions.can_host``), or take part as a
    guest does, admitted from the lobby."""
    return HOST if can_host(who) else GUEST


def room_token(keys: KeyRing, issuer: str, claims: RoomClaims, *, ttl: int = ROOM_TOKEN_TTL) -> str:
    return (
        AccessToken(issuer=issuer, audience=ROOM_AUDIENCE, ttl=ttl)
        .with_identity(claims.identity)
        .with_claims(room=claims.room, name=claims.name, role=claims.role, user_id=claims.user_id,
                     grants=claims.grants.model_dump(), consent_id=claims.consent_id, patient=claims.patient,
                     patient_consent_id=claims.patient_consent_id,
                     device_check=claims.device_check.model_dump() if claims.device_check else None,
                     invitation=claims.invitation, generation=claims.generation)
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
                          device_check=payload.get("device_check"), invitation=payload.get("invitation"),
                          generation=payload.get("generation"))
    except (KeyError, pydantic.ValidationError):
        raise Unauthenticated("The room token lacks the room, name or grants.", code="token-invalid") from None
