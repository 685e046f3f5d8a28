"""Finishing a lost node's recordings (server/consultations/recovery.py), on real files: a real process
writes the live file holding its lock and is SIGKILLed; two nodes race to finish it; a kill that cut off the
finish itself (a half-written finished file, or a finished file the database never heard of)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp.test_utils import TestClient
from sqlmodel import select

from media.recorder import Finished, SegmentResult, TrackInfo
from media.sealed import SealedReader
from media.session import SegmentFile
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.consultations.recordings import DatabaseRecordingStore, segment_file
from server.consultations.recovery import recover_lost
from server.models import AuditEvent, Recording, RecordingStatus

from ...support.recorded_call import record_call

ROOT = Path(__file__).resolve().parents[3]
DEAD = "node-a.0dead0"


async def gone(node: str) -> bool:
    return True


async def alive(node: str) -> bool:
    return False


async def _row(client: TestClient, file: str, node: str | None = DEAD) -> Recording:
    async with client.app[DATABASE].session() as session:
        row = Recording(consultation_id=1, file=file, started_by="user:1", node=node)
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row


async def _fresh(client: TestClient, row: Recording) -> Recording:
    async with client.app[DATABASE].session() as session:
        fresh = await session.get(Recording, row.id)
    assert fresh is not None
    return fresh


async def _recovered_entries(client: TestClient) -> list[AuditEvent]:
    async with client.app[DATABASE].session() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == "recording.recovered"))).all())


@asynccontextmanager
async def writer(directory: Path, key: bytes) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process recording a relay call into ``directory/segment.live`` (holding its lock) until killed."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.recording_child", str(directory), key.hex(), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"recording\n"  # type: ignore[union-attr]
        yield child
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


def _recover(client: TestClient, node: str, verdict=gone):  # type: ignore[no-untyped-def]
    return recover_lost(client.app[DATABASE], client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY],
                        node=node, gone=verdict)


async def test_a_lost_nodes_recording_is_finished_by_one_node_once_its_writer_let_go(client: TestClient) -> None:
    """Guards who finishes a lost node's recording: nobody while a process still holds the live file (the
    node only looked lost), nor while its node is alive; once the writer is killed, of two nodes racing
    exactly one finishes it: ``interrupted``, sealed and whole, the live file gone, one audit entry, and the
    recording names the node that finished it."""
    root, key = client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY]
    row = await _row(client, "1/segment.rec")
    async with writer(root / "1", key) as child:
        await asyncio.sleep(4)  # some seconds flushed
        assert await _recover(client, "node-b.1") == 0, "the writer holds its file"
        assert (await _fresh(client, row)).status is RecordingStatus.RECORDING
        child.kill()
    assert await _recover(client, "node-b.1", alive) == 0, "its node is alive: not ours to finish"
    assert (await _fresh(client, row)).status is RecordingStatus.RECORDING

    results = await asyncio.gather(_recover(client, "node-b.1"), _recover(client, "node-c.1"))
    assert sorted(results) == [0, 1], results
    done = await _fresh(client, row)
    assert done.status is RecordingStatus.INTERRUPTED and done.node in ("node-b.1", "node-c.1")
    assert not (root / "1" / "segment.live").exists()
    reader = SealedReader(root / done.file, key)
    assert reader.complete and reader.sha256() == done.sha256 and done.duration and done.duration > 0.5
    assert len(await _recovered_entries(client)) == 1
    assert await _recover(client, "node-c.1") == 0, "finished once"


async def test_a_finish_the_kill_cut_off_is_redone(client: TestClient) -> None:
    """Guards a node killed while it finished a segment: the live file is still there, beside a finished file
    half written; the node that takes it over writes the finished file again, whole."""
    root, key = client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY]
    row = await _row(client, "1/segment.rec")
    async with writer(root / "1", key) as child:
        await asyncio.sleep(4)
        child.kill()
    (root / row.file).write_bytes(b"TMREC\x01 half of a finished file")
    assert await _recover(client, "node-b.1") == 1
    done = await _fresh(client, row)
    assert done.status is RecordingStatus.INTERRUPTED
    assert SealedReader(root / done.file, key).sha256() == done.sha256


async def test_a_finished_file_the_database_never_heard_of_is_kept(client: TestClient) -> None:
    """Guards a node killed after it finished a segment's file and before it said so: the finished file is read
    back (its hash, size, length and tracks) and kept, ``interrupted``. The writer, were it only slow, finds its
    recording taken over and leaves the row as the new owner wrote it."""
    root, key = client.app[SETTINGS].recordings_dir, client.app[RECORDING_KEY]
    (root / "1").mkdir(parents=True, exist_ok=True)
    call = await record_call(root / "1", key, ("doctor", "specialist"), 1.5, name="call")
    row = await _row(client, "1/call.rec", node="node-a.1")
    assert await _recover(client, "node-b.1") == 1
    done = await _fresh(client, row)
    assert done.status is RecordingStatus.INTERRUPTED and done.node == "node-b.1"
    assert (done.sha256, done.size) == (call.finished.sha256, call.finished.size)
    assert abs((done.duration or 0) - call.finished.duration) < 0.1
    assert sorted(s["kind"] for s in call.finished.streams) == ["audio", "audio", "video", "video"]

    store = DatabaseRecordingStore(client.app[DATABASE], root, key, node="node-a.1")
    segment = segment_file(root, row)
    late = SegmentResult(segment.live_path, 0.0, [TrackInfo("doctor", "video", "VP8", 320, 240)])
    await store.finish(SegmentFile(segment.recording_id, segment.live_path, segment.final_path, None), late,
                       Finished(duration=9.0, sha256="0" * 64, size=1, complete=True, streams=[]))
    after = await _fresh(client, row)
    assert (after.status, after.sha256, after.node) == (RecordingStatus.INTERRUPTED, call.finished.sha256, "node-b.1")
