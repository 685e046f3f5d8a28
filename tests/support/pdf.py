"""A PDF's text, extracted back out as a reader's tool would, with the whitespace the layout adds taken out."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader


def pdf_text(pdf: bytes) -> str:
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
