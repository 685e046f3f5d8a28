"""``telemed retention run``: a dry run lists and changes nothing; a run at a moved clock purges, says what, and
keeps what is held; a malformed ``--now`` is refused with a message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from media.sealed import SealedWriter
from server.db import Database
from server.identity.signing_keys import load_recording_key
from server.models import LegalHold, Recording, RecordingStatus, utcnow
from server.retention import data_keys
from server.settings import Settings

from ..test_cli import run


def _record(data_dir: Path) -> None:
    """Two finished recordings of the demo consultation, each sealed under its own key."""

    async def work() -> None:
        master = load_recording_key(Settings.load(environ={}, data_dir=data_dir))
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'telemed.db'}")
        root = data_dir / "recordings"
        async with database.session() as session:
            for name in ("a", "b"):
                own = data_keys.new_key()
                row = Recording(consultation_id=1, file=f"1/{name}.rec", status=RecordingStatus.READY,
                                started_by="x", ended_at=utcnow(),
                                data_key_id=await data_keys.keep(session, master, own))
                session.add(row)
                (root / "1").mkdir(parents=True, exist_ok=True)
                writer = SealedWriter(root / row.file, own)
                writer.write(b"media")
                writer.close()
            await session.commit()
        await database.close()
    asyncio.run(work())


def _hold(data_dir: Path, *, release: bool = False) -> None:
    async def work() -> None:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'telemed.db'}")
        async with database.session() as session:
            if release:
                hold = await session.get(LegalHold, 1)
                assert hold is not None
                hold.released_at, hold.released_by = utcnow(), 1
                session.add(hold)
            else:
                session.add(LegalHold(consultation_id=1, reason="court order", placed_by=1))
            await session.commit()
        await database.close()
    asyncio.run(work())


def test_dry_run_then_held_then_purged(tmp_path: Path) -> None:
    """Nothing is due today; at a moved clock a dry run lists both and deletes nothing; a hold keeps both; once
    it is released a run purges both and removes their files."""
    assert run("demo", data_dir=tmp_path).returncode == 0
    _record(tmp_path)
    recordings = tmp_path / "recordings" / "1"
    assert Settings.load(environ={}, data_dir=tmp_path).recordings_dir == tmp_path / "recordings"

    nothing = run("retention", "run", data_dir=tmp_path)
    assert nothing.returncode == 0 and "0 purged, 0 held" in nothing.stdout, nothing.stderr

    dry = run("retention", "run", "--dry-run", "--now", "2099-01-01", data_dir=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would purge recording 1 " in dry.stdout and "2 would purge" in dry.stdout
    assert sorted(p.name for p in recordings.iterdir()) == ["a.rec", "b.rec"]

    _hold(tmp_path)
    held = run("retention", "run", "--now", "2099-01-01T08:00:00+08:00", data_dir=tmp_path)
    assert held.returncode == 0 and "0 purged, 2 held" in held.stdout and "kept by a legal hold" in held.stdout
    assert "2099-01-01T00:00:00+00:00" in held.stdout, "--now is read in its own zone and told in UTC"
    assert sorted(p.name for p in recordings.iterdir()) == ["a.rec", "b.rec"]

    _hold(tmp_path, release=True)
    purged = run("retention", "run", "--now", "2099-01-01", data_dir=tmp_path)
    assert purged.returncode == 0 and "2 purged, 0 held, 2 file(s) removed" in purged.stdout, purged.stdout
    assert list(recordings.iterdir()) == []
    assert "0 purged" in run("retention", "run", "--now", "2099-01-01", data_dir=tmp_path).stdout


def test_a_malformed_now_is_refused(tmp_path: Path) -> None:
    """A --now that is not an ISO 8601 date or time is refused with exit status 2 and a message saying so."""
    result = run("retention", "run", "--now", "next tuesday", data_dir=tmp_path)
    assert result.returncode == 2 and "is not an ISO 8601 date or time" in result.stderr
