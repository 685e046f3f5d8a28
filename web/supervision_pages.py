"""The supervision page, for a regional health commission's supervisors: the statistics of the partnerships
they oversee, per month and per hospital and month, as tables and server-drawn bar charts, with the export
(``/api/supervision/statistics``) a click away under the same filters. It shows no patient, ever: the
service it reads (``server/supervision/statistics.py``) hands out only counts, shares and durations."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server.appkeys import DATABASE, SETTINGS
from server.errors import N_, ValidationFailed
from server.http import parse_form, translator
from server.identity.auth import caller
from server.permissions import can_supervise, require
from server.supervision import statistics
from server.supervision.statistics import StatisticsQuery

from .charts import bars
from .forms import field_errors, summary
from .render import RENDERER

routes = web.RouteTableDef()

# (the figure in the totals, the chart's title, what it shows, in which unit) -- N_-marked; the template
# translates them.
CHARTS = (
    ("consultations_held", N_("Consultations held per month"),
     N_("Consultations held in each month, every hospital in the filter together."), ""),
    ("referrals_received", N_("Referrals received per month"),
     N_("Referrals submitted in each month, counted at the hospital that received them."), ""),
    ("hours_to_accepted_median", N_("Median hours from submission to acceptance"),
     N_("For the referrals submitted in each month, the median time until they were accepted, in hours."),
     N_("hours")),
)


@routes.get("/supervision", name="supervision")
async def supervision_page(request: web.Request) -> web.Response:
    who = caller(request).principal
    require(can_supervise(who), N_("Only supervisors read the partnerships' statistics."))
    form = {k: v.strip() for k, v in request.query.items() if k in StatisticsQuery.model_fields}
    errors, failure, status = {}, None, 200
    zone = request.app[SETTINGS].default_timezone
    async with request.app[DATABASE].session() as session:
        try:
            query = parse_form({k: v for k, v in form.items() if v}, StatisticsQuery)
            stats = await statistics.compute(session, who, query, zone)
        except ValidationFailed as exc:
            gettext = translator(request)
            errors, failure, status = field_errors(exc, gettext), summary(exc, gettext), exc.status
            stats = await statistics.compute(session, who, StatisticsQuery(), zone)
    charts = [{"key": key, "title": title, "desc": desc, "unit": unit,
               "chart": bars([(row["month"], row[key]) for row in stats.totals], counts=not unit)}  # unitless: a count
              for key, title, desc, unit in CHARTS]
    active = [r for r in stats.rows if any(r[k] for k in statistics.COUNTS)]
    query_string = urlencode({k: v for k, v in form.items() if v})
    return request.app[RENDERER].render(request, "supervision.html", {
        "stats": stats, "rows": active, "charts": charts, "form": form, "errors": errors, "failure": failure,
        "query": query_string, "zone": zone}, status=status)
