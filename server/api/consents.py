"""REST: consent texts, a patient's verbal consent recorded by their doctor, consents of a consultation,
and withdrawal (which takes effect at once)."""

from __future__ import annotations

import pydantic
from aiohttp import web

from .. import idempotency
from ..appkeys import DATABASE, ROOMS
from ..consent import records as consents
from ..consent import templates as consent_templates
from ..consent.records import How, VerbalConsent
from ..http import answer_once, json_response, locale_for, parse_body, path_id
from ..identity.auth import caller
from ..models import Consent, ConsentPurpose
from ..openapi import accepts, answers, idempotent, queries
from .consultations import consultation_id

routes = web.RouteTableDef()


# The query of the consent texts. (No docstring: see reports.Icd10Query.)
class TemplateQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    locale: str | None = pydantic.Field(default=None, description="the language, else the reader's")


async def given_answer(given: consents.Given) -> idempotency.Answer:
    """The answer to a consent given: 201 and the consent, with its text's version and language."""
    return idempotency.Answer.of(201, consents.describe(*given))


async def withdrawn_answer(consent: Consent) -> idempotency.Answer:
    return idempotency.Answer.of(200, consents.describe(consent))


@routes.get("/api/consent-templates")
@queries(TemplateQuery)
@answers(consent_templates.TemplateList)
async def list_templates(request: web.Request) -> web.Response:
    """The current text of each purpose, in the caller's language (``?locale=en|zh-CN`` to choose)."""
    locale = request.query.get("locale") or locale_for(request)
    async with request.app[DATABASE].session() as session:
        texts = [await consent_templates.current(session, purpose, locale) for purpose in ConsentPurpose]
    return json_response(consent_templates.TemplateList(templates=[consent_templates.shown(t) for t in texts]))


@routes.get("/api/consultations/{consultation_id}/consents")
@answers(consents.ConsentList)
async def consultation_consents(request: web.Request) -> web.Response:
    """Every consent given in this consultation, standing or withdrawn, for its participants."""
    async with request.app[DATABASE].session() as session:
        shown = await consents.list_for_consultation(session, caller(request).principal, consultation_id(request))
    return json_response(consents.ConsentList(consents=shown))


@routes.post("/api/consultations/{consultation_id}/consents")
@answers(consents.ConsentShown, status=201, description="The consent, recorded.")
@accepts(VerbalConsent)
@idempotent
async def record_verbal_consent(request: web.Request) -> web.Response:
    """A participating clinician records the patient's verbal consent (the patient is with them, without a
    device of their own), for the video visit or for recording; a clinician of the patient's own hospital, to
    sharing their record with the other hospitals taking part in a consultation set up without a referral.
    The clinician is named on the record. Once per ``Idempotency-Key``."""
    who = caller(request).principal
    body = await parse_body(request, VerbalConsent)
    return await answer_once(
        request, idempotency.of_user(who.user_id), body, given_answer,
        lambda reply: consents.record_verbal(request.app[DATABASE], request.app[ROOMS], who, consultation_id(request),
                                             body, locale=locale_for(request), how=How.verbal(request, who.user_id),
                                             reply=reply))


@routes.post("/api/consents/{consent_id}/withdraw")
@answers(consents.ConsentShown, description="The consent, withdrawn.")
async def withdraw_consent(request: web.Request) -> web.Response:
    """Withdraw a consent now. Clinicians withdraw their own; a patient's is withdrawn on their word by the
    referring doctor (record sharing of a referral), a clinician of the patient's hospital taking part (record
    sharing of a consultation without a referral) or by a participating clinician (video, recording)."""
    return json_response(await consents.withdraw_as(request.app[DATABASE], request.app[ROOMS],
                                                    caller(request).principal, path_id(request, "consent_id")))
