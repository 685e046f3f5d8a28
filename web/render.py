"""Renders Jinja2 templates in the caller's language: one environment per locale, built at start-up."""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape
from sqlmodel.ext.asyncio.session import AsyncSession

from server import zones
from server.appkeys import SETTINGS
from server.errors import TelemedError
from server.http import locale_for, translator
from server.i18n import SUPPORTED_LOCALES, translations
from server.identity.auth import CALLER, caller

from . import nav
from .clock import zoned
from .refusals import error_text

LOCALE_NAMES = {"zh-CN": "简体中文", "en": "English"}


async def page_zone(request: web.Request, session: AsyncSession) -> str:
    """The zone the caller reads this page's times in: their hospital's, else the deployment's default."""
    return await zones.reader_zone(session, caller(request).principal, request.app[SETTINGS].default_timezone)


def markdown_paragraphs(text: str) -> Markup:
    """The little Markdown consent texts use: paragraphs, and lists of lines starting with "- "."""
    html: list[str] = []
    for block in text.strip().split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            html.append("<ul>" + "".join(f"<li>{escape(line[2:])}</li>" for line in lines) + "</ul>")
        elif lines:
            html.append(f"<p>{escape(' '.join(lines))}</p>")
    return Markup("".join(html))  # noqa: S704  (every piece of text above is escaped)


class Renderer:
    """Owns the template environments. One per locale keeps gettext out of shared mutable state."""

    def __init__(self) -> None:
        self._environments = {locale: self._environment(locale) for locale in SUPPORTED_LOCALES}

    @staticmethod
    def _environment(locale: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("web", "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
        # For a message that may carry user input (an error's): `_()` marks its result safe and %-formats
        # it, so `<meta>` would go out live and `%d` would raise. This looks it up, and autoescape escapes it.
        env.filters["translate"] = translations(locale).gettext
        env.filters["zoned"] = zoned
        env.filters["markdown_paragraphs"] = markdown_paragraphs
        env.globals["locale"] = locale
        env.globals["locale_names"] = LOCALE_NAMES
        return env

    def render(self, request: web.Request, template: str, context: dict[str, Any] | None = None,
               *, status: int = 200) -> web.Response:
        locale = locale_for(request)
        caller = request.get(CALLER)
        html = self._environments[locale].get_template(template).render(
            {"user": caller.user if caller else None, "request_path": request.path, **nav.context(request),
             **(context or {})}
        )
        response = web.Response(text=html, status=status, content_type="text/html")
        response.headers["Content-Language"] = locale
        return response

    def gettext(self, request: web.Request, message: str) -> str:
        return translator(request)(message)

    def error_page(self, request: web.Request, error: TelemedError) -> web.Response:
        """An error as a page in the caller's language (the API answers JSON instead)."""
        return self.render(request, "error.html", {"error": error, "message": error_text(error, translator(request))},
                           status=error.status)


RENDERER = web.AppKey("renderer", Renderer)
