"""REST: each clinician's and coordinator's calendar feed (a secret URL for their calendar program) and its rotation."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import DATABASE, KEYS, SETTINGS
from ..errors import Unauthenticated
from ..http import json_response, translator
from ..identity.auth import caller, public
from ..models import utcnow
from ..openapi import answers, answers_media
from ..outputs import Out
from ..scheduling.calendar_feed import build, feed_entries, feed_path

routes = web.RouteTableDef()


class CalendarLink(Out):
    url: str


async def feed_url(request: web.Request, *, rotate: bool) -> str:
    """The caller's feed URL (a new one if ``rotate``), for this API and the dashboard alike."""
    async with request.app[DATABASE].session() as session:
        path = await feed_path(session, caller(request).principal, request.app[KEYS],
                                             request.app[SETTINGS].jwt_issuer, rotate=rotate)
    return str(request.url.with_path(path).with_query(None))


@routes.get("/api/calendar")
@answers(CalendarLink)
async def calendar_link(request: web.Request) -> web.Response:
    """The caller's feed URL, to subscribe to in a calendar program. Treat it as a password."""
    return json_response({"url": await feed_url(request, rotate=False)})


@routes.post("/api/calendar/rotate")
@answers(CalendarLink)
async def rotate_calendar_link(request: web.Request) -> web.Response:
    """A new feed URL; every earlier one stops working (for a link that leaked)."""
    return json_response({"url": await feed_url(request, rotate=True)})


@routes.get("/calendar/{token}.ics")
@answers_media("text/calendar", description="The feed (iCalendar).")
@public
async def calendar_feed(request: web.Request) -> web.Response:
    """The feed. A calendar program is not a browser: a bad link gets a plain 401, not the login page."""
    try:
        async with request.app[DATABASE].session() as session:
            user, entries = await feed_entries(session, request.app[KEYS], request.app[SETTINGS].jwt_issuer,
                                               request.match_info["token"], origin=str(request.url.origin()),
                                               default_locale=request.app[SETTINGS].default_locale)
    except Unauthenticated as exc:
        return web.Response(status=401, text=f"{translator(request)(exc.message)}\n")  # (its language, if it said)
    body = build(entries, host=request.url.host or "telemed", name=f"Telemed · {user.display_name}", now=utcnow())
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Content-Disposition": 'inline; filename="telemed.ics"'})
