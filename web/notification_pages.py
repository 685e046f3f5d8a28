"""The caller's notifications: all of them (the last hundred), each opened through here so it is read from
then on, and "mark all read". The same ``server/notices.py`` operations as /api/notifications."""

from __future__ import annotations

from aiohttp import web

from server import notices
from server.appkeys import DATABASE, SETTINGS
from server.http import path_id, read_form, translator
from server.identity.auth import caller

from .pages import safe_next
from .render import RENDERER, page_zone

routes = web.RouteTableDef()


@routes.get("/notifications", name="notifications")
async def notification_list(request: web.Request) -> web.Response:
    who = caller(request)
    async with request.app[DATABASE].session() as session:
        rows = await notices.latest(session, who.user, translator(request), limit=100,
                                    fallback=request.app[SETTINGS].default_timezone)
        zone = await page_zone(request, session)
    return request.app[RENDERER].render(request, "notifications.html", {"notifications": rows, "zone": zone})


@routes.get("/notifications/{notification_id}", name="notification")
async def open_notification(request: web.Request) -> web.Response:
    """Follow a notification to what it is about; it counts as read from now on."""
    async with request.app[DATABASE].session() as session:
        link = await notices.follow(session, caller(request).principal, path_id(request, "notification_id"))
    raise web.HTTPSeeOther(safe_next(link or "/notifications"))


@routes.post("/notifications/read")
async def mark_all_read(request: web.Request) -> web.Response:
    back = safe_next((await read_form(request)).get("next", "/notifications"))
    async with request.app[DATABASE].session() as session:
        await notices.mark_read(session, caller(request).principal)
    raise web.HTTPSeeOther(back)
