"""``telemed bench mixed``: signaling latency on a node that also relays media, with the relay on the node's
own loop (``TELEMED_RELAY_WORKERS=0``, the baseline) and in its worker processes (the default).

For each of the two, one real ``telemed serve`` node: signaling clients in rooms of 2 to 4 send messages at
a fixed rate and time each delivery, as ``telemed bench signaling`` does (server/bench.py), first alone and
then while media rooms relay at least ``--streams`` video streams through the same node (each room one
publisher, a small VP8 camera with sound, and ten viewers, all real aiortc peers speaking the signaling
protocol, in a process of their own). The report gives the signaling p50 and p99 with and without the
media load, their ratio, the streams the node said it was forwarding (its /metrics), and the CPU the node
and its workers used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from media.load_camera import LoadCamera
from signaling.grants import HOST, RoomClaims
from signaling.messages import PROTOCOL_VERSION

from .bench import Setup, _run_setup
from .consultations.room_tokens import room_token
from .devprocs import TelemedNode, raise_open_file_limit
from .identity.signing_keys import load_keyring
from .settings import Settings

VIEWERS_PER_ROOM = 10
MEDIA_ROOM_BASE = 5000
CAMERA = (320, 180, 15)  # width, height, fps: small, so that the load generator can afford ten encoders


class MediaPeer:
    """One participant of a media room: a signaling socket and one peer connection to the relay."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, slots: int, publish: bool) -> None:
        self.ws = ws
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        if publish:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
            self.pc.addTransceiver(LoadCamera(CAMERA[0], CAMERA[1], fps=CAMERA[2]), direction="sendonly")
        for _ in range(slots):
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.relayed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                return
            message = json.loads(frame.data)
            if message["type"] == "ping":
                await self.ws.send_json({"type": "pong", "id": message.get("id")})
            elif message["type"] in ("joined", "mode") and message.get("mode") == "relay":
                self.relayed.set()
            elif message["type"] == "answer" and message.get("from") == "relay":
                await self.answers.put(message)

    async def connect(self) -> None:
        await asyncio.wait_for(self.relayed.wait(), 60)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.ws.send_json({"type": "offer", "to": "relay", "sdp": self.pc.localDescription.sdp,
                                 "offer_id": "bench.1"})
        answer = await asyncio.wait_for(self.answers.get(), 60)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()
        self.reader.cancel()


def _media_main(conn: Connection, url: str, tokens: list[tuple[int, str, bool]]) -> None:
    asyncio.run(_media(conn, url, tokens))


async def _media(conn: Connection, url: str, tokens: list[tuple[int, str, bool]]) -> None:
    """Join every media room's participants, connect them to the relay, say so, and hold until told to stop."""
    peers: list[MediaPeer] = []
    # limit=0: every open WebSocket holds a connection, and the default pool stops at 100.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        for room, token, publish in tokens:
            ws = await http.ws_connect(f"{url}/api/consultations/{room}/signaling", heartbeat=None, max_msg_size=0)
            await ws.send_json({"type": "join", "protocol": PROTOCOL_VERSION, "token": token})
            # A viewer needs one slot (one publisher per room); the publisher needs none.
            peers.append(MediaPeer(ws, 0 if publish else 1, publish))
        results = await asyncio.gather(*(peer.connect() for peer in peers), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        conn.send(f"{len(failed)} of {len(peers)} did not connect: {failed[0]!r}" if failed else "connected")
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)


def _media_tokens(keys_dir: Path, streams: int) -> list[tuple[int, str, bool]]:
    """Rooms of one publisher and VIEWERS_PER_ROOM viewers, enough of them for ``streams`` video streams."""
    keyring = load_keyring(Settings.load(environ={}, data_dir=keys_dir))
    tokens = []
    for index in range(-(-streams // VIEWERS_PER_ROOM)):
        room = MEDIA_ROOM_BASE + index
        for seat in range(VIEWERS_PER_ROOM + 1):
            claims = RoomClaims(identity=f"user:media-{room}-{seat}", room=f"consultation:{room}",
                                name=f"media {seat}", role="specialist", user_id=None, grants=HOST)
            tokens.append((room, room_token(keyring, "telemed", claims, ttl=3600), seat == 0))
    return tokens


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children that have been waited for (its relay workers, once gone), or
    running: each worker's own /proc is read too."""
    total = 0.0
    ticks = 100.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def _forwarded(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    text = await (await http.get(f"{url}/metrics")).text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("telemed_relay_streams{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            found[kind] = float(line.rsplit(" ", 1)[1])
    return found


async def _one(name: str, workers: str, clients: int, rate: int, seconds: float, streams: int,
               tmp: Path) -> dict[str, Any]:
    env = {"TELEMED_LOG_LEVEL": "WARNING", "TELEMED_ROOM_MAX_PARTICIPANTS": str(VIEWERS_PER_ROOM + 1),
           **({"TELEMED_RELAY_WORKERS": workers} if workers else {})}  # unset: the default, one per core
    data = tmp / name.replace(" ", "-")
    with TelemedNode(data, env) as node:
        quiet = Setup(f"{name}: signaling alone", nodes=1, clients=clients, rooms=0)
        await _run_setup(quiet, [node.url], [node], data, [rate], seconds, split_rooms=False)

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        load = context.Process(target=_media_main, args=(theirs, node.url, _media_tokens(data, streams)),
                               daemon=True)
        load.start()
        theirs.close()  # the load's end is its own now: if it dies, polling ours sees it
        try:
            if not await asyncio.get_running_loop().run_in_executor(None, ours.poll, 300):
                raise RuntimeError("the media rooms did not connect within 300 s")
            try:
                said = ours.recv()
            except EOFError:
                load.join(5)
                said = f"the load process exited (code {load.exitcode})"
            if said != "connected":
                raise RuntimeError(f"the media rooms: {said}")
            async with aiohttp.ClientSession() as http:
                for _ in range(60):  # every viewer has had its first key frame
                    forwarded = await _forwarded(http, node.url)
                    if forwarded.get("video", 0) >= streams:
                        break
                    await asyncio.sleep(1)
                await asyncio.sleep(2)
            cpu_before, wall_before = _cpu_seconds(node.pid), time.perf_counter()
            busy = Setup(f"{name}: signaling with media", nodes=1, clients=clients, rooms=0)
            await _run_setup(busy, [node.url], [node], data, [rate], seconds, split_rooms=False)
            node_cpu = (_cpu_seconds(node.pid) - cpu_before) / (time.perf_counter() - wall_before)
        finally:
            with contextlib.suppress(OSError):  # a load that died has no end to hear it
                ours.send("stop")
            load.join(30)
            if load.is_alive():
                load.kill()
    alone, loaded = quiet.phases[0].summary(), busy.phases[0].summary()
    return {
        "relay": name,
        "relay_workers": workers or "one per core",
        "streams_forwarded": forwarded,
        "node_cpu_cores_under_load": round(node_cpu, 2),
        "alone": alone,
        "with_media": loaded,
        "p99_ratio": round(loaded["latency_ms_p99"] / alone["latency_ms_p99"], 2) if alone["latency_ms_p99"] else None,
    }


async def run(clients: int, rate: int, seconds: float, streams: int) -> dict[str, Any]:
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="telemed-bench-mixed-") as tmp:
        setups = [await _one("relay on the node's loop", "0", clients, rate, seconds, streams, Path(tmp)),
                  await _one("relay in worker processes", "", clients, rate, seconds, streams, Path(tmp))]
    base, workers = setups[0]["with_media"]["latency_ms_p99"], setups[1]["with_media"]["latency_ms_p99"]
    return {
        "benchmark": "mixed",
        "clients": clients,
        "rate": rate,
        "seconds": seconds,
        "streams": streams,
        "camera": {"width": CAMERA[0], "height": CAMERA[1], "fps": CAMERA[2]},
        "setups": setups,
        "workers_p99_with_media_ratio": round(workers / base, 2) if base else None,
    }


def as_text(report: dict[str, Any]) -> str:
    lines = [f"signaling under media load: {report['clients']} clients at {report['rate']} msg/s for "
             f"{report['seconds']:.0f} s, alone and beside {report['streams']} relayed video streams "
             f"({report['camera']['width']}x{report['camera']['height']} at {report['camera']['fps']} fps, "
             f"with sound)"]
    for setup in report["setups"]:
        alone, loaded = setup["alone"], setup["with_media"]
        lines.append(f"\n{setup['relay']}")
        lines.append(f"  forwarding: {setup['streams_forwarded']}; node and workers used "
                     f"{setup['node_cpu_cores_under_load']} cores")
        lines.append(f"  alone:      p50 {alone['latency_ms_p50']} ms, p99 {alone['latency_ms_p99']} ms, "
                     f"{alone['delivered']} of {alone['sent']} delivered")
        lines.append(f"  with media: p50 {loaded['latency_ms_p50']} ms, p99 {loaded['latency_ms_p99']} ms, "
                     f"{loaded['delivered']} of {loaded['sent']} delivered ({setup['p99_ratio']}x the p99 alone)")
    lines.append(f"\nwith media, the workers' signaling p99 is {report['workers_p99_with_media_ratio']}x "
                 "that of the relay on the node's loop")
    return "\n".join(lines)


def main(clients: int, rate: int, seconds: float, streams: int, as_json: bool) -> int:
    report = asyncio.run(run(clients, rate, seconds, streams))
    print(json.dumps(report, indent=2) if as_json else as_text(report))
    return 0

