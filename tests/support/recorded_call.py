"""A short call recorded in-process: participants with cameras of one colour each, through the relay and the
recorder, finished into a sealed file as the server keeps it. Tests of playback check each participant's
stream shows that participant's colour."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from media.recorder import Finished, Segment, SegmentResult, finalize
from media.relay import Relay
from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.models import Recording, RecordingStatus

from .media import SolidColourTrack
from .peers import PALETTE, RelayClient, until

ATTEMPTS = 3  # recordings made until one has every camera and microphone in it


@dataclass(frozen=True)
class RecordedCall:
    path: Path  # the sealed, finished recording
    result: SegmentResult  # what the recorder wrote: its tracks, in the file's order
    finished: Finished
    colours: dict[str, int]  # participant id -> index into PALETTE of their camera's colour


async def record_call(directory: Path, key: bytes, participants: tuple[str, ...] = ("doctor", "specialist", "patient"),
                      seconds: float = 3.0, *, video_codec: str = "vp8", name: str = "call") -> RecordedCall:
    """Record ``participants`` (each camera a colour of PALETTE, in order) for ``seconds`` into
    ``directory/name.rec``, sealed under ``key``."""
    clients: dict[str, RelayClient] = {}
    relay = Relay(video_codec=video_codec, on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    colours = {pid: index % len(PALETTE) for index, pid in enumerate(participants)}
    try:
        for pid in participants:
            client = RelayClient(pid, slots=len(participants) - 1,
                                 video_codec=None if video_codec == "vp8" else video_codec.upper())
            camera = next(t.sender for t in client.pc.getTransceivers()
                          if t.kind == "video" and t.direction == "sendonly")
            camera.replaceTrack(SolidColourTrack(PALETTE[colours[pid]]))
            clients[pid] = client
            await client.join(relay)
        await until(lambda: len(relay.sources()) == 2 * len(participants)
                    and all(s.packets for s in relay.sources()), seconds=20)
        live, final = directory / f"{name}.live", directory / f"{name}.rec"
        for attempt in range(ATTEMPTS):
            publications = relay.publications()
            segment = Segment(live, key, publications)
            await asyncio.sleep(seconds)
            # On a busy machine the key frames the segment asked for may come later than ``seconds``: a file with
            # nothing muxed in it yet is no recording to test with.
            await until(lambda recording=segment: recording.result.packets > 0, seconds=20)
            segment.stop()
            result = await asyncio.to_thread(segment.join, 10)
            if len(result.tracks) == len(publications) or attempt == ATTEMPTS - 1:
                break
            # A camera whose key frame came after the segment stopped waiting for it (recorder.py's
            # WAIT_FOR_KEYFRAME_SECONDS, on a busy machine) is left out of the file, as it should be; the tests
            # need every participant in it, so record again.
            live.unlink()
    finally:
        await relay.close()
        await asyncio.gather(*(c.close() for c in clients.values()))
    finished = await asyncio.to_thread(finalize, live, final, key)
    return RecordedCall(final, result, finished, colours)


async def stored_call(app: web.Application, consultation_id: int = 1, seconds: float = 3.0, *,
                      names: dict[str, tuple[str, str]] | None = None, video_codec: str = "vp8") -> Recording:
    """A call recorded in-process and kept as the server keeps a finished recording: sealed under the
    server's recordings directory with its row (tracks, and who was seated) in the database. ``names``
    gives each participant id a (name, role); by default the demo's doctor, specialist and a patient."""
    names = names or {"doctor": ("李明 Li Ming", "county_doctor"), "specialist": ("王芳 Wang Fang", "specialist"),
                      "patient": ("张伟 Zhang Wei", "patient")}
    root: Path = app[SETTINGS].recordings_dir
    directory = root / str(consultation_id)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"call-{secrets.token_hex(4)}"
    call = await record_call(directory, app[RECORDING_KEY], tuple(names), seconds, video_codec=video_codec, name=name)
    async with app[DATABASE].session() as session:
        row = Recording(
            consultation_id=consultation_id, file=f"{consultation_id}/{name}.rec", status=RecordingStatus.READY,
            started_by="user:1", duration=call.finished.duration, size=call.finished.size,
            sha256=call.finished.sha256, tracks=json.dumps([vars(t) for t in call.result.tracks]),
            participants=json.dumps([{"participant_id": pid, "identity": f"guest:{pid}", "name": name, "role": role}
                                     for pid, (name, role) in names.items()], ensure_ascii=False))
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row
