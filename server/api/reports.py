"""REST: the specialist's signed consultation reports, their verification, and the ICD-10 code list."""

from __future__ import annotations

import pydantic
from aiohttp import web

from ..appkeys import DATABASE
from ..http import json_response, locale_for, parse_form
from ..identity.auth import caller
from ..reports import icd10

routes = web.RouteTableDef()


# What the ICD-10 autocomplete sends. (No docstring: it would become the OpenAPI schema's description.)
class Icd10Query(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str = pydantic.Field(default="", max_length=100)


@routes.get("/api/icd10")
async def search_icd10(request: web.Request) -> web.Response:
    """Diagnoses for a report's autocomplete: ``?q=`` the start of a code or a part of a title; up to 20, codes
    that start with it first, titles in the reader's language. The hospital's own list once it loaded one."""
    caller(request)
    query = parse_form(request.query, Icd10Query)
    locale = locale_for(request)
    async with request.app[DATABASE].session() as session:
        found = await icd10.search(session, query.q)
    return json_response({"diagnoses": [{"code": d.code, "title": d.title(locale)} for d in found]})
