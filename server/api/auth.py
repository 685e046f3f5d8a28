"""REST: JSON login, logout, and who am I."""

from __future__ import annotations

from typing import Literal

import pydantic
from aiohttp import web

from ..appkeys import DATABASE, PASSWORDS, ROOMS, SETTINGS
from ..http import json_response, parse_body
from ..identity import accounts
from ..identity.accounts import PasswordChange
from ..identity.auth import (
    COOKIE_NAME,
    before_password_change,
    caller,
    check_credentials,
    issue_token,
    public,
    revoke,
    set_session_cookie,
)
from ..models import Role, User
from ..openapi import accepts, answers
from ..outputs import Out

routes = web.RouteTableDef()


class LoginRequest(pydantic.BaseModel):
    username: str = pydantic.Field(min_length=1, max_length=64)
    password: str = pydantic.Field(min_length=1, max_length=1024)


class UserShown(Out):
    id: int
    username: str
    display_name: str
    role: Role
    hospital_id: int | None
    locale: str | None
    must_change_password: bool


class TokenShown(Out):
    """A bearer token for the ``Authorization`` header, good for ``expires_in`` seconds, and whose it is."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    user: UserShown


class LoggedOut(Out):
    logged_out: bool


def user_json(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "hospital_id": user.hospital_id,
        "locale": user.locale,
        "must_change_password": user.must_change_password,
    }


@routes.post("/api/auth/login")
@public
@accepts(LoginRequest)
@answers(TokenShown)
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginRequest)
    user = await check_credentials(request, body.username, body.password)
    token = issue_token(request, user)
    return json_response({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": request.app[SETTINGS].access_token_ttl,
        "user": user_json(user),
    })


@routes.post("/api/auth/logout")
@before_password_change
@answers(LoggedOut)
async def logout(request: web.Request) -> web.Response:
    await revoke(request, caller(request).claims)
    response = json_response({"logged_out": True})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


@routes.post("/api/me/password")
@before_password_change
@accepts(PasswordChange)
@answers(TokenShown)
async def change_password(request: web.Request) -> web.Response:
    """Set the caller's own password: ``current_password`` is needed unless the present one is a temporary
    one from an administrator. Every other session of the account ends; the answer carries a new access token
    for this one (and renews its cookie, if it came with one)."""
    who = caller(request)
    body = await parse_body(request, PasswordChange)
    async with request.app[DATABASE].session() as session:
        user = await accounts.change_password(session, who.principal, body, verify=request.app[PASSWORDS].verify,
                                              rooms=request.app[ROOMS])
    token = issue_token(request, user)
    response = json_response({"access_token": token, "token_type": "Bearer",
                              "expires_in": request.app[SETTINGS].access_token_ttl, "user": user_json(user)})
    if request.cookies.get(COOKIE_NAME):
        set_session_cookie(request, response, token)
    return response


@routes.get("/api/me")
@before_password_change
@answers(UserShown)
async def me(request: web.Request) -> web.Response:
    return json_response(user_json(caller(request).user))
