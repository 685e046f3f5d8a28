"""The pages: login, dashboard, language choice, and error pages."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from server import notices
from server.appkeys import DATABASE, KEYS, SETTINGS
from server.consultations import service as consultations
from server.errors import N_, Forbidden, TooManyRequests, Unauthenticated
from server.http import LANG_COOKIE, read_form, same_origin, translator
from server.i18n import SUPPORTED_LOCALES
from server.identity import accounts
from server.identity.auth import (
    COOKIE_NAME,
    authenticate,
    before_password_change,
    caller,
    check_credentials,
    issue_token,
    public,
    revoke,
    set_session_cookie,
)
from server.models import ConsultationStatus
from server.permissions import (
    Principal,
    awaits_licence,
    can_administer,
    can_list_consultations,
    can_read_audit,
    can_supervise,
    has_calendar_feed,
    has_referral_inbox,
)
from server.scheduling import calendar_feed

from .refusals import error_text
from .render import RENDERER, page_zone

routes = web.RouteTableDef()

# Why the login page was shown, keyed by the error code that sent the browser there.
LOGIN_REASONS = {
    "token-expired": N_("Your session has expired. Please log in again."),
    "token-revoked": N_("You have logged out. Please log in again."),
    "session-ended": N_("Your session has ended: your password was changed or reset, or an administrator "
                        "ended it. Please log in again."),
    "login-required": N_("Please log in to continue."),
}
STATUS_LABELS = {
    ConsultationStatus.SCHEDULED: N_("Scheduled"),
    ConsultationStatus.IN_PROGRESS: N_("In progress"),
    ConsultationStatus.COMPLETED: N_("Completed"),
    ConsultationStatus.CANCELLED: N_("Cancelled"),
}


# What the WHATWG URL parser strips from both ends, and removes anywhere, before it reads a URL.
_C0_OR_SPACE = "".join(chr(code) for code in range(0x21))
_REMOVED_ANYWHERE = str.maketrans({"\t": None, "\n": None, "\r": None})


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a phishing link borrow our login page.

    The target is read the way a browser reads a Location (ends trimmed of controls and spaces, tab and
    newlines dropped, a backslash taken as a slash) before it is checked, since "/<tab>/evil.example"
    is "//evil.example", another host, to the browser. What is left must be a path starting with one
    slash; anything else, or a path still holding a control character, becomes the dashboard.
    """
    path = (target or "").strip(_C0_OR_SPACE).translate(_REMOVED_ANYWHERE).replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return "/"
    if any(char < " " or char == "\x7f" for char in path):
        return "/"
    return path


def _on_this_site(url: str, request: web.Request) -> bool:
    """Whether an Origin or Referer names this site, by the rules of ``same_origin``: a proxy that writes the
    port into Host ("example.org:443") serves the same site as a browser's "https://example.org"."""
    try:
        parsed = URL(url)
        return parsed.absolute and same_origin(str(parsed.origin()), request.host)
    except ValueError:
        return False


def refuse_cross_site(request: web.Request) -> None:
    """403 for a form posted from another site's page: public forms have no session to tie a CSRF check to.

    A browser always sends Origin on a cross-site form post; Sec-Fetch-Site and Referer also speak when
    present. A client that sends none of them is not a browser another site can drive, so it is let in.
    """
    origin, referer = request.headers.get("Origin"), request.headers.get("Referer")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if origin is not None:
        allowed = origin != "null" and _on_this_site(origin, request)
    elif referer:
        allowed = _on_this_site(referer, request)
    else:
        allowed = True
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        allowed = False
    if not allowed:
        raise Forbidden(N_("This form was sent from another site. Open this site's own page and try again."),
                        code="cross-site")


@routes.get("/login", name="login")
@public
async def login_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next"))
    try:
        await authenticate(request)
    except Unauthenticated:
        pass
    else:
        raise web.HTTPSeeOther(next_path)
    reason = LOGIN_REASONS.get(request.query.get("reason", ""))
    return request.app[RENDERER].render(request, "login.html", {"next": next_path, "notice": reason, "error": None})


@routes.post("/login")
@public
async def login_submit(request: web.Request) -> web.Response:
    # Login CSRF: another site's page posting its own credentials would leave the victim in its account.
    refuse_cross_site(request)
    form = await read_form(request)
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "/")))
    renderer = request.app[RENDERER]
    try:
        if not username or not password:
            raise Unauthenticated(N_("Enter your username and password."))
        user = await check_credentials(request, username, password)
    except (Unauthenticated, TooManyRequests) as exc:
        response = renderer.render(
            request, "login.html",
            {"next": next_path, "notice": None, "error": error_text(exc, translator(request)),
             "username": username},
            status=exc.status,
        )
        response.headers.update(exc.headers)
        return response
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(request, response, issue_token(request, user))
    raise response


@routes.post("/logout")
@before_password_change
async def logout(request: web.Request) -> web.Response:
    await revoke(request, caller(request).claims)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE_NAME, path="/")
    raise response


@routes.post("/language")
@public
async def choose_language(request: web.Request) -> web.Response:
    """Remember the chosen language on this browser and, for a logged-in user, on their account."""
    refuse_cross_site(request)  # public, so the auth middleware's same-origin check does not cover it
    form = await read_form(request)
    locale = str(form.get("locale", ""))
    back = safe_next(str(form.get("next", "/")))
    if locale not in SUPPORTED_LOCALES:
        raise web.HTTPSeeOther(back)
    try:
        who = await authenticate(request)
    except Unauthenticated:
        pass
    else:
        async with request.app[DATABASE].session() as session:
            await accounts.set_locale(session, who.principal, locale)
    response = web.HTTPSeeOther(back)
    response.set_cookie(LANG_COOKIE, locale, max_age=365 * 24 * 3600, samesite="Lax", path="/",
                        secure=request.app[SETTINGS].cookie_secure)
    raise response


@routes.get("/", name="dashboard")
async def dashboard(request: web.Request) -> web.Response:
    who = caller(request)
    takes_part = can_list_consultations(who.principal)  # the others' work is elsewhere (``workspace``)
    async with request.app[DATABASE].session() as session:
        views = await consultations.list_for(session, who.principal) if takes_part else []
        zone = await page_zone(request, session)
        notifications = await notices.latest(session, who.user, translator(request), limit=10,
                                             fallback=request.app[SETTINGS].default_timezone)
        calendar_url = None
        if has_calendar_feed(who.user.role):
            path = await calendar_feed.feed_path(session, who.principal, request.app[KEYS],
                                                 request.app[SETTINGS].jwt_issuer, rotate=False)
            calendar_url = str(request.url.with_path(path).with_query(None))
    context = {"takes_part": takes_part, "consultations": views, "status_labels": STATUS_LABELS,
               "notifications": notifications, "calendar_url": calendar_url, "zone": zone,
               "workspace": workspace(who.principal), "licence_notice": awaits_licence(who.principal)}
    return request.app[RENDERER].render(request, "dashboard.html", context)


def workspace(who: Principal) -> tuple[str, str, str] | None:
    """Where the day's work is for those whose work is not their own consultations: (address, what is there,
    the button's words), all N_-marked; None for clinicians, whose consultations are their work."""
    if can_administer(who):
        return "/admin", N_("Accounts, hospitals and partnerships are managed in the administration console."), \
            N_("Open the administration console")
    if can_read_audit(who):
        return "/audit", N_("Who did what, and when, is in the audit trail."), N_("Open the audit trail")
    if can_supervise(who):
        return "/supervision", N_("The statistics of the partnerships you oversee are on the supervision page."), \
            N_("Open the supervision statistics")
    if has_referral_inbox(who):
        return "/referrals", N_("Referrals to your hospital are triaged and booked from the referral inbox."), \
            N_("Open the referral inbox")
    return None
