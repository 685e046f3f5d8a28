"""Per-file data keys: each recording and attachment is sealed under a random key of its own, kept in a
database row sealed under the deployment's recording key. Deleting that row is what makes the file, and
every backup copy of it, unreadable ("crypto-shredding"); deleting the file alone would not.

Files written before per-file keys have no row and stay sealed under the recording key itself.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import DataKey

KEY_BYTES = 32
NONCE_BYTES = 12
AAD = b"telemed data key v1"


class KeyShredded(Exception):
    """The file's key was deleted by the purge: nothing can read the file any more."""


def _wrapping_key(master: bytes) -> bytes:
    # A key of its own for wrapping, so the master key never seals two kinds of thing directly.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"telemed data key wrap").derive(master)


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def wrap(master: bytes, key: bytes) -> str:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return (nonce + AESGCM(_wrapping_key(master)).encrypt(nonce, key, AAD)).hex()


def unwrap(master: bytes, wrapped: str) -> bytes:
    raw = bytes.fromhex(wrapped)
    try:
        return AESGCM(_wrapping_key(master)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], AAD)
    except InvalidTag:
        raise ValueError("this data key was not sealed under the configured recording key") from None


async def keep(session: AsyncSession, master: bytes, key: bytes) -> int:
    """Store ``key`` sealed under ``master`` in the session's transaction; its row's id."""
    row = DataKey(wrapped=wrap(master, key))
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def key_of(session: AsyncSession, master: bytes, data_key_id: int | None) -> bytes:
    """The key a file is sealed under: its own, or ``master`` for a file from before per-file keys."""
    if data_key_id is None:
        return master
    row = await session.get(DataKey, data_key_id)
    if row is None:
        raise KeyShredded(data_key_id)
    return unwrap(master, row.wrapped)
