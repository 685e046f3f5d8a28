"""What a specialist sends to sign or amend a consultation report: one model for the API and the page."""

from __future__ import annotations

import pydantic


# The report's findings, diagnosis (a code of the ICD-10 list in use, GET /api/icd10) and recommendations.
# (No docstring: it would become the OpenAPI schema's description.)
class ReportInput(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    findings: str = pydantic.Field(min_length=1, max_length=20_000)
    diagnosis_code: str = pydantic.Field(min_length=1, max_length=16)
    recommendations: str = pydantic.Field(default="", max_length=20_000)
