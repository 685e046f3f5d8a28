"""Authentication: who is calling (bearer token or session cookie), logging in and logging out."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlmodel import delete, select

from ..appkeys import DATABASE, KEYS, LOGIN_THROTTLE, PASSWORDS, SETTINGS
from ..audit import trail as audit
from ..client_address import client_address
from ..errors import N_, TooManyRequests, Unauthenticated
from ..models import RevokedToken, User
from ..permissions import Principal, principal_of
from .passwords import hash_password
from .tokens import AccessToken, TokenVerifier

COOKIE_NAME = "telemed_session"
# The account's session generation when the token was issued: disabling the account or resetting its password
# moves the account on, which ends every token of an earlier generation (absent in older tokens: 0).
GENERATION_CLAIM = "gen"
PUBLIC_ATTRIBUTE = "telemed_public"
BEFORE_CHANGE_ATTRIBUTE = "telemed_before_password_change"

# Compared against when the username is unknown, so a login takes as long whether or not the user exists.
_DUMMY_HASH = hash_password("not-a-real-password")


@dataclass(frozen=True)
class Caller:
    """An authenticated request's user and the claims of the token it came with."""

    user: User
    claims: dict[str, Any]

    @property
    def principal(self) -> Principal:
        return principal_of(self.user)


CALLER = web.RequestKey("caller", Caller)

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[web.StreamResponse]])


def public(handler: Handler) -> Handler:
    """Mark a route as open to callers who have not logged in; every other route needs a login."""
    setattr(handler, PUBLIC_ATTRIBUTE, True)
    return handler


def before_password_change(handler: Handler) -> Handler:
    """Mark a route as open to a user who must still replace a temporary password (changing it, logging out,
    who am I); every other route leads them to the change first."""
    setattr(handler, BEFORE_CHANGE_ATTRIBUTE, True)
    return handler


def waits_for_password_change(request: web.Request, who: Caller) -> bool:
    """Whether this request must wait until the caller has replaced their temporary password."""
    return who.user.must_change_password and not getattr(request.match_info.handler,
                                                          BEFORE_CHANGE_ATTRIBUTE, False)


def is_public(request: web.Request) -> bool:
    if request.match_info.http_exception is not None:
        return True  # unknown route or method: let it answer 404/405
    if isinstance(request.match_info.route.resource, web.StaticResource):
        return True
    return getattr(request.match_info.handler, PUBLIC_ATTRIBUTE, False)


def token_from(request: web.Request) -> tuple[str | None, str]:
    """The request's token and where it came from: ``bearer`` or ``cookie``."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("The Authorization header must be 'Bearer <token>'.", code="token-invalid")
        return token.strip(), "bearer"
    return request.cookies.get(COOKIE_NAME), "cookie"


async def authenticate(request: web.Request) -> Caller:
    """Verify the request's token and load its user, or raise Unauthenticated with the reason."""
    token, _ = token_from(request)
    if not token:
        raise Unauthenticated(N_("Please log in."), code="login-required")
    settings = request.app[SETTINGS]
    claims = TokenVerifier(request.app[KEYS], issuer=settings.jwt_issuer).verify(token)
    async with request.app[DATABASE].session() as session:
        if await session.get(RevokedToken, claims["jti"]) is not None:
            raise Unauthenticated(N_("This session has been logged out; please log in again."), code="token-revoked")
        try:
            user_id = int(claims["sub"])
        except ValueError:
            raise Unauthenticated("The access token names no user.", code="token-invalid") from None
        user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(N_("This account no longer exists or has been disabled."), code="account-disabled")
    if claims.get(GENERATION_CLAIM, 0) != user.session_generation:
        raise Unauthenticated(N_("This session has ended (the password was changed or reset, or an administrator "
                                 "ended it); please log in again."),
                              code="session-ended")
    return Caller(user=user, claims=claims)


def caller(request: web.Request) -> Caller:
    """The authenticated caller of a non-public route (set by the auth middleware)."""
    return request[CALLER]


async def check_credentials(request: web.Request, username: str, password: str) -> User:
    """The active user with these credentials, or Unauthenticated (the same message whichever part was wrong).

    Repeated failures from one client address answer TooManyRequests, before the password is even checked.
    The password is checked off the event loop, which relays media and signaling meanwhile.
    """
    throttle, address = request.app[LOGIN_THROTTLE], client_address(request)
    if (wait := await throttle.retry_after(address, username)) is not None:
        raise TooManyRequests(N_("Too many failed logins. Please wait a few minutes and try again."),
                              retry_after=math.ceil(wait))
    async with request.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).first()
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not await request.app[PASSWORDS].verify(password, stored) or user is None or not user.is_active:
        await throttle.failed(address, username)
        await audit.record(request.app[DATABASE], actor="anonymous", action="auth.login_failed",
                           subject=f"username:{username[:64]}", detail={"address": address})
        raise Unauthenticated(N_("Wrong username or password."), code="bad-credentials")
    await throttle.succeeded(address, username)
    await audit.record(request.app[DATABASE], actor=f"user:{user.id}", action="auth.login",
                       detail={"address": address})
    return user


def issue_token(request: web.Request, user: User) -> str:
    settings = request.app[SETTINGS]
    return (
        AccessToken(issuer=settings.jwt_issuer, ttl=settings.access_token_ttl)
        .with_identity(str(user.id))
        .with_claims(role=user.role.value, hospital=user.hospital_id, name=user.display_name,
                     **{GENERATION_CLAIM: user.session_generation})
        .to_jwt(request.app[KEYS])
    )


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=settings.access_token_ttl,
        httponly=True,  # page scripts never need the token; keep it out of reach of injected script
        secure=settings.cookie_secure,
        samesite="Lax",  # not sent on cross-site POSTs, which is most of CSRF
        path="/",
    )


async def revoke(request: web.Request, claims: dict[str, Any]) -> None:
    """End this token before its expiry; prune revocations of tokens that have expired anyway."""
    now = datetime.now(UTC)
    async with request.app[DATABASE].session() as session:
        await session.exec(delete(RevokedToken).where(RevokedToken.expires_at < now))  # type: ignore[call-overload]
        if await session.get(RevokedToken, claims["jti"]) is None:
            session.add(RevokedToken(jti=claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC)))
        await session.commit()
