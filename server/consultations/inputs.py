"""What a caller sends to set up a consultation: one model, so the API and the page parse into the same limits."""

from __future__ import annotations

import pydantic

from ..parsing import Id

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
