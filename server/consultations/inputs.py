"""What a caller sends to set up a consultation: one model, so the API and the page parse into the same limits."""

from __future__ import annotations

import datetime
from typing import Literal

import pydantic

from ..errors import N_
from ..models import ConsultationStatus
from ..parsing import Id
from ..zones import FIRST_DAY, LAST_DAY

DURATIONS = (15, 30, 45, 60, 90, 120)  # what the page offers; the API takes any length within the limits


# A consultation planned by the caller's hospital: a title, when it starts (an aware time: the page turns
# its hospital-local time into one), how long it is planned to take, the clinicians taking part besides
# the caller, and optionally the patient (registered at the caller's hospital).
# (No docstring: it would become the OpenAPI schema's description.)
class NewConsultation(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = pydantic.Field(min_length=1, max_length=200)
    planned_start: pydantic.AwareDatetime
    # Without one the room closes TELEMED_ROOM_CLOSES_MINUTES_AFTER an hour past the start, as before.
    duration_minutes: int | None = pydantic.Field(default=None, ge=5, le=480)
    participant_ids: list[Id] = pydantic.Field(min_length=1, max_length=16)
    patient_id: Id | None = None
    # "verbal": the patient agreed, to the doctor setting it up, to their record being shared with the
    # clinicians of another hospital taking part (the current record-sharing text, or sharing_template_id).
    # Without it those clinicians, and their hospital's coordinators, see neither the patient nor the title.
    sharing_consent: Literal["verbal"] | None = None
    sharing_template_id: Id | None = None


# Finding consultations in the caller's list: a part of the patient's name or of the title (only among those
# whose records the caller may see), the status, and a range of days on the clock of the caller's hospital
# (both ends included); a page of PAGE_SIZE at a time. (No docstring: see NewConsultation.)
class ConsultationSearch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str | None = pydantic.Field(default=None, max_length=100)
    status: ConsultationStatus | None = None
    since: datetime.date | None = pydantic.Field(default=None, ge=FIRST_DAY, le=LAST_DAY)
    until: datetime.date | None = pydantic.Field(default=None, ge=FIRST_DAY, le=LAST_DAY)
    page: int = pydantic.Field(default=1, ge=1, le=100_000)

    @pydantic.field_validator("until")
    @classmethod
    def _not_before_since(cls, value: datetime.date | None,
                          info: pydantic.ValidationInfo) -> datetime.date | None:
        since = info.data.get("since")
        if value is not None and since is not None and value < since:
            raise ValueError(N_("The last day cannot come before the first."))
        return value
