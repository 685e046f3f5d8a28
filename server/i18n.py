"""Languages of the product: gettext catalogs compiled in memory from the .po files, messages that carry their
context (one English word, two meanings), and locale negotiation."""

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


class Contextual(str):
    """A message whose translation depends on where it is shown (``msgctxt`` in the catalog): "Recording" is
    录像 as a consent's heading and 录像中 as the room's live indicator. It is its English words, so it can be
    shown, compared and formatted like any message; ``Translations`` looks it up under its context."""

    context: str

    def __new__(cls, context: str, message: str) -> Contextual:
        made = super().__new__(cls, message)
        made.context = context
        return made


class Translations:
    """One locale's gettext, which also knows messages marked with a context (``Contextual``) and can say
    whether the catalog has words for a message (else its English would show in a page of another language)."""

    def __init__(self, inner: gettext.NullTranslations, *, source: bool) -> None:
        self._inner = inner
        self.source = source  # the language messages are written in: every message is known

    def gettext(self, message: str) -> str:
        if isinstance(message, Contextual):
            return self._inner.pgettext(message.context, str(message))
        return self._inner.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._inner.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._inner.pgettext(context, message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self._inner.npgettext(context, singular, plural, n)

    def knows(self, message: str) -> bool:
        """Whether ``message`` has words in this language (in the source language, every message has)."""
        return self.source or self.gettext(message) != message


@cache
def translations(locale: str) -> Translations:
    """The locale's translations. Compiled from the .po at first use, so there is no build step to forget."""
    if locale == SOURCE_LOCALE:
        return Translations(gettext.NullTranslations(), source=True)
    with catalog_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(gettext.GNUTranslations(buffer), source=False)


def knows(gettext: object, message: str) -> bool:
    """Whether a gettext function (``translations(locale).gettext``) has words for ``message``; any other
    function is taken to."""
    owner = getattr(gettext, "__self__", None)
    return not isinstance(owner, Translations) or owner.knows(message)


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
