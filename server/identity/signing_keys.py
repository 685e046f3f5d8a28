"""Where keys come from: a setting, or a key generated once and kept in the data directory.

The token-signing key, and the recordings' key (which is kept in ``keys/``, apart from the recordings).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ..errors import SettingsError
from ..settings import MIN_SECRET_BYTES, Secret, Settings
from .tokens import KeyRing

KEY_FILE = "jwt-signing-key"
RECORDING_KEY_FILE = "keys/recording-key"
RECORDING_KEY_BYTES = 32


def load_keyring(settings: Settings) -> KeyRing:
    """The configured key, else the data directory's key file, created on first use.

    Keeping the generated key on disk means a restart does not log everyone out.
    """
    current = settings.jwt_secret or _key_from_file(settings.data_dir / KEY_FILE)
    return KeyRing(current=current, previous=settings.jwt_previous_secrets)


def load_recording_key(settings: Settings) -> bytes:
    """The AES-256 key recordings are sealed with: the setting, else a key generated once (development)."""
    if settings.recording_key:
        return bytes.fromhex(settings.recording_key.reveal())
    text = _generated(settings.data_dir / RECORDING_KEY_FILE, lambda: secrets.token_hex(RECORDING_KEY_BYTES))
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != RECORDING_KEY_BYTES:
        raise SettingsError(f"{settings.data_dir / RECORDING_KEY_FILE} does not hold 64 hex digits; "
                            "restore it (recordings sealed with it are unreadable without it) or set "
                            "TELEMED_RECORDING_KEY.")
    return key


def _generated(path: Path, generate: Callable[[], str]) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written aside, then linked into place: link() fails if the file exists, so two processes
        # starting at once agree on one key and neither ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _key_from_file(path: Path) -> Secret:
    key = _generated(path, lambda: secrets.token_urlsafe(48))
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"{path} holds a signing key shorter than {MIN_SECRET_BYTES} bytes; "
                            "delete it to have a new one generated, or set TELEMED_JWT_SECRET.")
    return Secret(key)
