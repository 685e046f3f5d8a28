"""ICE servers for a browser: STUN as configured, and TURN with credentials that expire.

TURN credentials follow coturn's REST-API scheme (``use-auth-secret`` with ``static-auth-secret``): the
username is ``<expiry unix time>:<identity>`` and the password is base64(HMAC-SHA1(secret, username)),
so coturn checks them with the shared secret alone and a leaked credential stops working by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from ..settings import Settings


def turn_credential(secret: str, identity: str, expires_at: int) -> tuple[str, str]:
    username = f"{expires_at}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(settings: Settings, identity: str, *, now: float | None = None) -> list[dict[str, Any]]:
    servers = [dict(server) for server in settings.ice_servers]
    if settings.turn_urls and settings.turn_secret:
        expires_at = int(now if now is not None else time.time()) + settings.turn_credential_ttl
        username, credential = turn_credential(settings.turn_secret.reveal(), identity, expires_at)
        servers.append({"urls": list(settings.turn_urls), "username": username, "credential": credential})
    return servers
