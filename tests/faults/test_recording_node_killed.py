"""The node recording a call is SIGKILLed: another node finishes the recording from what was flushed (kept,
``interrupted``, sealed and playable), without the killed node starting again, and only one of the nodes left
does it."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable

import aiohttp
import av
import pytest
from sqlmodel import select

from server.db import Database
from server.models import AuditEvent, Recording
from server.settings import Settings

from ..support.cluster import Cluster
from ..support.recording_node import recording_on
from ..support.signaling_client import bearer
from .conftest import PRESENCE_TTL

pytestmark = pytest.mark.faults

# Lost once its presence runs out (within the TTL), seen at the next sweep (every TTL), then remuxed.
KILL_TO_FINISHED = 2 * PRESENCE_TTL + 10


async def test_a_killed_nodes_recording_is_finished_by_one_other_node(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards recordings against a node's death: SIGKILL the node recording a call (its relay worker dies with
    it, and the lock on the live file goes), and one of the two nodes left, with nobody of that call on it,
    finishes the recording within two presence TTLs and the remux: ``interrupted``, with what was flushed
    (tracks, duration), sealed, and playable through that node; the killed node stays down. Exactly one
    node finishes it: one ``recording.recovered`` entry, and the recording names that node."""
    a, b = cluster.url("a").rstrip("/"), cluster.url("b").rstrip("/")
    li, wang = await recording_on(http, a)
    try:
        await asyncio.sleep(4)
        killed = time.monotonic()
        await cluster.kill("a")
    finally:
        await li.close()
        await wang.close()

    headers = await bearer(http, b, "dr.li")
    recording: dict = {}
    while time.monotonic() - killed < KILL_TO_FINISHED + 10:
        listing = await (await http.get(f"{b}/api/consultations/1/recordings", headers=headers)).json()
        [recording] = listing["recordings"]
        if recording["status"] != "recording":
            break
        await asyncio.sleep(0.2)
    took = time.monotonic() - killed
    recovery("kill to recording finished by another node", took)
    assert recording["status"] == "interrupted", recording
    assert took < KILL_TO_FINISHED, f"finished {took:.1f} s after the kill"
    assert not cluster["a"].running, "finished without the killed node starting again"
    assert recording["duration"] >= 2, recording
    assert sorted(t["kind"] for t in recording["tracks"]) == ["audio", "audio", "video", "video"]
    media = await http.get(f"{b}{recording['media_url']}", headers=headers)
    assert media.status == 200
    container = av.open(io.BytesIO(await media.read()))
    video = container.streams.video[0]
    assert len([f for p in container.demux(video) for f in video.codec_context.decode(p)]) > 30

    database = Database(Settings.load(environ={}, data_dir=cluster["b"].data_dir).database_url)
    try:
        async with database.session() as session:
            row = (await session.exec(select(Recording))).one()
            recovered = (await session.exec(select(AuditEvent).where(
                AuditEvent.action == "recording.recovered"))).all()
    finally:
        await database.close()
    assert len(recovered) == 1, [e.detail for e in recovered]
    assert row.node is not None and row.node.split(".")[0] in ("node-b", "node-c"), row.node
    assert not (cluster["b"].data_dir / "recordings" / row.file.replace(".rec", ".live")).exists()
