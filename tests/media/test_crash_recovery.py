"""A real server killed with SIGKILL mid-recording: at its next start the recording is finished from
what was flushed, marked interrupted, and plays."""

from __future__ import annotations

import asyncio
import io
import signal
from pathlib import Path

import aiohttp
import av

from server.devprocs import TelemedNode

from ..support.recording_node import recording_on
from ..support.signaling_client import bearer


def _live_sizes(data_dir: Path) -> set[int]:
    return {path.stat().st_size for path in data_dir.rglob("*.live")}


async def media_flushed(data_dir: Path, seconds: float = 15) -> None:
    """Until the live segment under ``data_dir`` has grown on two flushes: its media has begun to reach the
    disk. (Counting from "recording on" instead left a loaded run to spend most of its wait on the
    recorder's wait for key frames, and to keep 1.4 s.)"""
    sizes: set[int] = set()
    async with asyncio.timeout(seconds):
        while len(sizes - {0}) < 2:
            sizes |= await asyncio.to_thread(_live_sizes, data_dir)
            await asyncio.sleep(0.05)


async def test_recording_cut_off_by_sigkill_is_kept_at_the_next_start(tmp_path: Path) -> None:
    """Guards a lone node killed mid-recording: at its next start the recording is finished from what was
    flushed, ``interrupted``, with both participants' tracks, and plays (its video decodes)."""
    node = await asyncio.to_thread(TelemedNode(tmp_path).start)
    base = node.url.rstrip("/")
    async with aiohttp.ClientSession() as session:
        # the patient, beside dr.li, agrees to the recording; dr.li records it
        li, wang = await recording_on(session, base)
        try:
            await media_flushed(tmp_path)
            await asyncio.sleep(3)
            node.stop(signal.SIGKILL)
        finally:
            await li.close()
            await wang.close()

    node = await asyncio.to_thread(TelemedNode(tmp_path).start)
    base = node.url.rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            headers = await bearer(session, base, "dr.li")
            listing = await (await session.get(f"{base}/api/consultations/1/recordings", headers=headers)).json()
            [recording] = listing["recordings"]
            assert recording["status"] == "interrupted", recording
            assert recording["duration"] >= 2, recording
            assert sorted(t["kind"] for t in recording["tracks"]) == ["audio", "audio", "video", "video"]
            media = await session.get(f"{base}{recording['media_url']}", headers=headers)
            assert media.status == 200
            container = av.open(io.BytesIO(await media.read()))
            assert len(container.streams.video) == 2 and len(container.streams.audio) == 2
            video = container.streams.video[0]
            frames = [f for p in container.demux(video) for f in video.codec_context.decode(p)]
            assert len(frames) > 30
    finally:
        node.stop()
