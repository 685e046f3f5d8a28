"""Relays in worker processes, so that media work never runs on the event loop that serves signaling and HTTP.

A node starts a few workers (``python -m media.worker``), each an asyncio process running relay sessions
(session.py). The node still follows every room's log exactly as before and the room still chooses the
node: what the room delivers to the relay is passed down a worker's stdin, with the room as the relay needs
to see it (``RelayView``); what the relay says comes back up its stdout: events for the room's log, the
recording store's two calls (the node keeps the database), and a census of what it forwards for the
node's metrics. Recording files are written by the worker, into the same directory.

A worker that dies takes its relays with it: the node tells each of their rooms (``RelayLost``), which
moves the relay as when a node is lost (a new epoch, everyone reconnects to it), and a new worker takes
the dead one's place. A worker whose node dies reads the end of its stdin and exits at once.

Frames, both ways: a 4-byte big-endian length, then a JSON object with an ``op``:

- node to worker: ``hello`` (configuration and the recording key, once), ``start``, ``deliver``, ``close``,
  ``reply`` (to a ``call``), ``exit``;
- worker to node: ``submit`` (an event for the room's log), ``call`` (``begin`` or ``finish`` a recording
  segment), ``ended`` (a relay stopped), ``census``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import pydantic

from signaling import logcontext
from signaling.effects import relay_conn
from signaling.errors import SignalingError
from signaling.events import FromRelay, RelayLost, RoomEvent, decode
from signaling.hub import RoomHub
from signaling.messages import (
    MediaStateChanged,
    ParticipantLeft,
    ParticipantResumed,
    RecordingState,
    RelayedCandidate,
    RelayedOffer,
    RelayedReceiveVideo,
)
from signaling.outbox import CloseRequest

from .recorder import Finished, SegmentResult
from .session import RELAY_OUTBOX, InOrder, RecordingStore, RelaySession, RelayView, SegmentFile

log = logging.getLogger(__name__)

MAX_FRAME = 16 * 1024 * 1024
CENSUS_SECONDS = 1.0  # how often a worker with relays reports what they forward
CLOSE_SECONDS = 10.0  # how long a relay asked to stop may take (it finishes its recording's file)
QUICK_DEATH_SECONDS = 5.0  # a worker that dies sooner than this is replaced after a pause, not at once
MAX_RESPAWN_PAUSE = 30.0

# What a room delivers that a relay acts on (session.py); anything else (a slow-consumer notice) stays here.
Delivery = (RelayedOffer | RelayedCandidate | RelayedReceiveVideo | ParticipantLeft | ParticipantResumed
            | RecordingState | MediaStateChanged)
delivery_adapter: pydantic.TypeAdapter[Delivery] = pydantic.TypeAdapter(
    Annotated[Delivery, pydantic.Field(discriminator="type")])
result_adapter: pydantic.TypeAdapter[SegmentResult] = pydantic.TypeAdapter(SegmentResult)
finished_adapter: pydantic.TypeAdapter[Finished | None] = pydantic.TypeAdapter(Finished | None)


# ---- frames ----

def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next frame, or None at the end of the stream."""
    try:
        head = await reader.readexactly(4)
        (size,) = struct.unpack(">I", head)
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes")
        message: dict[str, Any] = json.loads(await reader.readexactly(size))
        return message
    except asyncio.IncompleteReadError:
        return None


def view_to_json(view: RelayView) -> dict[str, Any]:
    return {"grants": {k: list(v) for k, v in view.grants.items()}, "occupied": view.occupied,
            "recording": view.recording, "sharing": sorted(view.sharing)}


def view_from_json(data: dict[str, Any]) -> RelayView:
    return RelayView({k: (bool(v[0]), bool(v[1])) for k, v in data["grants"].items()},
                     occupied=bool(data["occupied"]), recording=bool(data["recording"]),
                     sharing=frozenset(data.get("sharing", ())))


def segment_to_json(segment: SegmentFile) -> dict[str, Any]:
    return {"recording_id": segment.recording_id, "live_path": str(segment.live_path),
            "final_path": str(segment.final_path), "key": segment.key.hex() if segment.key else None}


def segment_from_json(data: dict[str, Any]) -> SegmentFile:
    return SegmentFile(int(data["recording_id"]), Path(data["live_path"]), Path(data["final_path"]),
                       bytes.fromhex(data["key"]) if data["key"] else None)


@dataclass(frozen=True)
class WorkerConfig:
    """What every relay of a worker is made with (the node's settings)."""

    ice_servers: list[dict[str, Any]]
    key: bytes | None
    video_codec: str = "vp8"
    segment_seconds: float = 900.0
    log_level: str = "INFO"
    log_format: str = "text"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = self.key.hex() if self.key else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerConfig:
        return cls(**{**data, "key": bytes.fromhex(data["key"]) if data["key"] else None})


# ---- the node's side ----

_ENDED = object()  # put in a relay's outbox when its worker says it stopped
_LOST = object()  # ... or when its worker died


class RemoteRelay:
    """A relay running in a worker, as the node sees it: the outbox the room delivers to (like any
    connection), and the task that passes it down to the worker. Ends when the relay has stopped."""

    def __init__(self, worker: Worker, hub: RoomHub, room_id: str, epoch: int) -> None:
        self.worker, self.hub, self.room_id, self.epoch = worker, hub, room_id, epoch
        self.conn = relay_conn(room_id, epoch)
        self.outbox = hub.attach(self.conn, room_id=room_id, limit=RELAY_OUTBOX)
        self.forwarded: tuple[dict[str, int], dict[str, int]] = ({"audio": 0, "video": 0}, {})
        self.outgoing = InOrder(self._submit)  # layouts land in the order the relay made them
        worker.relays[self.conn] = self
        worker.send({"op": "start", "relay": self.conn, "room": room_id, "epoch": epoch,
                     "view": view_to_json(self.view())})
        self.task = asyncio.create_task(self._pump(), context=logcontext.room_context(room_id))

    def view(self) -> RelayView:
        return RelayView.of(self.hub.room(self.room_id))

    def census(self) -> tuple[dict[str, int], dict[str, int]]:
        """As the worker last reported it (each second)."""
        return self.forwarded

    async def _pump(self) -> None:
        lost = False
        try:
            while True:
                item = await self.outbox.get()
                if item is _ENDED:
                    return
                if item is _LOST:
                    lost = True
                    return
                if isinstance(item, CloseRequest):
                    self.worker.send({"op": "close", "relay": self.conn})
                    lost = not await self._until_ended()
                    return
                if isinstance(item, Delivery):
                    self.worker.send({"op": "deliver", "relay": self.conn, "view": view_to_json(self.view()),
                                      "item": json.loads(item.model_dump_json(by_alias=True))})
        finally:
            self.worker.relays.pop(self.conn, None)
            await self.outgoing.close()
            self.hub.detach(self.conn, self.room_id)
            if lost:
                log.warning("relay %s (epoch %d) was lost with its worker; it moves", self.room_id, self.epoch)
                self.hub.owe(self.room_id, RelayLost(epoch=self.epoch))

    async def _submit(self, event: RoomEvent) -> None:
        try:
            await self.hub.submit(self.room_id, event)
        except SignalingError as error:  # the participant left meanwhile, or the bus is down
            log.info("relay %s: %s not delivered: %s", self.room_id, event.kind, error.code)

    async def _until_ended(self) -> bool:
        """After a close: wait for the worker to say the relay stopped; False if it died meanwhile (one that
        hangs is given up on after CLOSE_SECONDS, as stopped: the room has moved on)."""
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                while True:
                    item = await self.outbox.get()
                    if item is _ENDED:
                        return True
                    if item is _LOST:
                        return False
        except TimeoutError:
            log.warning("relay %s did not stop within %.0f s", self.room_id, CLOSE_SECONDS)
            return True  # not lost: it was asked to go, and the room has moved on


class Worker:
    """One worker process, as the node sees it."""

    def __init__(self, pool: RelayWorkers, index: int, pause: float = 0.0) -> None:
        """``pause``: seconds to wait before starting the process (one after another died quickly)."""
        self.pool, self.index, self.pause = pool, index, pause
        self.relays: dict[str, RemoteRelay] = {}
        self.process: asyncio.subprocess.Process | None = None
        self.started = time.monotonic()
        self._pending: list[bytes] = [frame({"op": "hello", "config": pool.config.to_json()})]
        self.task = asyncio.create_task(self._run())

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def send(self, message: dict[str, Any]) -> None:
        data = frame(message)
        if self.process is None or self.process.stdin is None:
            self._pending.append(data)
            return
        if not self.process.stdin.is_closing():
            self.process.stdin.write(data)

    async def _run(self) -> None:
        try:
            await asyncio.sleep(self.pause)
            # The process that parses untrusted RTP, DTLS and SDP gets none of the node's settings (its
            # secrets among them): what it needs comes in the hello frame.
            env = {name: value for name, value in os.environ.items() if not name.startswith("TELEMED_")}
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "media.worker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                env=env)
            assert self.process.stdin is not None and self.process.stdout is not None
            for data in self._pending:
                self.process.stdin.write(data)
            self._pending.clear()
            log.info("relay worker %d started (pid %d)", self.index, self.process.pid)
            while (message := await read_frame(self.process.stdout)) is not None:
                try:
                    self._handle(message)
                except Exception:  # one frame it could not use must not end every relay it runs
                    log.exception("relay worker %d: could not handle %s", self.index, message.get("op"))
        except Exception:
            log.exception("relay worker %d failed", self.index)
        finally:
            await self._died()

    async def _died(self) -> None:
        code = None
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()  # its output ended: whatever it still does, it does for no one
            code = await self.process.wait()
            if self.process.stdin is not None:
                self.process.stdin.close()
        for relay in list(self.relays.values()):
            relay.outbox.put_control(_LOST)
        self.relays.clear()
        self.pool.died(self, code)

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        relay = self.relays.get(message.get("relay", ""))
        if op == "census":
            for conn, (streams, viewers) in message["relays"].items():
                if (known := self.relays.get(conn)) is not None:
                    known.forwarded = (streams, viewers)
        elif op == "call":  # (a segment's finish may come after its relay stopped)
            self.pool.call(self, relay, message)
        elif relay is None:
            return
        elif op == "submit":
            event = decode(json.dumps(message["event"]))
            # A worker speaks for its relays and nothing else: only their answers, layouts and errors.
            if isinstance(event, FromRelay) and event.epoch == relay.epoch:
                relay.outgoing.put(event)
            else:
                log.warning("relay %s: its worker sent a %s event; dropped", relay.room_id, event.kind)
        elif op == "ended":
            relay.outbox.put_control(_ENDED)
        elif op == "lost":  # it could not start it
            relay.outbox.put_control(_LOST)

    async def stop(self) -> None:
        """Close its stdin (it stops its relays and exits); kill it if it has not within CLOSE_SECONDS."""
        if self.process is None:
            self.task.cancel()
            return
        # stdin stays open until it has exited: its relays' last recording-store calls are answered on it.
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.write(frame({"op": "exit"}))
        try:
            await asyncio.wait_for(asyncio.shield(self.task), CLOSE_SECONDS + 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.task


NodeRelay = RelaySession | RemoteRelay  # a relay this node runs: on its own loop, or in a worker


class RelayWorkers:
    """The node's worker processes: starts a room's relay in the one running fewest, answers their calls,
    replaces one that dies."""

    def __init__(self, count: int, config: WorkerConfig, store: RecordingStore | None,
                 recover: Callable[[list[int]], Awaitable[None]] | None = None) -> None:
        """``recover``: finish, as a node does at its start, the recordings a worker was making when it died."""
        if count < 1:
            raise ValueError("at least one worker")
        self.count, self.config, self.store, self.recover = count, config, store, recover
        # The segments the store began for each worker: what a finish may name, and what its death leaves.
        self.segments: dict[int, tuple[Worker, SegmentFile]] = {}
        self.closing = False
        self._pause = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        # Started as rooms need them: a node whose rooms never grow past two starts none.
        self.workers: list[Worker] = []
        self._numbers = itertools.count()

    def warm(self) -> None:
        """Start one worker now, so the first relayed room does not wait for a process to start."""
        if not self.workers:
            self._add()

    def start(self, hub: RoomHub, room_id: str, epoch: int) -> RemoteRelay:
        """Run a room's relay in an idle worker, else in a new one while there are fewer than ``count``, else
        in the one running fewest."""
        worker = next((w for w in self.workers if not w.relays), None)
        if worker is None and len(self.workers) < self.count:
            worker = self._add()
        if worker is None:
            worker = min(self.workers, key=lambda w: len(w.relays))
        return RemoteRelay(worker, hub, room_id, epoch)

    def call(self, worker: Worker, relay: RemoteRelay | None, message: dict[str, Any]) -> None:
        self._spawn(self._call(worker, relay, message))

    async def _call(self, worker: Worker, relay: RemoteRelay | None, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"op": "reply", "call": message["call"]}
        try:
            if message["method"] == "begin" and relay is not None:
                room = relay.hub.room(relay.room_id)
                segment = await self.store.begin(room) if self.store is not None and room is not None else None
                if segment is not None:
                    self.segments[segment.recording_id] = (worker, segment)
                reply["result"] = segment_to_json(segment) if segment is not None else None
            elif message["method"] == "finish":
                # The segment as the store began it, not as the worker describes it: its row and its file.
                begun = self.segments.get(int(message["segment"]["recording_id"]))
                if begun is None or begun[0] is not worker:
                    raise LookupError("no segment of this worker by that id")
                del self.segments[begun[1].recording_id]
                if self.store is not None:
                    await self.store.finish(begun[1], result_adapter.validate_python(message["result"]),
                                            finished_adapter.validate_python(message["finished"]))
                reply["result"] = None
            else:
                reply["error"] = f"no method {message['method']!r} here"
        except Exception as exc:  # the worker's relay goes on; the recording's metadata says what it can
            log.exception("relay worker %d: the store's %s failed", worker.index, message.get("method"))
            reply["error"] = type(exc).__name__
        worker.send(reply)

    def died(self, worker: Worker, code: int | None) -> None:
        left = [recording_id for recording_id, (owner, _) in self.segments.items() if owner is worker]
        for recording_id in left:
            del self.segments[recording_id]
        if left and self.recover is not None:  # its locks went with it: the files can be finished now
            self._spawn(self.recover(left))
        if self.closing or worker not in self.workers:
            return
        self.workers.remove(worker)  # at once: a relay that moves now must not be started in it
        log.error("relay worker %d (pid %s) ended with %s; starting another", worker.index, worker.pid, code)
        # One that keeps dying at start (a broken install, a room whose media kills it) is started again less
        # and less often: every new worker waits the pause, also one started for a relay that moves.
        if time.monotonic() - worker.started > QUICK_DEATH_SECONDS + self._pause:
            self._pause = 0.0
        else:
            self._pause = min(MAX_RESPAWN_PAUSE, max(1.0, self._pause * 2))
        if len(self.workers) < self.count:
            self._add()

    def _add(self) -> Worker:
        worker = Worker(self, next(self._numbers), self._pause)
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        """Stop every worker (their relays were asked to close first: see the app's shutdown)."""
        self.closing = True
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
