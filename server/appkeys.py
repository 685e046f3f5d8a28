"""Typed keys for what the application holds: settings, database, keys, the error page, signaling hub, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .db import Database
from .identity.login_throttle import Throttle
from .identity.passwords import PasswordChecker
from .identity.tokens import KeyRing
from .settings import Settings

if TYPE_CHECKING:
    from media.workers import NodeRelay
    from signaling.hub import RoomHub

    from .audit.trail import Batcher
    from .consultations.room_notifier import RoomNotifier
    from .errors import TelemedError
    from .metrics import Metrics
    from .reports.service import ReportTools
    from .storage import Probe

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
KEYS = web.AppKey("keys", KeyRing)
# How a page (not the API) shows an error; the app factory fills it from the web package.
ERROR_PAGE: web.AppKey[Callable[[web.Request, TelemedError], web.Response]] = web.AppKey("error_page")
HUB: web.AppKey[RoomHub] = web.AppKey("hub")
LOGIN_THROTTLE = web.AppKey("login_throttle", Throttle)
PASSWORDS = web.AppKey("passwords", PasswordChecker)
RECORDING_KEY = web.AppKey("recording_key", bytes)
ROOMS: web.AppKey[RoomNotifier] = web.AppKey("rooms")  # what the domain tells rooms, through the hub
AUDIT: web.AppKey[Batcher] = web.AppKey("audit")  # audit entries written in batches, beside the caller
REPORTS: web.AppKey[ReportTools] = web.AppKey("reports")  # signing and reading consultation reports
RELAYS: web.AppKey[dict[str, NodeRelay]] = web.AppKey("relays")  # this node's relays, by room
STORAGE_PROBE: web.AppKey[Probe] = web.AppKey("storage_probe")  # /readyz's look at the recordings directory
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")  # this app's own Prometheus registry and its counters
