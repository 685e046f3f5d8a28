"""What a caller sends to act on patients' records: one model per operation, so the API and any page
parse into the same limits."""

from __future__ import annotations

from typing import Annotated

import pydantic

from ..models import Sex


# A patient to register at the caller's own hospital. The national ID is checked (and hashed) by the
# operation, which knows the key. (No docstring: it would become the OpenAPI schema's description.)
class NewPatient(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = pydantic.Field(min_length=1, max_length=100)
    sex: Sex = Sex.UNKNOWN
    birth_year: Annotated[int, pydantic.Field(ge=1900, le=2100)] | None = None
    phone: str = pydantic.Field(default="", max_length=32, pattern=r"^[0-9+\- ]*$")
    national_id: str | None = pydantic.Field(default=None, max_length=32)


# Finding patients of the caller's hospital: by a part of the name, or by national ID (which wins when both
# are given, and is audited); a page of PAGE_SIZE at a time. (No docstring: see NewPatient.)
class PatientSearch(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = pydantic.Field(default=None, max_length=100)
    national_id: str | None = pydantic.Field(default=None, max_length=32)
    page: int = pydantic.Field(default=1, ge=1, le=100_000)
