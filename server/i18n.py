"""Languages of the product: gettext catalogs compiled in memory from the .po files, and locale negotiation."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
# Strings in templates are written in English, so English needs no catalog.
SUPPORTED_LOCALES = ("zh-CN", "en")
SOURCE_LOCALE = "en"


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The locale's translations. Compiled from the .po at first use, so there is no build step to forget."""
    if locale == SOURCE_LOCALE:
        return gettext.NullTranslations()
    with catalog_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(accept_language: str | None, default: str) -> str:
    """The supported locale the browser prefers most (``Accept-Language``), else ``default``."""
    supported = {_normalise(locale): locale for locale in SUPPORTED_LOCALES}
    for tag in _by_preference(accept_language or ""):
        match = negotiate_locale([_normalise(tag)], list(supported), sep="_")
        if match:
            return supported[match]
    return default


def _by_preference(accept_language: str) -> list[str]:
    """Language tags by quality, highest first; equal qualities keep the header's order."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def _normalise(tag: str) -> str:
    """zh, zh-Hans, zh-Hans-CN, zh_CN all mean Simplified Chinese here."""
    try:
        locale = Locale.parse(tag.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return tag
    if locale.language == "zh" and locale.script in (None, "Hans") and locale.territory in (None, "CN", "SG"):
        return "zh_CN"
    return str(locale) if locale.language != "en" else "en"
