"""TURN credentials in coturn's REST-API scheme: what coturn recomputes from the shared secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

from server.consultations.ice import ice_servers_for, turn_credential
from server.settings import Settings

SECRET = "s" * 40


def test_credential_is_hmac_sha1_of_expiry_and_identity() -> None:
    """A TURN username is the expiry time and the identity, and its password the base64 HMAC-SHA1 of that username under
    the shared secret: what coturn recomputes to let the browser use the relay."""
    username, password = turn_credential(SECRET, "user:7", 1_800_000_000)
    assert username == "1800000000:user:7"
    assert base64.b64decode(password) == hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()


def test_ice_servers_add_turn_with_expiring_credentials_only_when_configured() -> None:
    """Without TURN settings a caller gets the STUN servers configured and nothing more; with them, a TURN server whose
    username expires the configured lifetime from now and whose credential is computed for that caller, a guest
    included."""
    plain = Settings.load({"TELEMED_ICE_SERVERS": "stun:stun.example.cn:3478"})
    assert ice_servers_for(plain, "user:7") == [{"urls": "stun:stun.example.cn:3478"}]
    turn = Settings.load({"TELEMED_TURN_URLS": "turn:turn.example.cn:3478?transport=udp",
                          "TELEMED_TURN_SECRET": SECRET, "TELEMED_TURN_CREDENTIAL_TTL": "600"})
    [server] = ice_servers_for(turn, "guest:abc", now=1000)
    assert server["urls"] == ["turn:turn.example.cn:3478?transport=udp"]
    assert server["username"] == "1600:guest:abc"
    assert server["credential"] == turn_credential(SECRET, "guest:abc", 1600)[1]
