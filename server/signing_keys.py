"""Where the token-signing key comes from: a setting, or a key generated once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .errors import SettingsError
from .settings import MIN_SECRET_BYTES, Secret, Settings
from .tokens import KeyRing

KEY_FILE = "jwt-signing-key"


def load_keyring(settings: Settings) -> KeyRing:
    """The configured key, else the data directory's key file, created on first use.

    Keeping the generated key on disk means a restart does not log everyone out.
    """
    current = settings.jwt_secret or _key_from_file(settings.data_dir / KEY_FILE)
    return KeyRing(current=current, previous=settings.jwt_previous_secrets)


def _key_from_file(path: Path) -> Secret:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: link() fails if the file exists, so two processes
        # starting at once agree on one key and neither ever reads a half-written file.
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"{path} holds a signing key shorter than {MIN_SECRET_BYTES} bytes; "
                            "delete it to have a new one generated, or set TELEMED_JWT_SECRET.")
    return Secret(key)
