"""Password hashing with scrypt, a memory-hard KDF from the standard library, and checking off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# 16 MiB of memory per hash (128 * n * r bytes): slow enough to hurt an attacker with a stolen
# table, fast enough (~50 ms here) that a login does not feel it.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 10
# Hashes a server runs at once, each taking a core for ~50-85 ms: a burst of logins queues for these
# threads and leaves a core to the event loop that relays media and signaling (on two cores, one thread).
CHECKING_THREADS = min(4, max(1, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class ScryptParams:
    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=256 * params.n * params.r + 1024 * 1024,
        dklen=KEY_BYTES,
    )


def hash_password(password: str, params: ScryptParams = ScryptParams()) -> str:
    """Return ``scrypt$n$r$p$salt$key``: the parameters travel with the hash so they can be raised later."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of a password against a stored hash; a malformed hash never verifies."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        params = ScryptParams(int(n), int(r), int(p))
        expected = _unb64(key)
        actual = _derive(password, _unb64(salt), params)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str, params: ScryptParams = ScryptParams()) -> bool:
    """True when the stored hash was made with weaker parameters than the current ones."""
    try:
        _, n, r, p, _, _ = encoded.split("$")
        return (int(n), int(r), int(p)) < (params.n, params.r, params.p)
    except ValueError:
        return True


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    return None


class PasswordChecker:
    """Checks passwords off the event loop, on a few threads of its own (scrypt releases the GIL).

    The server's one way to verify a password; the CLI and the demo seeding may call ``hash_password``
    directly, having no loop to keep free.
    """

    def __init__(self, threads: int = CHECKING_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="telemed-password")

    async def verify(self, password: str, encoded: str) -> bool:
        """``verify_password`` on one of the checker's threads; waits its turn when they are all busy."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password, encoded)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
