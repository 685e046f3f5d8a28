"""Guest links: a signed, expiring link that lets one named guest (a patient) into one consultation's lobby.

The seam for patient invitations (issue 5 adds consent, the device check, revocation and the patient
record); here a link is a JWT for the ``telemed-guest`` audience and needs no account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .errors import Unauthenticated
from .tokens import AccessToken, KeyRing, TokenVerifier

GUEST_AUDIENCE = "telemed-guest"
GUEST_LINK_TTL = 24 * 3600


@dataclass(frozen=True)
class GuestPass:
    identity: str  # guest:<random>
    consultation_id: int
    name: str


def guest_link_token(keys: KeyRing, issuer: str, consultation_id: int, name: str, *, ttl: int = GUEST_LINK_TTL) -> str:
    return (
        AccessToken(issuer=issuer, audience=GUEST_AUDIENCE, ttl=ttl)
        .with_identity(f"guest:{secrets.token_urlsafe(9)}")
        .with_claims(consultation=consultation_id, name=name)
        .to_jwt(keys)
    )


def verify_guest_link(keys: KeyRing, issuer: str, token: str) -> GuestPass:
    claims = TokenVerifier(keys, issuer=issuer, audience=GUEST_AUDIENCE).verify(token)
    consultation, name = claims.get("consultation"), claims.get("name")
    if not isinstance(consultation, int) or not isinstance(name, str):
        raise Unauthenticated("The guest link is incomplete.", code="token-invalid")
    return GuestPass(identity=claims["sub"], consultation_id=consultation, name=name)
