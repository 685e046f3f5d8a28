"""What a caller sends to act on referrals: one model per operation, parsed from a JSON body by the API and
from a form by the pages, so both paths keep the same limits."""

from __future__ import annotations

from typing import Literal

import pydantic

from ..models import ReferralState, Urgency
from ..parsing import Id
from .flow import ReferralAction


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ReferralCreate(_Body):
    patient_id: Id
    specialty: str = pydantic.Field(min_length=1, max_length=64)
    urgency: Urgency
    reason: str = pydantic.Field(min_length=1, max_length=500)
    summary: str = pydantic.Field(default="", max_length=20_000)
    target_hospital_id: Id
    target_specialist_id: Id | None = None
    submit: bool = True  # false keeps it a draft
    # "verbal": the patient agreed, to the referring doctor, to their records going to the partner hospital
    # (the current record-sharing text, or the one in sharing_template_id). Needed to submit.
    sharing_consent: Literal["verbal"] | None = None
    sharing_template_id: Id | None = None


class RedirectTarget(_Body):
    hospital_id: Id
    specialist_id: Id | None = None


class ReferralActionBody(_Body):
    action: ReferralAction
    reason: str = pydantic.Field(default="", max_length=1000)
    redirect_to: RedirectTarget | None = None


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
