"""What a caller sends to act on referrals: one model per operation, parsed from a JSON body by the API and
from a form by the pages, so both paths keep the same limits."""

from __future__ import annotations

import unicodedata
from typing import Literal

import pydantic

from ..errors import N_
from ..models import ReferralState, TitleWanted, Urgency
from ..parsing import Id
from ..reports.inputs import KEPT_CONTROLS
from .flow import ReferralAction

REQUEST_TEXTS = ("question", "working_diagnosis", "history", "results")


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


# The consultation request (会诊申请单) a referral carries: the reason and clinical summary, the question put to
# the specialist (needed to submit), the working diagnosis (free text, with an ICD-10 code of the list in use
# if one fits, GET /api/icd10), relevant history and results, and the professional title wanted.
class ReferralRequestFields(_Body):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = pydantic.Field(min_length=1, max_length=500)
    summary: str = pydantic.Field(default="", max_length=20_000)
    question: str = pydantic.Field(default="", max_length=4000)
    working_diagnosis: str = pydantic.Field(default="", max_length=500)
    diagnosis_code: str = pydantic.Field(default="", max_length=16)
    history: str = pydantic.Field(default="", max_length=20_000)
    results: str = pydantic.Field(default="", max_length=20_000)
    title_wanted: TitleWanted = TitleWanted.ANY

    @pydantic.field_validator("reason", "summary", *REQUEST_TEXTS, "diagnosis_code")
    @classmethod
    def _printable(cls, value: str) -> str:
        # A record a regulator relies on keeps only what prints (and line breaks): PostgreSQL refuses NUL,
        # and an escape sequence would be invisible on the page and in the PDF.
        if any(unicodedata.category(c) == "Cc" and c not in KEPT_CONTROLS for c in value):
            raise ValueError(N_("only printable text and line breaks"))
        return value


class ReferralCreate(ReferralRequestFields):
    patient_id: Id
    specialty: str = pydantic.Field(min_length=1, max_length=64)
    urgency: Urgency
    target_hospital_id: Id
    target_specialist_id: Id | None = None
    submit: bool = True  # false keeps it a draft
    # "verbal": the patient agreed, to the referring doctor, to their records going to the partner hospital
    # (the current record-sharing text, or the one in sharing_template_id). Needed to submit.
    sharing_consent: Literal["verbal"] | None = None
    sharing_template_id: Id | None = None


# A draft's request, rewritten by its referring doctor before it is submitted (every field, as on creation).
class ReferralRequestEdit(ReferralRequestFields):
    pass


class RedirectTarget(_Body):
    hospital_id: Id
    specialist_id: Id | None = None


class ReferralActionBody(_Body):
    action: ReferralAction
    reason: str = pydantic.Field(default="", max_length=1000)
    redirect_to: RedirectTarget | None = None
    # With ``submit``, for a draft saved without it: the patient's consent to sharing their records, given
    # verbally to the referring doctor (the current text, or the one in sharing_template_id).
    sharing_consent: Literal["verbal"] | None = None
    sharing_template_id: Id | None = None


class Booking(_Body):
    specialist_id: Id
    starts_at: pydantic.AwareDatetime


class Rebooking(Booking):
    reason: str = pydantic.Field(min_length=1, max_length=1000)


# ``GET /api/referrals``: all the caller's referrals, or with ``inbox`` those waiting for the receiving side.
# (No docstring: see ReferralSearch.)
class ReferralListQuery(_Body):
    inbox: bool = pydantic.Field(default=False, description="only those waiting for the receiving side "
                                                             "(the coordinators' inbox), most urgent first")


# Finding referrals in the caller's lists: by a part of the patient's name (only among those whose records the
# caller may see) and by state; a page of PAGE_SIZE at a time, the inbox paged on its own. (No docstring: it
# would become the OpenAPI schema's description.)
class ReferralSearch(_Body):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = pydantic.Field(default=None, max_length=100)
    state: ReferralState | None = None
    page: int = pydantic.Field(default=1, ge=1, le=100_000)
    inbox_page: int = pydantic.Field(default=1, ge=1, le=100_000)
