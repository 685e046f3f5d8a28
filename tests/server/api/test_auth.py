"""Logging in and out through the JSON API, and every way a request is refused as unauthenticated."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, KEYS, SETTINGS
from server.audit import trail as audit
from server.identity.auth import COOKIE_NAME
from server.identity.tokens import AccessToken
from server.models import User

from ...conftest import login


async def test_login_returns_a_bearer_token_that_works(client: TestClient) -> None:
    """A good login answers a Bearer token with its lifetime and the user, without the password hash, and the token
    opens /api/me as that user."""
    response = await client.post("/api/auth/login", json={"username": "dr.wang", "password": "telemed-demo"})
    assert response.status == 200
    body = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == client.app[SETTINGS].access_token_ttl
    assert body["user"]["role"] == "specialist"
    assert "password_hash" not in body["user"]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (await me.json())["username"] == "dr.wang"


@pytest.mark.parametrize(("username", "password"), [("dr.wang", "wrong-password"), ("nobody", "telemed-demo")])
async def test_wrong_credentials_are_401_with_one_message(client: TestClient, username: str, password: str) -> None:
    """The same answer whether the user exists or not, so usernames cannot be probed."""
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status == 401
    assert await response.json() == {"error": {"code": "bad-credentials", "message": "Wrong username or password."}}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "bad-json"),
        ('{"username": "dr.wang"}', 422, "validation-failed"),
        ('{"username": "", "password": "x"}', 422, "validation-failed"),
        ('["dr.wang", "telemed-demo"]', 422, "validation-failed"),
    ],
)
async def test_malformed_login_says_what_is_wrong(client: TestClient, body: str, status: int, code: str) -> None:
    """Each row: a body that is not JSON answers 400 `bad-json`; a missing or empty field, or an array instead of an
    object, answers 422 `validation-failed` naming fields."""
    response = await client.post("/api/auth/login", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    if status == 422:
        assert error["fields"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "login-required"),
        ({"Authorization": "Basic ZHIud2FuZzp4"}, "token-invalid"),
        ({"Authorization": "Bearer "}, "token-invalid"),
        ({"Authorization": "Bearer not.a.jwt"}, "token-invalid"),
    ],
)
async def test_api_refuses_missing_or_malformed_tokens(client: TestClient, headers: dict, code: str) -> None:
    """Each row: no credentials answer 401 `login-required`; Basic credentials, an empty Bearer token or one that is not
    a JWT answer 401 `token-invalid`."""
    response = await client.get("/api/consultations", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == code


async def test_expired_token_is_401_with_a_message(client: TestClient) -> None:
    """A signed token past its lifetime answers 401 `token-expired` with a message telling the user to log in again."""
    settings = client.app[SETTINGS]
    token = AccessToken(issuer=settings.jwt_issuer, ttl=60).with_identity("1").to_jwt(
        client.app[KEYS], now=time.time() - 3600)
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert await response.json() == {
        "error": {"code": "token-expired", "message": "The access token has expired; please log in again."}}


async def test_logout_ends_the_token_before_it_expires(client: TestClient) -> None:
    """After logout the same token answers 401 `token-revoked` though it has not expired, while a new login still
    works."""
    headers = await login(client, "dr.li")
    assert (await client.post("/api/auth/logout", headers=headers)).status == 200
    response = await client.get("/api/me", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "token-revoked"
    other = await login(client, "dr.li")  # a new login still works
    assert (await client.get("/api/me", headers=other)).status == 200


async def test_disabled_account_loses_access_at_once(client: TestClient) -> None:
    """An account disabled in the database loses its open session on the next request (401 `account-disabled`) and
    cannot log in again."""
    headers = await login(client, "dr.chen")
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == "dr.chen"))).one()
        user.is_active = False
        session.add(user)
        await session.commit()
    response = await client.get("/api/me", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "account-disabled"
    login_again = await client.post("/api/auth/login", json={"username": "dr.chen", "password": "telemed-demo"})
    assert login_again.status == 401


async def test_session_cookie_authenticates_api_and_refuses_cross_site_writes(client: TestClient) -> None:
    """The page login sets an HttpOnly, SameSite=Lax cookie that authenticates the API; a write from another site's
    origin with that cookie is refused 403 `cross-site` and changes nothing (the session is not logged out)."""
    form = await client.post("/login", data={"username": "dr.li", "password": "telemed-demo", "next": "/"},
                             allow_redirects=False)
    assert form.status == 303
    cookie = form.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert (await client.get("/api/me")).status == 200
    evil = await client.post("/api/auth/logout", headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    assert (await evil.json())["error"]["code"] == "cross-site"
    assert (await client.get("/api/me")).status == 200, "the refused request changed nothing"


async def test_unknown_api_route_is_json_404(client: TestClient) -> None:
    """An unknown path under /api answers 404 as JSON (`not-found`), not an HTML page, so API clients can read it."""
    response = await client.get("/api/nothing-here", headers=await login(client, "dr.li"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not-found"


async def test_password_guessing_is_slowed_to_429(client: TestClient) -> None:
    """After five wrong passwords even the right one waits; other accounts are unaffected."""
    for _ in range(5):
        wrong = await client.post("/api/auth/login", json={"username": "dr.wang", "password": "guess-guess"})
        assert wrong.status == 401
    blocked = await client.post("/api/auth/login", json={"username": "dr.wang", "password": "telemed-demo"})
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) > 0
    body = await blocked.json()
    assert body["error"]["code"] == "too-many-requests" and body["error"]["retry_after"] > 0
    assert (await client.post("/api/auth/login", json={"username": "dr.li", "password": "telemed-demo"})).status == 200
    form = await client.post("/login", data={"username": "dr.wang", "password": "telemed-demo"},
                             headers={"Accept-Language": "en"}, allow_redirects=False)
    assert form.status == 429
    assert "Too many failed logins" in await form.text()


async def test_logins_and_failed_logins_are_audited(client: TestClient) -> None:
    """A failed login is audited as anonymous naming the username, and a good one as the user's; the wrong password
    itself is written nowhere in the trail."""
    bad = await client.post("/api/auth/login", json={"username": "dr.li", "password": "wrong password"})
    assert bad.status == 401
    await login(client, "dr.li")
    entries = [(e.actor, e.action, e.subject) for e in await audit.trail(client.app[DATABASE])]
    assert entries[-2] == ("anonymous", "auth.login_failed", "username:dr.li")
    assert entries[-1][1] == "auth.login" and entries[-1][0].startswith("user:")
    assert all("wrong password" not in e.detail for e in await audit.trail(client.app[DATABASE]))
