"""The top bar of every page for a logged-in user: the links their permissions open, and how many of their
notifications are unread (counted once per page request, by a middleware, since templates render without
the database)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from server import notices
from server.appkeys import DATABASE
from server.errors import N_
from server.http import Handler, is_api
from server.identity.auth import CALLER
from server.permissions import (
    Principal,
    can_administer,
    can_handle_patients,
    can_list_consultations,
    can_manage_holds,
    can_read_audit,
    can_supervise,
    has_referrals,
    keeps_clinic_hours,
)

UNREAD = web.RequestKey("unread_notices", int)


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str  # N_-marked; the template translates it


def links(who: Principal) -> list[NavLink]:
    """The pages of the top bar this caller may use, by the rules in ``server/permissions.py``."""
    shown = []
    if can_list_consultations(who):
        shown.append(NavLink("/consultations", N_("Consultations")))
    if has_referrals(who):
        shown.append(NavLink("/referrals", N_("Referrals")))
    if can_handle_patients(who):
        shown.append(NavLink("/patients", N_("Patients")))
    if keeps_clinic_hours(who):
        shown.append(NavLink("/hours", N_("Clinic hours")))
    if can_read_audit(who):
        shown.append(NavLink("/audit", N_("Audit trail")))
    if can_manage_holds(who):
        shown.append(NavLink("/holds", N_("Legal holds")))
    if can_supervise(who):
        shown.append(NavLink("/supervision", N_("Supervision")))
    if can_administer(who):
        shown.append(NavLink("/admin", N_("Administration")))
    return shown


@web.middleware
async def unread_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the caller's unread notifications for a page's top bar (not for the API or public pages)."""
    who = request.get(CALLER)
    if who is not None and not is_api(request):
        async with request.app[DATABASE].session() as session:
            request[UNREAD] = await notices.unread_count(session, who.principal)
    return await handler(request)


def context(request: web.Request) -> dict[str, Any]:
    """What base.html's top bar shows for this request."""
    who = request.get(CALLER)
    if who is None:
        return {"nav_links": [], "unread_count": None, "password_pending": False}
    if who.user.must_change_password:  # every link would lead back to the change-password page
        return {"nav_links": [], "unread_count": None, "password_pending": True}
    return {"nav_links": links(who.principal), "unread_count": request.get(UNREAD), "password_pending": False}
