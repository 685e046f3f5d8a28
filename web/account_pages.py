"""The user's own account: changing their password, at any time or first thing after an administrator gave
them a temporary one (every other page leads here until then: ``server/http.py``'s auth middleware).

The form parses into ``PasswordChange``, the model POST /api/me/password reads, and calls the same
``identity.accounts.change_password``.
"""

from __future__ import annotations

from aiohttp import web

from server.appkeys import DATABASE, PASSWORDS, ROOMS
from server.errors import TelemedError
from server.http import CHANGE_PAGE, parse_form, read_form, translator
from server.identity import accounts
from server.identity.accounts import PasswordChange
from server.identity.auth import before_password_change, caller, issue_token, set_session_cookie
from server.identity.passwords import MIN_PASSWORD_LENGTH

from .forms import field_errors, summary
from .pages import safe_next
from .render import RENDERER

routes = web.RouteTableDef()

FIELDS = ("current_password", "new_password", "new_password_again")


def _render(request: web.Request, *, next_path: str, errors: dict[str, str] | None = None, error: str | None = None,
            done: bool = False, status: int = 200) -> web.Response:
    return request.app[RENDERER].render(request, "account_password.html", {
        "forced": caller(request).user.must_change_password, "errors": errors or {}, "error": error,
        "done": done, "min_length": MIN_PASSWORD_LENGTH, "next": next_path}, status=status)


@routes.get(CHANGE_PAGE, name="account_password")
@before_password_change
async def password_page(request: web.Request) -> web.Response:
    """``next``: the page a forced change was asked on the way to, where the user goes once it is done."""
    return _render(request, next_path=safe_next(request.query.get("next")), done=request.query.get("done") == "1")


@routes.post(CHANGE_PAGE)
@before_password_change
async def password_change(request: web.Request) -> web.Response:
    """Set the new password; this browser stays logged in with a new session, every other session ends. After
    a forced change the user goes on to the page they were on their way to (``next``), or their dashboard."""
    who = caller(request)
    posted = await read_form(request)
    next_path = safe_next(str(posted.get("next", "/")))
    form = {k: v for k, v in posted.items() if k in FIELDS}
    gettext = translator(request)
    try:
        body = parse_form(form, PasswordChange)
        async with request.app[DATABASE].session() as session:
            user = await accounts.change_password(session, who.principal, body, verify=request.app[PASSWORDS].verify,
                                                  rooms=request.app[ROOMS])
    except TelemedError as exc:
        return _render(request, next_path=next_path, errors=field_errors(exc, gettext), error=summary(exc, gettext),
                       status=exc.status)
    response = web.HTTPSeeOther(next_path if who.user.must_change_password else f"{CHANGE_PAGE}?done=1")
    set_session_cookie(request, response, issue_token(request, user))
    raise response
