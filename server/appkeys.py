"""Typed keys for what the application holds: settings, database, keys, templates, signaling hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .db import Database
from .login_throttle import Throttle
from .passwords import PasswordChecker
from .settings import Settings
from .tokens import KeyRing

if TYPE_CHECKING:
    from media.session import RelaySession
    from signaling.hub import RoomHub
    from web.render import Renderer

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
KEYS = web.AppKey("keys", KeyRing)
RENDERER: web.AppKey[Renderer] = web.AppKey("renderer")
HUB: web.AppKey[RoomHub] = web.AppKey("hub")
LOGIN_THROTTLE = web.AppKey("login_throttle", Throttle)
PASSWORDS = web.AppKey("passwords", PasswordChecker)
RECORDING_KEY = web.AppKey("recording_key", bytes)
RELAYS: web.AppKey[dict[str, RelaySession]] = web.AppKey("relays")
