"""Access tokens as pure builders and verifiers: claims in, JWT out, no I/O."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

import jwt

from ..errors import N_, TokenExpired, Unauthenticated
from ..settings import Secret

ALGORITHM = "HS256"
API_AUDIENCE = "telemed-api"


def key_id(secret: Secret) -> str:
    """A stable, non-secret name for a key, carried in the token header as ``kid``."""
    return hashlib.sha256(secret.reveal().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class KeyRing:
    """The key that signs new tokens and the older ones still accepted while keys rotate."""

    current: Secret
    previous: tuple[Secret, ...] = ()

    @property
    def current_kid(self) -> str:
        return key_id(self.current)

    def lookup(self, kid: str) -> Secret | None:
        for secret in (self.current, *self.previous):
            if key_id(secret) == kid:
                return secret
        return None


@dataclass(frozen=True)
class AccessToken:
    """Builder for a signed access token: ``AccessToken(...).with_identity(...).to_jwt(keys)``."""

    issuer: str
    audience: str = API_AUDIENCE
    ttl: int = 3600
    subject: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    def with_identity(self, subject: str) -> AccessToken:
        return replace(self, subject=subject)

    def with_claims(self, **claims: Any) -> AccessToken:
        return replace(self, claims={**self.claims, **claims})

    def with_ttl(self, seconds: int) -> AccessToken:
        return replace(self, ttl=seconds)

    def to_jwt(self, keys: KeyRing, *, now: float | None = None) -> str:
        if not self.subject:
            raise ValueError("an access token needs an identity")
        issued = int(time.time() if now is None else now)
        payload = {
            **self.claims,
            "sub": self.subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(payload, keys.current.reveal(), algorithm=ALGORITHM, headers={"kid": keys.current_kid})


@dataclass(frozen=True)
class TokenVerifier:
    """Checks signature, algorithm, issuer, audience and expiry; returns the claims."""

    keys: KeyRing
    issuer: str
    audience: str = API_AUDIENCE
    leeway: int = 10

    def verify(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated(N_("The access token is malformed."), code="token-invalid") from None
        # Only our own algorithm: refuses "none" and key-confusion tricks before any key is looked up.
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(N_("The access token uses an algorithm this server does not accept."),
                                  code="token-invalid")
        secret = self.keys.lookup(str(header.get("kid", "")))
        if secret is None:
            raise Unauthenticated(N_("The access token was signed with an unknown key."), code="token-invalid")
        try:
            # Time claims are checked below against one clock reading, so tests can pass ``now``.
            claims = jwt.decode(
                token,
                secret.reveal(),
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "sub", "iss", "aud", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            raise Unauthenticated(N_("The access token is not valid for this server or this use."),
                                  code="token-invalid") from None
        clock = time.time() if now is None else now
        expires, not_before = claims["exp"], claims.get("nbf", 0)
        if not isinstance(expires, int | float) or not isinstance(not_before, int | float):
            raise Unauthenticated(N_("The access token's time claims are malformed."), code="token-invalid")
        if expires + self.leeway < clock:
            raise TokenExpired(N_("The access token has expired; please log in again."))
        if not_before - self.leeway > clock:
            raise Unauthenticated(N_("The access token is not valid yet."), code="token-invalid")
        return claims
