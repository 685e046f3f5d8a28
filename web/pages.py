"""The pages: login, dashboard, consultation room, language choice, and error pages."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from server import consultations
from server.api.consultations import load_authorized
from server.api.guests import guest_pass
from server.appkeys import DATABASE, RENDERER, SETTINGS
from server.auth import (
    COOKIE_NAME,
    authenticate,
    caller,
    check_credentials,
    issue_token,
    public,
    revoke,
    set_session_cookie,
)
from server.errors import N_, TooManyRequests, Unauthenticated
from server.models import ConsultationStatus, Notification, User
from server.permissions import can_join_consultation

from .i18n import SUPPORTED_LOCALES
from .render import LANG_COOKIE

routes = web.RouteTableDef()

# Why the login page was shown, keyed by the error code that sent the browser there.
LOGIN_REASONS = {
    "token-expired": N_("Your session has expired. Please log in again."),
    "token-revoked": N_("You have logged out. Please log in again."),
    "login-required": N_("Please log in to continue."),
}
STATUS_LABELS = {
    ConsultationStatus.SCHEDULED: N_("Scheduled"),
    ConsultationStatus.IN_PROGRESS: N_("In progress"),
    ConsultationStatus.COMPLETED: N_("Completed"),
    ConsultationStatus.CANCELLED: N_("Cancelled"),
}


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a phishing link borrow our login page."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


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
    form = await request.post()
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
            {"next": next_path, "notice": None, "error": renderer.gettext(request, exc.message),
             "username": username},
            status=exc.status,
        )
        response.headers.update(exc.headers)
        return response
    response = web.HTTPSeeOther(next_path)
    set_session_cookie(request, response, issue_token(request, user))
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    await revoke(request, caller(request).claims)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE_NAME, path="/")
    raise response


@routes.post("/language")
@public
async def choose_language(request: web.Request) -> web.Response:
    """Remember the chosen language on this browser and, for a logged-in user, on their account."""
    form = await request.post()
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
            user = await session.get(User, who.user.id)
            if user is not None:
                user.locale = locale
                session.add(user)
                await session.commit()
    response = web.HTTPSeeOther(back)
    response.set_cookie(LANG_COOKIE, locale, max_age=365 * 24 * 3600, samesite="Lax", path="/",
                        secure=request.app[SETTINGS].cookie_secure)
    raise response


@routes.get("/", name="dashboard")
async def dashboard(request: web.Request) -> web.Response:
    who = caller(request)
    async with request.app[DATABASE].session() as session:
        views = await consultations.list_for(session, who.principal)
        notifications = (await session.exec(select(Notification).where(Notification.user_id == who.user.id)
                                            .order_by(col(Notification.id).desc()).limit(10))).all()
    context = {"consultations": views, "status_labels": STATUS_LABELS, "notifications": notifications}
    return request.app[RENDERER].render(request, "dashboard.html", context)


@routes.get("/consultations/{consultation_id}", name="consultation")
async def consultation_room(request: web.Request) -> web.Response:
    view = await load_authorized(request, can_join_consultation)
    config = {
        "consultationId": view.consultation.id,
        "roomTokenUrl": f"/api/consultations/{view.consultation.id}/room-token",
        "guestLinkUrl": f"/api/consultations/{view.consultation.id}/guest-links",
        "consentUrl": f"/api/consultations/{view.consultation.id}/recording-consent",
        "recordingsUrl": f"/api/consultations/{view.consultation.id}/recordings",
    }
    return request.app[RENDERER].render(
        request, "consultation.html", {"title": view.consultation.title, "subtitle": view.hospital.name,
                                       "patient": view.patient.name if view.patient else None, "config": config}
    )


@routes.get("/visit/{token}", name="visit")
@public
async def guest_visit(request: web.Request) -> web.Response:
    """A guest's way in: the link itself is the credential; the guest waits in the lobby until admitted."""
    token = request.match_info["token"]
    try:
        visit, consultation = await guest_pass(request, token)
    except Unauthenticated as exc:
        # A guest has no login to go back to: say what is wrong with the link instead of redirecting.
        message = exc.message if exc.code == "link-closed" else N_(
            "This link is not valid or has expired. Please ask the doctor for a new one.")
        return request.app[RENDERER].render(
            request, "error.html", {"error": Unauthenticated(message, code=exc.code)}, status=401)
    config = {
        "consultationId": consultation.id,
        "roomTokenUrl": "/api/guest/room-token",
        "consentUrl": "/api/guest/recording-consent",
        "guest": token,
    }
    # A guest sees the consultation's title and nothing of the record.
    return request.app[RENDERER].render(
        request, "consultation.html", {"title": consultation.title, "subtitle": None, "patient": None,
                                       "config": config})
