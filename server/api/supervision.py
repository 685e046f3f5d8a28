"""REST: the supervision statistics of the partnerships a supervisor oversees, as CSV or JSON."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from ..appkeys import DATABASE, SETTINGS
from ..http import parse_form
from ..identity.auth import caller
from ..openapi import answers, answers_media, queries
from ..supervision import export, statistics
from ..supervision.statistics import StatisticsQuery

routes = web.RouteTableDef()


# The statistics' filter, and the form of the answer. (No docstring: see reports.Icd10Query.)
class StatisticsExportQuery(StatisticsQuery):
    format: Literal["json", "csv"] = "json"


@routes.get("/api/supervision/statistics")
@queries(StatisticsExportQuery)
@answers(statistics.SupervisionStatistics, description="The statistics as JSON.")
@answers_media("text/csv", description="The statistics as CSV.")
async def supervision_statistics(request: web.Request) -> web.Response:
    """Per hospital and month: consultations held and recorded, referrals sent and received, turnaround
    medians and p90s (hours), declined and redirected shares, consent coverage; no patient datum. Filters
    ``from_month`` and ``to_month`` (YYYY-MM, the deployment's default zone; the last twelve months if
    left out), ``partnership_id``, ``hospital_id``; ``format=json`` (the default) or ``csv``. The schema is
    docs/supervision.md's. 403 for anyone but a supervisor, and for a partnership or hospital they do not
    oversee; 422 naming a parameter that is wrong."""
    kind, filters = export.split_query(request.query)
    query = parse_form(filters, StatisticsQuery)
    async with request.app[DATABASE].session() as session:
        stats = await statistics.compute(session, caller(request).principal, query,
                                         request.app[SETTINGS].default_timezone)
    body = export.to_csv(stats) if kind == "csv" else export.to_json(stats)
    return web.Response(text=body, content_type="text/csv" if kind == "csv" else "application/json",
                        charset="utf-8",
                        headers={"Content-Disposition": f'inline; filename="{export.filename(stats, kind)}"'})
