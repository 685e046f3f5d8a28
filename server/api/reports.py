"""REST: the specialist's signed consultation reports, their verification, and the ICD-10 code list."""

from __future__ import annotations

from typing import Literal

import pydantic
from aiohttp import web

from ..appkeys import DATABASE, REPORTS
from ..errors import N_, ValidationFailed
from ..http import json_response, locale_for, parse_body, parse_form, path_id
from ..i18n import SUPPORTED_LOCALES
from ..identity.auth import caller
from ..openapi import accepts, answers, answers_media, queries
from ..outputs import Out
from ..reports import icd10
from ..reports import service as reports
from ..reports.inputs import ReportInput
from ..reports.service import ReportTools
from .referrals import referral_id

routes = web.RouteTableDef()


# What the ICD-10 autocomplete sends. (No docstring: it would become the OpenAPI schema's description.)
class Icd10Query(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str = pydantic.Field(default="", max_length=100)


class DiagnosisFound(Out):
    code: str
    title: str


class Icd10Found(Out):
    diagnoses: list[DiagnosisFound]


# Which language's signed PDF: one the platform speaks, else the reader's. (No docstring: see Icd10Query.)
class ReportLanguage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    locale: Literal[SUPPORTED_LOCALES] | None = None  # type: ignore[valid-type]


@routes.get("/api/icd10")
@queries(Icd10Query)
@answers(Icd10Found)
async def search_icd10(request: web.Request) -> web.Response:
    """Diagnoses for a report's autocomplete: ``?q=`` the start of a code or a part of a title; up to 20, codes
    that start with it first, titles in the reader's language. The hospital's own list once it loaded one."""
    caller(request)
    query = parse_form(request.query, Icd10Query)
    locale = locale_for(request)
    async with request.app[DATABASE].session() as session:
        found = await icd10.search(session, query.q)
    return json_response({"diagnoses": [{"code": d.code, "title": d.title(locale)} for d in found]})


def _tools(request: web.Request) -> ReportTools:
    return request.app[REPORTS]


@routes.get("/api/referrals/{referral_id}/reports")
@answers(reports.ReportList)
async def list_reports(request: web.Request) -> web.Response:
    """Every signed version of a referral's consultation report, oldest first, for those who see its records."""
    async with request.app[DATABASE].session() as session:
        rows = await reports.list_for(session, caller(request).principal, referral_id(request))
        described = [await reports.shown(session, row) for row in rows]
    return json_response({"reports": described})


@routes.post("/api/referrals/{referral_id}/reports")
@accepts(ReportInput)
@answers(reports.ReportShown, status=201, description="The signed report.")
async def sign_report(request: web.Request) -> web.Response:
    """The booked specialist signs the consultation report: it is rendered as a PDF in the referring doctor's
    language, signed (PAdES) with the hospital's certificate, and completes the referral. 409 if already signed
    (amend it), 422 for a diagnosis code not in the list in use."""
    body = await parse_body(request, ReportInput)
    async with request.app[DATABASE].session() as session:
        row = await reports.sign(session, caller(request).principal, referral_id(request), body,
                                 tools=_tools(request))
        described = await reports.shown(session, row)
    return json_response(described, status=201)


@routes.post("/api/reports/{report_id}/amendments")
@accepts(ReportInput)
@answers(reports.ReportShown, status=201, description="The new signed version.")
async def amend_report(request: web.Request) -> web.Response:
    """A new signed version of the report, superseding this one (the latest; 409 otherwise), which is kept."""
    body = await parse_body(request, ReportInput)
    async with request.app[DATABASE].session() as session:
        row = await reports.amend(session, caller(request).principal, path_id(request, "report_id"), body,
                                  tools=_tools(request))
        described = await reports.shown(session, row)
    return json_response(described, status=201)


@routes.post("/api/reports/{report_id}/acknowledgement")
@answers(reports.ReportShown, description="The version, acknowledged.")
async def acknowledge_report(request: web.Request) -> web.Response:
    """The referring doctor acknowledges receipt of this version (once; again changes nothing)."""
    async with request.app[DATABASE].session() as session:
        row = await reports.acknowledge(session, caller(request).principal, path_id(request, "report_id"))
        described = await reports.shown(session, row)
    return json_response(described)


def _language(request: web.Request) -> str:
    """``?locale=`` (one of ``languages``), else the reader's language."""
    asked = request.query.get("locale")
    if asked is None:
        return locale_for(request)
    if asked not in SUPPORTED_LOCALES:
        raise ValidationFailed({"locale": N_("one of the languages the report is in")})
    return asked


@routes.get("/api/reports/{report_id}/pdf")
@queries(ReportLanguage)
@answers_media("application/pdf", description="The signed PDF (PAdES).")
async def download_report(request: web.Request) -> web.Response:
    """The signed PDF in the reader's language (or ``?locale=``; every version is signed in each language the
    platform speaks, the requesting hospital's being the record copy), to those who see the referral's
    records; every download is audited."""
    row, shown, data = await reports.download(request.app[DATABASE], caller(request).principal,
                                              path_id(request, "report_id"), tools=_tools(request),
                                              locale=_language(request))
    name = f"report-{row.referral_id}-v{row.version}-{shown}.pdf"
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Security-Policy": "sandbox; default-src 'none'"})


@routes.get("/api/reports/{report_id}/verification")
@queries(ReportLanguage)
@answers(reports.VerificationShown)
async def verify_report(request: web.Request) -> web.Response:
    """Whether the stored signed PDF (in the reader's language, or ``?locale=``) still holds: its signature
    (intact, over the whole file, made with this deployment's certificate), who signed it, and its SHA-256
    against the one recorded in the audit trail."""
    found = await reports.verification(request.app[DATABASE], caller(request).principal,
                                       path_id(request, "report_id"), tools=_tools(request),
                                       locale=_language(request))
    return json_response(found.to_json())
