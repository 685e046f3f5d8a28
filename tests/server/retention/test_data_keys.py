"""Per-file data keys: sealed under the deployment's key, unreadable under any other, and absent for files
written before them (which keep the deployment's key)."""

from __future__ import annotations

import secrets

import pytest

from server.retention import data_keys


def test_a_wrapped_key_opens_only_under_its_master() -> None:
    """A wrapped data key does not show the key in the clear, unwraps to it under its master key, comes out different
    each time it is wrapped, and cannot be unwrapped under another master."""
    master, other, key = secrets.token_bytes(32), secrets.token_bytes(32), data_keys.new_key()
    wrapped = data_keys.wrap(master, key)
    assert key.hex() not in wrapped, "the key is not stored in the clear"
    assert data_keys.unwrap(master, wrapped) == key
    assert data_keys.wrap(master, key) != wrapped, "a fresh nonce each time"
    with pytest.raises(ValueError):
        data_keys.unwrap(other, wrapped)


async def test_a_file_without_its_own_key_uses_the_master_and_a_shredded_one_opens_nothing(client) -> None:  # type: ignore[no-untyped-def]
    """A file with no data key of its own opens with the deployment's key, a kept data key is read back as it was,
    and once its row is deleted asking for it raises KeyShredded rather than giving any key."""
    from server.appkeys import DATABASE
    from server.models import DataKey

    master = secrets.token_bytes(32)
    async with client.app[DATABASE].session() as session:
        assert await data_keys.key_of(session, master, None) == master
        own = data_keys.new_key()
        key_id = await data_keys.keep(session, master, own)
        await session.commit()
        assert await data_keys.key_of(session, master, key_id) == own
        await session.delete(await session.get(DataKey, key_id))
        await session.commit()
        with pytest.raises(data_keys.KeyShredded):
            await data_keys.key_of(session, master, key_id)
