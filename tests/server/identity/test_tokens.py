"""Access tokens: what verifies, and every way a forged or stale token is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from server.errors import TokenExpired, Unauthenticated
from server.identity.tokens import API_AUDIENCE, AccessToken, KeyRing, TokenVerifier, key_id
from server.settings import Secret

KEY = Secret("k" * 64)
OTHER_KEY = Secret("o" * 40)
KEYS = KeyRing(current=KEY)
ISSUER = "telemed-test"


VALID_CLAIMS = {"sub": "7", "iss": ISSUER, "aud": API_AUDIENCE, "exp": 9_999_999_999, "iat": 0, "jti": "x"}


def make(ttl: int = 60, keys: KeyRing = KEYS, audience: str = API_AUDIENCE, issuer: str = ISSUER,
         now: float | None = None) -> str:
    return AccessToken(issuer=issuer, audience=audience, ttl=ttl).with_identity("7").with_claims(
        role="specialist").to_jwt(keys, now=now)


def verifier(keys: KeyRing = KEYS) -> TokenVerifier:
    return TokenVerifier(keys, issuer=ISSUER)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_round_trip_carries_identity_claims_and_kid() -> None:
    """A token made and then verified gives back its subject, role and audience, lives for its TTL, and names the
    signing key's id in its header."""
    token = make()
    claims = verifier().verify(token)
    assert claims["sub"] == "7"
    assert claims["role"] == "specialist"
    assert claims["aud"] == API_AUDIENCE
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["kid"] == key_id(KEY)


def test_each_token_has_its_own_id() -> None:
    """Two tokens made alike carry different ids (jti), so one can be told from the other."""
    assert verifier().verify(make())["jti"] != verifier().verify(make())["jti"]


def test_expired_token_is_refused_with_its_own_code() -> None:
    """An expired token is refused with 401 and its own code, token-expired, so a client can tell an expired session
    from a forged token."""
    token = make(ttl=60, now=time.time() - 3600)
    with pytest.raises(TokenExpired) as caught:
        verifier().verify(token)
    assert caught.value.status == 401
    assert caught.value.code == "token-expired"


def test_expiry_allows_small_clock_skew_only() -> None:
    """A token still verifies 5 s after it expired (within the leeway for clock skew) but is refused as expired 15 s
    after."""
    token = make(ttl=60, now=1_000_000)
    assert verifier().verify(token, now=1_000_000 + 65)["sub"] == "7"  # within the 10 s leeway
    with pytest.raises(TokenExpired):
        verifier().verify(token, now=1_000_000 + 75)


def test_token_from_the_future_is_refused() -> None:
    """A token issued an hour in the future is refused as not valid yet."""
    token = make(now=time.time() + 3600)
    with pytest.raises(Unauthenticated, match="not valid yet"):
        verifier().verify(token)


@pytest.mark.parametrize(
    ("description", "token_factory"),
    [
        ("signed with another key under our kid",
         lambda: jwt.encode({"sub": "7"}, OTHER_KEY.reveal(), algorithm="HS256", headers={"kid": key_id(KEY)})),
        ("signed with an unknown key", lambda: make(keys=KeyRing(current=OTHER_KEY))),
        ("wrong audience", lambda: make(audience="telemed-room")),
        ("wrong issuer", lambda: make(issuer="someone-else")),
        ("alg none", lambda: f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': key_id(KEY)})}.{_b64(VALID_CLAIMS)}."),
        ("HS512 with the right key", lambda: jwt.encode(
            {"sub": "7", "iss": ISSUER, "aud": API_AUDIENCE, "exp": int(time.time()) + 60,
             "iat": int(time.time()), "jti": "x"}, KEY.reveal(), algorithm="HS512", headers={"kid": key_id(KEY)})),
        ("missing jti", lambda: jwt.encode(
            {"sub": "7", "iss": ISSUER, "aud": API_AUDIENCE, "exp": int(time.time()) + 60,
             "iat": int(time.time())}, KEY.reveal(), algorithm="HS256", headers={"kid": key_id(KEY)})),
        ("not a JWT at all", lambda: "not-a-token"),
        ("payload altered", lambda: _alter_payload(make())),
    ],
)
def test_forged_tokens_are_refused(description: str, token_factory) -> None:  # type: ignore[no-untyped-def]
    """Each row: a forged or malformed token (another key under our kid, an unknown key, the wrong audience or
    issuer, alg none, HS512, no jti, not a JWT, an altered payload) is refused as token-invalid."""
    with pytest.raises(Unauthenticated) as caught:
        verifier().verify(token_factory())
    assert caught.value.code == "token-invalid", description


def _alter_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    return f"{header}.{_b64(claims)}.{signature}"


def test_rotation_accepts_previous_key_and_signs_with_the_new_one() -> None:
    """After a key rotation, tokens signed with the old key keep working until they expire."""
    old_token = make(keys=KeyRing(current=OTHER_KEY))
    rotated = KeyRing(current=KEY, previous=(OTHER_KEY,))
    assert verifier(rotated).verify(old_token)["sub"] == "7"
    assert jwt.get_unverified_header(make(keys=rotated))["kid"] == key_id(KEY)


def test_a_token_needs_an_identity() -> None:
    """A token without a subject cannot be signed: making one raises ValueError."""
    with pytest.raises(ValueError):
        AccessToken(issuer=ISSUER).to_jwt(KEYS)
