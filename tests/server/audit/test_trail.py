"""The audit trail is a hash chain: entries appended in order verify, and any change to one is found."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlmodel import select

from server.audit import trail as audit
from server.db import Database
from server.demo import seed_demo
from server.models import AuditEvent, Notification, User


async def test_chain_verifies_and_shows_where_it_was_altered(database_url: str) -> None:
    """Six entries written at once by concurrent writers form one chain that verifies, each linked to a different
    predecessor; an entry's actor altered in the table makes verification name that entry, on both databases."""
    database = Database(database_url)
    await database.upgrade()
    try:
        await asyncio.gather(*(audit.record(database, actor=f"user:{n}", action="recording.viewed",
                                            consultation_id=1, subject="recording:1", detail={"n": n})
                               for n in range(6)))  # concurrent writers still make one chain
        events = await audit.trail(database)
        assert len(events) == 6 and audit.verify(events) is None
        assert len({e.prev_hash for e in events}) == 6

        async with database.session() as session:
            await session.exec(sa.update(AuditEvent).where(AuditEvent.id == events[3].id)
                               .values(actor="user:999"))  # type: ignore[call-overload]
            await session.commit()
        assert audit.verify(await audit.trail(database)) == events[3].id
    finally:
        await database.close()


async def _count(database: Database, model: type) -> int:
    async with database.session() as session:
        return len((await session.exec(select(model))).all())


async def test_a_change_and_its_audit_entry_land_together_or_not_at_all(database_url: str) -> None:
    """No change without its audit entry and no entry without its change: an entry that cannot be made stops the
    change's commit, a change the database refuses leaves no entry, and an entry abandoned by a rollback does not ride
    on the session's next commit."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    entries, notes = len(await audit.trail(database)), await _count(database, Notification)
    try:
        # The entry cannot be written: the change it records is not committed either.
        def broken() -> audit.Entry:
            raise RuntimeError("the entry could not be made")
        async with database.session() as session:
            session.add(Notification(user_id=1, text="kept only with its entry"))
            audit.with_commit(session, broken)
            with pytest.raises(RuntimeError):
                await session.commit()
        assert await _count(database, Notification) == notes

        # The change cannot be committed (a second user with a taken name): no entry is left behind.
        async with database.session() as session:
            taken = (await session.exec(select(User))).first()
            assert taken is not None
            session.add(User(username=taken.username, display_name="Copy", role=taken.role,
                             hospital_id=taken.hospital_id, password_hash="x"))
            audit.with_commit(session, audit.Entry("user:1", "user.created", subject="user:copy"))
            with pytest.raises(sa.exc.IntegrityError):
                await session.commit()
        assert len(await audit.trail(database)) == entries

        # An entry made before a rollback does not ride on the session's next commit.
        async with database.session() as session:
            audit.with_commit(session, audit.Entry("user:1", "abandoned"))
            await session.rollback()
            session.add(Notification(user_id=1, text="later"))
            audit.with_commit(session, lambda: audit.Entry("user:1", "notified"))
            await session.commit()
        assert [e.action for e in (await audit.trail(database))[entries:]] == ["notified"]
    finally:
        await database.close()


async def test_entries_made_in_concurrent_transactions_form_one_chain(database_url: str) -> None:
    """Eight interleaved transactions each commit a change with its entry: all eight changes and entries land, and the
    trail still verifies as one chain."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    entries, notes = len(await audit.trail(database)), await _count(database, Notification)

    async def change(n: int) -> None:
        async with database.session() as session:
            note = Notification(user_id=1, text=f"change {n}")
            session.add(note)
            await session.flush()
            await asyncio.sleep(0.01 * (n % 3))  # interleave the transactions
            audit.with_commit(session, lambda: audit.Entry(f"user:{n}", "notified", subject=f"notification:{note.id}"))
            await session.commit()
    try:
        await asyncio.gather(*(change(n) for n in range(8)))
        events = await audit.trail(database)
        assert len(events) == entries + 8 and audit.verify(events) is None
        assert await _count(database, Notification) == notes + 8
    finally:
        await database.close()


async def test_a_batcher_writes_a_crowd_of_entries_in_a_few_transactions_in_order(database_url: str) -> None:
    """Many joins at once: every entry lands, in the order added, as one chain, without a transaction each."""
    database = Database(database_url)
    await database.upgrade()
    commits = 0

    def counted(_session: object) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(audit.SyncSession, "after_commit", counted)
    try:
        batcher = audit.Batcher(database)
        for n in range(1200):
            batcher.add(audit.Entry(f"user:{n}", "consultation.joined", 1, f"participant:p{n}", {"n": n}))
        assert batcher.queued == 1200  # queued, not written, until the loop runs the writer
        await batcher.flush()
        events = await audit.trail(database)
        assert [e.subject for e in events] == [f"participant:p{n}" for n in range(1200)]
        assert audit.verify(events) is None
        assert commits <= 1200 // audit.Batcher.MAX_BATCH + 1
    finally:
        sa.event.remove(audit.SyncSession, "after_commit", counted)
        await database.close()


async def test_a_batcher_retries_a_failed_write_and_logs_what_it_could_not_write(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A batched entry whose write fails twice is written on the third try; one whose write still fails after three
    tries is left out, and the log says so, naming it."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    await database.upgrade()
    monkeypatch.setattr(audit.Batcher, "RETRY_SECONDS", (0.0, 0.0))
    failures = 2

    def flaky(_session: object) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))

    sa.event.listen(audit.SyncSession, "before_commit", flaky)
    try:
        batcher = audit.Batcher(database)
        batcher.add(audit.Entry("user:1", "consultation.joined", 1, "participant:a"))
        await batcher.flush()
        assert [e.subject for e in await audit.trail(database)] == ["participant:a"]  # the third try wrote it

        failures = 3
        batcher.add(audit.Entry("user:2", "consultation.joined", 1, "participant:b"))
        await batcher.close()
        assert len(await audit.trail(database)) == 1
        assert "audit entry not written after 3 tries" in caplog.text and "participant:b" in caplog.text
    finally:
        sa.event.remove(audit.SyncSession, "before_commit", flaky)
        await database.close()
