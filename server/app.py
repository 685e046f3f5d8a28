"""The application factory: ``create_app(settings)`` wires settings, database, keys, routes and pages."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from signaling import endpoint as signaling_endpoint
from signaling.errors import CLOSE_GOING_AWAY
from signaling.hub import RoomHub
from signaling.log import LocalRoomLog
from signaling.redis_log import RedisRoomLog
from web import STATIC_DIR, pages
from web.render import Renderer

from .api import auth as auth_api
from .api import consultations as consultations_api
from .api import guests as guests_api
from .api import health
from .appkeys import DATABASE, HUB, KEYS, LOGIN_THROTTLE, RENDERER, SETTINGS
from .chat import chat_store
from .db import Database
from .errors import SettingsError
from .http import auth_middleware, error_middleware
from .login_throttle import LoginThrottle
from .settings import Settings
from .signing_keys import load_keyring

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])


async def prepare_database(database: Database, settings: Settings) -> None:
    """Bring the embedded database up to date; refuse to start on a shared one that is behind."""
    if settings.is_embedded_database:
        await database.upgrade()
        return
    current, head = await database.current_revision(), Database.head_revision()
    if current != head:
        raise SettingsError(
            f"The database schema is at revision {current or 'none'} but this version needs {head}: "
            "run `telemed db upgrade` first (TELEMED_DATABASE_URL names the database)."
        )


def create_app(settings: Settings, *, database: Database | None = None) -> web.Application:
    """Build the application. Pass ``database`` to share one already prepared (the CLI does, after seeding)."""
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[KEYS] = load_keyring(settings)
    app[RENDERER] = Renderer(settings)
    app[LOGIN_THROTTLE] = LoginThrottle()

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        db = database or Database(settings.database_url)
        try:
            if database is None:
                await prepare_database(db, settings)
            app[DATABASE] = db
            yield
        finally:
            await db.close()

    async def signaling_ctx(app: web.Application) -> AsyncIterator[None]:
        # Redis connects lazily: a Redis that is down at start-up shows in /readyz and in refused joins,
        # and the node recovers by itself when it returns.
        room_log = RedisRoomLog(settings.redis_url, prefix=settings.redis_prefix) if settings.redis_url \
            else LocalRoomLog()
        hub = RoomHub(room_log, node_id=settings.node_id or secrets.token_hex(4),
                      max_participants=settings.room_max_participants, grace_seconds=settings.reconnect_grace,
                      presence_ttl=settings.presence_ttl, chat_store=chat_store(app[DATABASE]))
        await hub.start()
        app[HUB] = hub
        try:
            yield
        finally:
            await hub.stop()
            await room_log.close()

    async def close_sockets(app: web.Application) -> None:
        # Without this, shutdown waits for every open WebSocket. 1001 (going away) tells browsers to
        # reconnect, to another node if there is one, and resume their seats there.
        app[HUB].close_all(CLOSE_GOING_AWAY, "server shutting down")

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(signaling_ctx)
    app.on_shutdown.append(close_sockets)
    app.on_response_prepare.append(_security_headers)
    for module in (health, auth_api, consultations_api, guests_api, signaling_endpoint, pages):
        app.add_routes(module.routes)
    app.router.add_static("/static", STATIC_DIR, append_version=True)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")  # pages and API answers hold health data
