"""Access log lines that never carry query strings, headers or guest links (tokens live there), and the request
id that ties a request's access line to every other line logged while it was served."""

from __future__ import annotations

import re
import secrets

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from signaling import logcontext

from .client_address import client_address

# Paths whose last part is a credential (invitation links and calendar feeds carry a token in the path).
SECRET_PATH_PREFIXES = ("/visit/", "/calendar/")
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
# A proxy's id is kept only if it cannot smuggle anything into a log line: short, and of plain characters.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def loggable_path(path: str) -> str:
    for prefix in SECRET_PATH_PREFIXES:
        if path.startswith(prefix):
            return prefix + "…"
    return path


def request_id_for(incoming: str | None) -> str:
    """The incoming X-Request-Id if it is a short safe token (a proxy's, to follow a request across both
    logs), else a new one."""
    if incoming is not None and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, in the log context for as long as it is served (a WebSocket's whole life)."""
    request[REQUEST_ID] = rid = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    token = logcontext.request_id.set(rid)
    try:
        return await handler(request)
    finally:
        # A keep-alive connection serves its next request in the same task: it must not inherit this id.
        logcontext.request_id.reset(token)


async def request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the id goes back in the answer, error pages and WebSocket upgrades included."""
    if (rid := request.get(REQUEST_ID)) is not None:
        response.headers[REQUEST_ID_HEADER] = rid


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.1fms', client_address(request), request.method,
                         loggable_path(request.path), response.status, response.body_length, time * 1000,
                         extra={"request_id": request.get(REQUEST_ID)})
