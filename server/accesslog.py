"""Access log lines that never carry query strings or headers: tokens and invitation codes live there."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.1fms', request.remote, request.method, request.path,
                         response.status, response.body_length, time * 1000)
