"""The signing key on embedded defaults: generated once, kept, private; a configured key wins."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.identity.signing_keys import KEY_FILE, RECORDING_KEY_FILE, load_keyring, load_recording_key
from server.settings import Settings


def test_generated_once_and_kept_across_restarts(tmp_path: Path) -> None:
    """Without a configured key, a signing key of at least 32 bytes is generated once and read back the same on the
    next start (a restart logs no one out), in a file only its owner can read, with no temporary file left beside it."""
    settings = Settings.load(environ={}, data_dir=tmp_path)
    first = load_keyring(settings)
    second = load_keyring(settings)
    assert first.current == second.current
    assert len(first.current.reveal()) >= 32
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600, "the key file must be readable by its owner only"
    assert list(tmp_path.iterdir()) == [tmp_path / KEY_FILE], "no temporary file is left behind"


def test_configured_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    """A TELEMED_JWT_SECRET is the signing key used, and no key file is written to the data directory."""
    settings = Settings.load(environ={"TELEMED_JWT_SECRET": "x" * 40}, data_dir=tmp_path)
    assert load_keyring(settings).current.reveal() == "x" * 40
    assert not (tmp_path / KEY_FILE).exists()


def test_a_damaged_key_file_stops_start_up(tmp_path: Path) -> None:
    """A key file holding too short a key stops start-up with a settings error that names TELEMED_JWT_SECRET, rather
    than signing tokens with a weak key."""
    (tmp_path / KEY_FILE).write_text("short")
    with pytest.raises(SettingsError, match="TELEMED_JWT_SECRET"):
        load_keyring(Settings.load(environ={}, data_dir=tmp_path))


def test_configured_recording_key_is_used_as_bytes_and_writes_nothing(tmp_path: Path) -> None:
    """TELEMED_RECORDING_KEY (a Secret) reaches the sealer as its 32 bytes, not as its mask."""
    settings = Settings.load(environ={"TELEMED_RECORDING_KEY": "AB" * 32}, data_dir=tmp_path)
    assert "ab" * 32 not in repr(settings) and "ab" * 32 not in f"{settings.recording_key}"
    assert load_recording_key(settings) == bytes.fromhex("ab" * 32)
    assert not (tmp_path / RECORDING_KEY_FILE).exists()


def test_generated_recording_key_is_kept_across_restarts(tmp_path: Path) -> None:
    """Without the setting, one key is generated into keys/ and read back the same on the next start."""
    settings = Settings.load(environ={}, data_dir=tmp_path)
    first = load_recording_key(settings)
    assert len(first) == 32 and load_recording_key(settings) == first
