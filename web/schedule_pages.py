"""The clinic-hours editor: a specialist's weekly hours as a week of rows to add to or strike out, and their
time off as runs of days, on their hospital's clock. The specialist edits their own; their hospital's
coordinators pick one of its specialists first.

The week is sent whole, as PUT /api/specialists/{id}/availability takes it (``WeeklyHours``), and time off as
POST .../time-off does (``TimeOff``); both go to ``scheduling.hours``, which checks ``can_edit_hours``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from babel.dates import get_day_names

from server.appkeys import DATABASE
from server.errors import N_, BadRequest, TelemedError
from server.http import locale_for, parse_form, path_id, read_form, translator
from server.identity.auth import caller
from server.parsing import parse_id
from server.scheduling import hours
from server.scheduling.hours import SpecialistHours, TimeOff, WeeklyHours

from .clock import zone_label
from .forms import field_errors, summary
from .render import RENDERER

routes = web.RouteTableDef()


@dataclass
class Row:
    """One period of a weekday as the form shows it; ``key`` names its inputs (``start-<key>``...)."""

    key: str
    start: str = ""
    end: str = ""
    remove: bool = False
    error: str | None = None


@dataclass
class Day:
    weekday: int
    name: str
    rows: list[Row] = field(default_factory=list)
    new: Row = field(default_factory=lambda: Row(""))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _week(request: web.Request) -> list[Day]:
    names = get_day_names("wide", locale=locale_for(request).replace("-", "_"))
    return [Day(d, names[d], new=Row(f"{d}-new")) for d in range(7)]


def _week_from(shown: SpecialistHours, request: web.Request) -> list[Day]:
    week = _week(request)
    for period in shown.weekly:
        day = week[period.weekday]
        key = f"{period.weekday}-{len(day.rows)}"
        day.rows.append(Row(key, _clock(period.start_minute), _clock(period.end_minute)))
    return week


def _week_from_form(form: dict[str, str], request: web.Request) -> tuple[list[Day], list[Row]]:
    """The week as it was sent, and the rows to keep, in the order they go into ``WeeklyHours``."""
    week = _week(request)
    kept: list[Row] = []
    for day in week:
        count = parse_id(form.get(f"rows-{day.weekday}")) or 0
        for k in range(min(count, 20)):
            key = f"{day.weekday}-{k}"
            row = Row(key, form.get(f"start-{key}", "").strip(), form.get(f"end-{key}", "").strip(),
                      remove=bool(form.get(f"remove-{key}")))
            day.rows.append(row)
            if not row.remove and (row.start or row.end):
                kept.append(row)
        key = f"{day.weekday}-new"
        day.new = Row(key, form.get(f"start-{key}", "").strip(), form.get(f"end-{key}", "").strip())
        if day.new.start or day.new.end:
            kept.append(day.new)
    return week, kept


async def _page(request: web.Request, specialist_id: int, *, week: list[Day] | None = None,
                week_error: str | None = None, time_off: dict[str, Any] | None = None,
                status: int = 200) -> web.Response:
    async with request.app[DATABASE].session() as session:
        shown = await hours.show(session, caller(request).principal, specialist_id)
    runs, others = hours.days_off(shown.exceptions)
    return request.app[RENDERER].render(request, "hours.html", {
        "shown": shown, "week": week or _week_from(shown, request), "week_error": week_error,
        "runs": runs, "others": others, "zone": zone_label(shown.timezone), "clock": _clock,
        "time_off": time_off or {"form": {}, "errors": {}, "error": None},
        "saved": request.query.get("saved")}, status=status)


@routes.get("/hours", name="hours")
async def hours_index(request: web.Request) -> web.Response:
    """A specialist goes straight to their own hours; a coordinator picks one of their hospital's specialists."""
    who = caller(request).principal
    async with request.app[DATABASE].session() as session:
        kept = await hours.editable_specialists(session, who)
    if len(kept) == 1 and kept[0].id == who.user_id:
        raise web.HTTPSeeOther(f"/specialists/{who.user_id}/hours")
    return request.app[RENDERER].render(request, "hours_index.html", {"specialists": kept})


@routes.get("/specialists/{specialist_id}/hours", name="specialist_hours")
async def hours_page(request: web.Request) -> web.Response:
    return await _page(request, path_id(request, "specialist_id"))


@routes.post("/specialists/{specialist_id}/hours")
async def save_week(request: web.Request) -> web.Response:
    """The whole week as the form holds it, struck-out rows left out, replaces the weekly hours."""
    specialist_id = path_id(request, "specialist_id")
    week, kept = _week_from_form(await read_form(request), request)
    gettext = translator(request)
    try:
        body = parse_form({"hours": [{"weekday": int(row.key.split("-")[0]), "start": row.start, "end": row.end}
                                     for row in kept]}, WeeklyHours)
        async with request.app[DATABASE].session() as session:
            await hours.set_weekly(session, caller(request).principal, specialist_id, body)
    except TelemedError as exc:
        errors = field_errors(exc, gettext)
        for index, row in enumerate(kept):
            row.error = errors.get(f"hours.{index}")
        marked = any(row.error for row in kept)
        return await _page(request, specialist_id, week=week, status=exc.status,
                           week_error=summary(exc, gettext) if marked else errors.get("hours", summary(exc, gettext)))
    raise web.HTTPSeeOther(f"/specialists/{specialist_id}/hours?saved=week")


@routes.post("/specialists/{specialist_id}/time-off")
async def add_time_off(request: web.Request) -> web.Response:
    specialist_id = path_id(request, "specialist_id")
    form = {k: v.strip() for k, v in (await read_form(request)).items() if k in TimeOff.model_fields}
    gettext = translator(request)
    try:
        body = parse_form(form, TimeOff)
        async with request.app[DATABASE].session() as session:
            await hours.add_time_off(session, caller(request).principal, specialist_id, body)
    except TelemedError as exc:
        return await _page(request, specialist_id, time_off={
            "form": form, "errors": field_errors(exc, gettext), "error": summary(exc, gettext)}, status=exc.status)
    raise web.HTTPSeeOther(f"/specialists/{specialist_id}/hours?saved=time-off#time-off")


@routes.post("/specialists/{specialist_id}/time-off/remove")
async def remove_time_off(request: web.Request) -> web.Response:
    """Take back a run of days off (or one exception), all of it at once."""
    specialist_id = path_id(request, "specialist_id")
    raw = (await read_form(request)).get("ids", "")
    ids = [parse_id(part) for part in raw.split(",")]
    if not ids or None in ids:
        raise BadRequest(N_("Choose from the lists."), code="choice-required")
    async with request.app[DATABASE].session() as session:
        await hours.remove_exceptions(session, caller(request).principal, specialist_id,
                                      [i for i in ids if i is not None])
    raise web.HTTPSeeOther(f"/specialists/{specialist_id}/hours?saved=time-off#time-off")
