"""What a specialist sends to sign or amend a consultation report: one model for the API and the page."""

from __future__ import annotations

import unicodedata

import pydantic

from ..errors import N_

KEPT_CONTROLS = frozenset("\n\r\t")


# The report's findings, diagnosis (a code of the ICD-10 list in use, GET /api/icd10) and recommendations.
# (No docstring: it would become the OpenAPI schema's description.)
class ReportInput(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    findings: str = pydantic.Field(min_length=1, max_length=20_000)
    diagnosis_code: str = pydantic.Field(min_length=1, max_length=16)
    recommendations: str = pydantic.Field(default="", max_length=20_000)

    @pydantic.field_validator("findings", "diagnosis_code", "recommendations")
    @classmethod
    def _printable(cls, value: str) -> str:
        # A signed record keeps only what prints (and line breaks): a NUL or an escape sequence would be
        # invisible in the PDF yet part of what was signed, and PostgreSQL refuses NUL in text.
        if any(unicodedata.category(c) == "Cc" and c not in KEPT_CONTROLS for c in value):
            raise ValueError(N_("only printable text and line breaks"))
        return value
