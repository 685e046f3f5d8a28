"""Languages: negotiation from Accept-Language, and a complete Simplified Chinese catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from server.i18n import catalog_path, negotiate, translations

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("fr-FR,en;q=0.5", "en"),
        ("en;q=0.2,zh;q=0.9", "zh-CN"),
        ("de", "zh-CN"),
        ("en;q=0", "zh-CN"),
        ("en;q=abc,zh", "zh-CN"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    """Each row: an Accept-Language header and the language chosen, by quality then order: any Simplified Chinese tag is
    zh-CN, English wins when it is the supported language most preferred, English at q=0 or with a quality that cannot
    be read is passed over, and no header or no supported language gives the zh-CN default."""
    assert negotiate(header, default="zh-CN") == expected


def test_default_applies_when_nothing_matches() -> None:
    """When no supported language matches, the default the caller names is chosen, not a fixed one."""
    assert negotiate("de", default="en") == "en"


def _extracted() -> set[str]:
    method_map = [("web/templates/**.html", "jinja2"), ("web/**.py", "python"), ("server/**.py", "python")]
    options = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    return {
        message
        for _, _, message, *_ in extract_from_dir(ROOT, method_map, options, keywords={"_": None, "gettext": None,
                                                                                      "N_": None})
        if isinstance(message, str)
    }


def test_every_message_has_a_chinese_translation() -> None:
    """A string added to a template or marked with N_ without a zh_CN translation fails here."""
    with catalog_path("zh-CN").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_extracted() - translated)
    assert not missing, f"add these to {catalog_path('zh-CN')}: {missing}"


def test_catalog_compiles_and_translates() -> None:
    """The Chinese catalog compiles at first use and translates ("Log in" is 登录); English, the
    source language, shows the message as written."""
    assert translations("zh-CN").gettext("Log in") == "登录"
    assert translations("en").gettext("Log in") == "Log in"
