"""The pages: login, dashboard, consultation room, language choice, and error pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from server import notices, zones
from server.appkeys import DATABASE, KEYS, REPORTS, SETTINGS
from server.consent import templates as consent_templates
from server.consultations import service as consultations
from server.consultations.room_window import RoomWindow
from server.errors import N_, Forbidden, NotFound, TelemedError, TooManyRequests, Unauthenticated
from server.http import LANG_COOKIE, locale_for, parse_form, path_id, read_form, same_origin, translator
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
from server.models import ConsentPurpose, Consultation, ConsultationStatus, utcnow
from server.patients import invitations
from server.permissions import (
    Principal,
    awaits_licence,
    can_administer,
    can_join_consultation,
    can_read_audit,
    can_speak_for_patient,
    can_supervise,
    has_calendar_feed,
    has_referral_inbox,
)
from server.referrals import attachments, views
from server.referrals import service as referrals
from server.reports import service as reports
from server.reports.inputs import ReportInput
from server.scheduling import calendar_feed

from .clock import zoned
from .forms import field_errors, summary
from .referral_pages import URGENCY_LABELS
from .refusals import error_text
from .render import RENDERER, page_zone
from .room_texts import api_errors, signaling_errors

routes = web.RouteTableDef()

# Why the login page was shown, keyed by the error code that sent the browser there.
LOGIN_REASONS = {
    "token-expired": N_("Your session has expired. Please log in again."),
    "token-revoked": N_("You have logged out. Please log in again."),
    "session-ended": N_("An administrator has ended your session. Please log in again."),
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
    async with request.app[DATABASE].session() as session:
        views = await consultations.list_for(session, who.principal)
        zone = await page_zone(request, session)
        notifications = await notices.latest(session, who.user, translator(request), limit=10,
                                             fallback=request.app[SETTINGS].default_timezone)
        calendar_url = None
        if has_calendar_feed(who.user.role):
            path = await calendar_feed.feed_path(session, who.principal, request.app[KEYS],
                                                 request.app[SETTINGS].jwt_issuer, rotate=False)
            calendar_url = str(request.url.with_path(path).with_query(None))
    context = {"consultations": views, "status_labels": STATUS_LABELS, "notifications": notifications,
               "calendar_url": calendar_url, "zone": zone, "workspace": workspace(who.principal),
               "licence_notice": awaits_licence(who.principal)}
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


@routes.get("/consultations/{consultation_id}", name="consultation")
async def consultation_room(request: web.Request) -> web.Response:
    return await _room(request, path_id(request, "consultation_id"))


@routes.post("/consultations/{consultation_id}/report")
async def room_report(request: web.Request) -> web.Response:
    """The booked specialist signs the consultation report from the room, which completes the referral: the
    referral page's report form, through the same model and service (``reports.service.sign``), back to the
    room."""
    who = caller(request).principal
    consultation_id = path_id(request, "consultation_id")
    form = await read_form(request)
    values = {k: form.get(k, "").strip() for k in ("findings", "diagnosis_code", "recommendations")}
    try:
        body = parse_form(values, ReportInput)
        async with request.app[DATABASE].session() as session:
            # only a consultation the caller is in, and only the referral it was booked for
            await consultations.visible(session, who, consultation_id, can_join_consultation)
            found = await referrals.booked_for(session, who, consultation_id)
            if found is None:
                raise NotFound(N_("This consultation was not booked for a referral you can see."))
            referral, _ = found
            assert referral.id is not None
            await reports.sign(session, who, referral.id, body, tools=request.app[REPORTS])
    except TelemedError as exc:
        # each field's refusal beside it, in the reader's words, as on the referral page
        gettext = translator(request)
        return await _room(request, consultation_id, status=exc.status, report_form={
            **values, "error": summary(exc, gettext), "errors": field_errors(exc, gettext)})
    raise web.HTTPSeeOther(f"/consultations/{consultation_id}#referral-panel")


async def _room(request: web.Request, consultation_id: int, *, report_form: dict[str, str] | None = None,
                status: int = 200) -> web.Response:
    """A clinician's room: the call, and beside it the referral the consultation was booked for."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        view = await consultations.visible(session, who, consultation_id, can_join_consultation)
    beside_patient = view.patient is not None and can_speak_for_patient(who, view.patient.hospital_id)
    config = {
        "consultationId": view.consultation.id,
        "roomTokenUrl": f"/api/consultations/{view.consultation.id}/room-token",
        "invitationUrl": f"/api/consultations/{view.consultation.id}/invitations" if view.patient else None,
        "hasPatient": view.patient is not None,
        # the patient beside the doctor consents to recording through them
        "patientConsentUrl": f"/api/consultations/{view.consultation.id}/consents" if beside_patient else None,
        "consentUrl": f"/api/consultations/{view.consultation.id}/recording-consent",
        # (a partner the patient is withheld from may not open them: no link to a refusal)
        "recordingsUrl": None if view.withheld else f"/api/consultations/{view.consultation.id}/recordings",
    }
    title = view.title or translator(request)(N_("Consultation #%(number)s")) % {"number": view.consultation.id}
    async with request.app[DATABASE].session() as session:  # links the patient's identity check locked
        locked = len(await invitations.locked_for(session, who, consultation_id)) if view.patient else 0
    referral = await _referral_panel(request, consultation_id)
    if referral is not None and report_form is not None:
        referral["report_form"] = report_form
    return await render_room(request, {"title": title, "subtitle": view.hospital.name,
                                       "patient": view.patient.name if view.patient else None, "config": config,
                                       "referral": referral, "locked_invitations": locked,
                                       "urgency_labels": URGENCY_LABELS, "back_url": "/",
                                       "licence_notice": awaits_licence(who)},
                             consultation=view.consultation, reader_hospital_id=who.hospital_id, status=status)


async def _referral_panel(request: web.Request, consultation_id: int) -> dict[str, Any] | None:
    """The referral the consultation was booked for, as the caller may see it (its patient's records only
    while they may: ``views.describe`` and ``attachments.list_for`` ask ``patients/disclosure.py``), or None."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        found = await referrals.booked_for(session, who, consultation_id)
        if found is None:
            return None
        data = await views.describe(session, who, found[0], full=True)
        files = [] if data["records_withheld"] else [
            attachments.describe(row) for row in await attachments.list_for(session, who, data["id"])]
        signed = [] if data["records_withheld"] else await reports.versions(session, data["id"])
    await views.audit_patient_view(request.app[DATABASE], who, data)
    return {**data, "attachments": files, "can_write_report": data["can_sign_report"],
            "report": reports.describe(signed[-1]) if signed else None,
            "report_form": {"findings": "", "diagnosis_code": "", "recommendations": "", "error": None, "errors": {}}}


async def render_room(request: web.Request, context: dict, *, consultation: Consultation, reader_hospital_id: int,
                      status: int = 200, patient: bool = False) -> web.Response:
    """The room page: whether the room lets people in yet (and when it opens, on the clock of the reader's
    hospital, or for a ``patient`` on their browser's, the hospital's being what shows without script), the
    recording consent's current text beside its checkbox, and the signaling errors' words."""
    renderer = request.app[RENDERER]
    window = RoomWindow.of(consultation, request.app[SETTINGS])
    now = utcnow()
    async with request.app[DATABASE].session() as session:
        text = await consent_templates.current(session, ConsentPurpose.RECORDING, locale_for(request))
        zone = await zones.hospital_zone(session, reader_hospital_id, request.app[SETTINGS].default_timezone)
    state = window.state(now)
    context["config"]["recordingTemplateId"] = text.id
    # The server's clock too, so that a browser whose clock is off still counts down to the right moment.
    context["config"]["window"] = {"state": state, "opensAt": window.opens.isoformat(),
                                   "closesAt": window.closes.isoformat(), "now": now.isoformat()}
    context.setdefault("referral", None)
    context.setdefault("back_url", None)
    context.setdefault("licence_notice", False)  # a clinician's room says when they come in as a guest
    room_window = {"state": state, "opens_at": window.opens.isoformat(), "closes_at": window.closes.isoformat(),
                   "opens": zoned(window.opens, zone), "closes": zoned(window.closes, zone), "zone": zone,
                   "in_browser_zone": patient}
    return renderer.render(request, "consultation.html", {
        **context, "recording_text": text, "window": room_window,
        "signaling_errors": signaling_errors(translator(request)), "api_errors": api_errors(translator(request))},
        status=status)
