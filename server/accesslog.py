"""Access log lines that never carry query strings, headers or guest links: tokens live there."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .client_address import client_address

# Paths whose last part is a credential (invitation links and calendar feeds carry a token in the path).
SECRET_PATH_PREFIXES = ("/visit/", "/calendar/")


def loggable_path(path: str) -> str:
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix):
            return prefix + "…"
    return path


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.1fms', client_address(request), request.method,
                         loggable_path(request.path), response.status, response.body_length, time * 1000)
