"""The legal holds page, for administrators and auditors: the holds (standing ones first), a form to place one
on a patient or a consultation, and one to release each standing hold, with a reason. Forms are parsed into the
models the REST API reads and handed to the same service (``server/retention/holds.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server import zones
from server.appkeys import DATABASE, SETTINGS
from server.errors import N_, TelemedError
from server.http import parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.permissions import can_manage_holds, require
from server.retention import holds
from server.retention.holds import PlaceHold, ReleaseHold

from .clock import zoned
from .forms import field_errors, summary
from .render import RENDERER

routes = web.RouteTableDef()

SUBJECTS = {"patient": N_("A patient"), "consultation": N_("A consultation")}
DONE = {"placed": N_("The legal hold was placed."), "released": N_("The legal hold was released.")}


@routes.get("/holds", name="holds")
async def holds_page(request: web.Request, *, form: Mapping[str, str] | None = None, errors: dict | None = None,
                     error: str | None = None, failed: str = "", status: int = 200) -> web.Response:
    who = caller(request).principal
    require(can_manage_holds(who), N_("Only administrators and auditors manage legal holds."))
    async with request.app[DATABASE].session() as session:
        rows = await holds.list_all(session, who)
        names = await holds.names(session, rows)
        zone = await zones.reader_zone(session, who, request.app[SETTINGS].default_timezone)
    shown = [{
        "hold": h, "placed_at": zoned(h.placed_at, zone), "placed_by": names.get(h.placed_by, "—"),
        "released_at": zoned(h.released_at, zone) if h.released_at else None,
        "released_by": names.get(h.released_by, "—") if h.released_by else None,
    } for h in rows]
    done = DONE.get(request.query.get("done", "")) if request.method == "GET" else None
    return request.app[RENDERER].render(request, "holds.html", {
        "holds": shown, "subjects": SUBJECTS, "form": form or {"subject": "patient"}, "errors": errors or {},
        "failure": error, "failed": failed, "done": done, "zone": zone}, status=status)


@routes.post("/holds")
async def place_hold(request: web.Request) -> web.Response:
    form = {name: value.strip() for name, value in (await read_form(request)).items()}
    subject = form.get("subject") if form.get("subject") in SUBJECTS else "patient"
    try:
        body = parse_form({f"{subject}_id": form.get("number", ""), "reason": form.get("reason", "")}, PlaceHold)
        async with request.app[DATABASE].session() as session:
            await holds.place(session, caller(request).principal, body)
    except TelemedError as exc:
        gettext = translator(request)
        errors = field_errors(exc, gettext)
        if f"{subject}_id" in errors:
            errors["number"] = errors[f"{subject}_id"]
        elif "body" in errors:  # neither a patient nor a consultation: the number was left out
            errors["number"] = gettext(N_("Please fill this in."))
        return await holds_page(request, form=form, errors=errors, error=summary(exc, gettext), failed="new",
                                status=exc.status)
    raise web.HTTPSeeOther("/holds?done=placed")


@routes.post("/holds/{hold_id}/release")
async def release_hold(request: web.Request) -> web.Response:
    hold_id = path_id(request, "hold_id")
    form = {name: value.strip() for name, value in (await read_form(request)).items()}
    try:
        body = parse_form({"reason": form.get("reason", "")}, ReleaseHold)
        async with request.app[DATABASE].session() as session:
            await holds.release(session, caller(request).principal, hold_id, body)
    except TelemedError as exc:
        gettext = translator(request)
        return await holds_page(request, form={"subject": "patient", f"release_{hold_id}": form.get("reason", "")},
                                errors=field_errors(exc, gettext), error=summary(exc, gettext),
                                failed=str(hold_id), status=exc.status)
    raise web.HTTPSeeOther("/holds?done=released")
