"""Consent templates: the texts people consent to, one per purpose, version and language.

The texts are files under ``server/consent/texts`` named ``<purpose>.v<version>.<locale>.md``, whose first
line is the title. They are reviewed like code; at start-up each one is published into the database,
where consents point at it. A published text never changes: editing one refuses to start, because
consents already given would then point at words nobody agreed to. Publish a new version instead; the
newest version of a purpose is the one offered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database
from ..errors import N_, Conflict, NotFound, SettingsError
from ..models import ConsentPurpose, ConsentTemplate
from ..outputs import Out

TEXTS_DIR = Path(__file__).parent / "texts"
LOCALES = ("zh_CN", "en")
_NAME = re.compile(r"^(?P<purpose>[a-z_]+)\.v(?P<version>[1-9][0-9]*)\.(?P<locale>[A-Za-z_]+)\.md$")


@dataclass(frozen=True)
class TemplateText:
    purpose: ConsentPurpose
    version: int
    locale: str
    title: str
    body: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.body}".encode()).hexdigest()


def read_texts(directory: Path = TEXTS_DIR) -> list[TemplateText]:
    """Every template file, checked: a known purpose and language, a title line, every version in both."""
    texts = []
    for path in sorted(directory.glob("*.md")):
        match = _NAME.match(path.name)
        if match is None or match["locale"] not in LOCALES or match["purpose"] not in set(ConsentPurpose):
            raise SettingsError(f"{path.name}: consent texts are named <purpose>.v<version>.<locale>.md, with "
                                f"purpose one of {', '.join(ConsentPurpose)} and locale one of {', '.join(LOCALES)}")
        head, _, body = path.read_text(encoding="utf-8").partition("\n")
        if not head.startswith("# ") or not body.strip():
            raise SettingsError(f"{path.name}: the first line is the title ('# ...'), then the text")
        texts.append(TemplateText(ConsentPurpose(match["purpose"]), int(match["version"]), match["locale"],
                                  head[2:].strip(), body.strip()))
    for purpose in ConsentPurpose:
        versions = {(t.version, t.locale) for t in texts if t.purpose == purpose}
        if not versions:
            raise SettingsError(f"there is no consent text for {purpose}")
        for version in {v for v, _ in versions}:
            missing = [locale for locale in LOCALES if (version, locale) not in versions]
            if missing:
                raise SettingsError(f"consent text {purpose} v{version} is missing in {', '.join(missing)}")
    return texts


async def publish(database: Database, texts: list[TemplateText] | None = None) -> int:
    """Put every text into the database once. Returns how many were new."""
    new = 0
    for text in texts if texts is not None else read_texts():
        async with database.session() as session:
            found = (await session.exec(select(ConsentTemplate).where(
                ConsentTemplate.purpose == text.purpose, ConsentTemplate.version == text.version,
                ConsentTemplate.locale == text.locale))).first()
            if found is not None:
                if found.sha256 != text.sha256:
                    raise SettingsError(
                        f"consent text {text.purpose} v{text.version} ({text.locale}) differs from the one "
                        "published: people consented to the published words. Put the change in a new version.")
                continue
            session.add(ConsentTemplate(purpose=text.purpose, version=text.version, locale=text.locale,
                                        title=text.title, body=text.body, sha256=text.sha256))
            try:
                await session.commit()
            except sa.exc.IntegrityError:
                await session.rollback()  # another node published it at the same moment
                continue
            new += 1
    return new


async def current(session: AsyncSession, purpose: ConsentPurpose, locale: str) -> ConsentTemplate:
    """The newest version of a purpose's text in a language (English if the language has none)."""
    locale = locale.replace("-", "_")  # pages say zh-CN, gettext catalogs and these texts zh_CN
    locale = locale if locale in LOCALES else "en"
    found = (await session.exec(
        select(ConsentTemplate).where(ConsentTemplate.purpose == purpose, ConsentTemplate.locale == locale)
        .order_by(col(ConsentTemplate.version).desc()).limit(1))).first()
    if found is None:
        raise NotFound(N_("There is no consent text for this purpose."))
    return found


async def offered(session: AsyncSession, purpose: ConsentPurpose, template_id: int | None,
                  locale: str) -> ConsentTemplate:
    """The text someone is consenting to: the one they were shown, if still current, else the current one.
    Consenting to an older version than the newest is refused: the newest is what the hospital asks."""
    newest = await current(session, purpose, locale)
    if template_id is None or template_id == newest.id:
        return newest
    shown = await session.get(ConsentTemplate, template_id)
    if shown is None or shown.purpose != purpose:
        raise NotFound(N_("There is no such consent text for this purpose."))
    if shown.version != newest.version:
        raise Conflict(N_("The consent text has changed since it was shown; please read the new one."),
                       code="consent-text-changed", current=newest.id)
    return shown


class TemplateShown(Out):
    """A consent text: its purpose, version and language, its title and body (Markdown), and the SHA-256 of
    the body a consent given to it relies on."""

    id: int
    purpose: ConsentPurpose
    version: int
    locale: str
    title: str
    body: str
    sha256: str


class TemplateList(Out):
    templates: list[TemplateShown]


def shown(template: ConsentTemplate) -> TemplateShown:
    assert template.id is not None
    return TemplateShown(id=template.id, purpose=template.purpose, version=template.version, locale=template.locale,
                         title=template.title, body=template.body, sha256=template.sha256)


def describe(template: ConsentTemplate) -> dict:
    """``shown`` as JSON, for answers still built as dicts around it."""
    return shown(template).model_dump(mode="json")
