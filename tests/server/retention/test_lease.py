"""One node at a time: the lease in the database, on SQLite and PostgreSQL, and two purges started at once on
PostgreSQL, of which only one purges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from media.sealed import SealedWriter
from server.db import Database
from server.demo import seed_demo
from server.models import AuditEvent, Recording, RecordingStatus, utcnow
from server.retention import data_keys, lease, purge, schedule

MINUTE = timedelta(minutes=1)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.upgrade()
    await seed_demo(db)
    yield db
    await db.close()


async def test_a_lease_is_one_holders_until_it_expires_or_is_released(database: Database) -> None:
    """Another holder is refused while it lasts; the holder renews it; after expiry or release anyone takes it;
    a schedule lease is not renewed by its own holder (runs stay an interval apart)."""
    now = utcnow()
    assert await lease.acquire(database, "job", "a", MINUTE, now=now)
    assert not await lease.acquire(database, "job", "b", MINUTE, now=now)
    assert await lease.acquire(database, "job", "a", MINUTE, now=now), "its holder renews it"
    assert not await lease.acquire(database, "job", "a", MINUTE, now=now, renew=False)
    assert await lease.acquire(database, "job", "b", MINUTE, now=now + 2 * MINUTE), "expired: free"
    await lease.release(database, "job", "a")  # not a's any more: nothing happens
    assert not await lease.acquire(database, "job", "a", MINUTE, now=now + 2 * MINUTE)
    await lease.release(database, "job", "b")
    assert await lease.acquire(database, "job", "a", MINUTE)
    assert await lease.acquire(database, "other", "b", MINUTE), "each job has its own lease"


async def _expired_recordings(database: Database, root: Path, master: bytes, count: int) -> None:
    async with database.session() as session:
        for n in range(count):
            own = data_keys.new_key()
            row = Recording(consultation_id=1, file=f"1/r{n}.rec", status=RecordingStatus.READY, started_by="x",
                            ended_at=utcnow(), data_key_id=await data_keys.keep(session, master, own))
            session.add(row)
            (root / "1").mkdir(parents=True, exist_ok=True)
            writer = SealedWriter(root / row.file, own)
            writer.write(b"media")
            writer.close()
        await session.commit()


async def test_two_runners_at_once_on_postgres_purge_each_recording_once(postgres_url: str, tmp_path: Path) -> None:
    """Two nodes (two engines) start a purge at the same moment: one takes the run lease and purges every
    expired recording; the other is refused, so each is purged and audited exactly once."""
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        await first.upgrade()
        await seed_demo(first)
        master = bytes(32)
        await _expired_recordings(first, tmp_path, master, 5)
        periods = purge.periods_of(3 * 365, 15 * 365)
        later = utcnow() + timedelta(days=4 * 365)
        outcomes = await asyncio.gather(
            schedule.run_exclusive(first, tmp_path, periods, "node-a", now=later),
            schedule.run_exclusive(second, tmp_path, periods, "node-b", now=later))
        ran = [o for o in outcomes if o is not None]
        assert len(ran) == 1 and len(ran[0].purged) == 5, outcomes
        async with first.session() as session:
            entries = (await session.exec(select(AuditEvent).where(AuditEvent.action == "retention.purged"))).all()
        assert sorted(json.loads(e.detail)["id"] for e in entries) == [1, 2, 3, 4, 5]
        assert not list((tmp_path / "1").iterdir())
    finally:
        await first.close()
        await second.close()


async def test_concurrent_purges_without_the_lease_still_purge_each_item_once(postgres_url: str,
                                                                              tmp_path: Path) -> None:
    """The backstop under the lease: two purges run at once anyway (a lease that expired mid-run) each claim an
    item by a conditional update, so none is audited twice."""
    first, second = Database(postgres_url), Database(postgres_url)
    try:
        await first.upgrade()
        await seed_demo(first)
        await _expired_recordings(first, tmp_path, bytes(32), 6)
        periods = purge.periods_of(3 * 365, 15 * 365)
        later = utcnow() + timedelta(days=4 * 365)
        a, b = await asyncio.gather(purge.run(first, tmp_path, periods, now=later),
                                    purge.run(second, tmp_path, periods, now=later))
        assert sorted(p["id"] for p in a.purged + b.purged) == [1, 2, 3, 4, 5, 6]
        async with first.session() as session:
            entries = (await session.exec(select(AuditEvent).where(AuditEvent.action == "retention.purged"))).all()
        assert len(entries) == 6
    finally:
        await first.close()
        await second.close()


async def test_the_schedule_runs_once_per_interval_whichever_node_checks(database: Database, tmp_path: Path) -> None:
    """Two nodes' loops checking often: the first to check purges; the other finds the schedule's lease taken
    for the interval, and neither runs again within it."""
    periods = purge.periods_of(1, 1)
    calls: list[str] = []
    real_run = purge.run

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("run")
        return await real_run(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(purge, "run", counted)
    try:
        loops = [asyncio.create_task(schedule.loop(database, tmp_path, periods, name, interval=3600,
                                                   check_every=0.05)) for name in ("a", "b")]
        await asyncio.sleep(0.6)
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    finally:
        mp.undo()
    assert calls == ["run"]


async def test_a_hold_placed_during_a_purge_waits_for_it_on_postgres(postgres_url: str) -> None:
    """The purge locks the patient's and consultation's rows while it decides and deletes; placing a hold on
    either waits until that transaction ends, so a hold never stands over an item purged after it."""
    from server.models import Role, User
    from server.permissions import Principal
    from server.retention import holds
    from server.retention.holds import PlaceHold

    database = Database(postgres_url)
    try:
        await database.upgrade()
        await seed_demo(database)
        async with database.session() as session:
            auditor = (await session.exec(select(User).where(User.role == Role.AUDITOR))).first()
        assert auditor is not None and auditor.id is not None
        who = Principal(auditor.id, auditor.role, auditor.hospital_id)

        async def place() -> None:
            async with database.session() as session:
                await holds.place(session, who, PlaceHold(patient_id=1, reason="court order"))

        async with database.session() as purging:
            await purge.lock_subjects(purging, 1, 1)
            placing = asyncio.create_task(place())
            await asyncio.sleep(0.5)
            assert not placing.done(), "the hold waits for the purge's transaction"
            await purging.commit()
        await asyncio.wait_for(placing, 5)
    finally:
        await database.close()


async def test_a_long_purge_keeps_its_lease_and_stops_when_it_is_taken(database: Database, tmp_path: Path) -> None:
    """A purge that outlasts several renewal periods keeps the run lease (nobody else can start one meanwhile);
    when another holder takes the lease anyway (this node was cut off past its expiry), the purge is stopped
    and LeaseLost raised, so two purges never run at once."""
    periods = purge.periods_of(1, 1)
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.set()
        await release.wait()
        return purge.Outcome(utcnow(), False)

    mp = pytest.MonkeyPatch()
    mp.setattr(purge, "run", slow)
    try:
        running = asyncio.create_task(schedule.run_exclusive(database, tmp_path, periods, "a",
                                                             renew_every=timedelta(seconds=0.05)))
        await started.wait()
        await asyncio.sleep(0.3)  # several renewals
        assert not await lease.acquire(database, schedule.RUN_LEASE, "b", MINUTE), "still held while it runs"
        release.set()
        assert await running is not None
        assert await lease.acquire(database, schedule.RUN_LEASE, "b", MINUTE), "released when it ends"
        await lease.release(database, schedule.RUN_LEASE, "b")

        release.clear()
        started.clear()
        running = asyncio.create_task(schedule.run_exclusive(database, tmp_path, periods, "a",
                                                             renew_every=timedelta(seconds=0.05)))
        await started.wait()
        # Another holder takes it as if it had expired (its "now" is past the lease's end).
        assert await lease.acquire(database, schedule.RUN_LEASE, "b", MINUTE, now=utcnow() + schedule.RUN_TTL * 2)
        with pytest.raises(schedule.LeaseLost):
            await asyncio.wait_for(running, 5)
    finally:
        mp.undo()


async def test_the_schedule_loop_survives_any_failure_of_one_run(database: Database, tmp_path: Path) -> None:
    """A run that fails with an unexpected error (not the database's, not the disk's) is logged and the loop
    checks again; a loop that died would silently never purge again."""
    periods = purge.periods_of(1, 1)
    calls: list[str] = []

    async def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("run")
        raise ValueError("a bug in one run")

    mp = pytest.MonkeyPatch()
    mp.setattr(purge, "run", failing)
    try:
        task = asyncio.create_task(schedule.loop(database, tmp_path, periods, "a", interval=0.1, check_every=0.15))
        await asyncio.sleep(0.8)
        assert not task.done(), "the loop is still running"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        mp.undo()
    assert len(calls) >= 2, calls
