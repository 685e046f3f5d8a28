"""A relay worker process (``python -m media.worker``; see workers.py for the frames and who starts it).

Runs the relay sessions its node starts, each answering through the pipe instead of a hub, until the
node says ``exit`` (it stops them, finishing their recordings' files, and exits) or its stdin ends (the
node died: it exits at once, as the relay would have in the node's own process). It ignores SIGINT and
SIGTERM, which a terminal or systemd sends the node's whole process group: the node decides when its
relays stop (a graceful stop moves them first), and a node that dies ends the worker's stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from typing import Any, BinaryIO

from aiortc import RTCIceServer

from signaling import logcontext
from signaling.errors import CloseCode
from signaling.events import RoomEvent, encode
from signaling.outbox import CloseRequest, Outbox

from .errors import RecordingError
from .recorder import Finished, SegmentResult
from .session import RELAY_OUTBOX, RelaySession, RelayView, SegmentFile
from .workers import (
    CENSUS_SECONDS,
    CLOSE_SECONDS,
    MAX_FRAME,
    WorkerConfig,
    delivery_adapter,
    finished_adapter,
    frame,
    read_frame,
    result_adapter,
    segment_from_json,
    segment_to_json,
    view_from_json,
)

log = logging.getLogger(__name__)


class PipeHost:
    """The node, for one relay in this worker: the room as last delivered, and calls up the pipe."""

    def __init__(self, worker: WorkerProcess, relay: str, view: RelayView) -> None:
        self.worker, self.relay, self.latest = worker, relay, view

    def view(self) -> RelayView:
        return self.latest

    async def submit(self, event: RoomEvent) -> None:
        self.worker.send({"op": "submit", "relay": self.relay, "event": json.loads(encode(event))})

    async def begin(self) -> SegmentFile | None:
        result = await self.worker.call(self.relay, "begin")
        return segment_from_json(result) if result is not None else None

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None:
        await self.worker.call(self.relay, "finish", segment=segment_to_json(segment),
                               result=result_adapter.dump_python(result, mode="json"),
                               finished=finished_adapter.dump_python(finished, mode="json"))


class WorkerProcess:
    def __init__(self, output: asyncio.StreamWriter, config: WorkerConfig) -> None:
        self.output, self.config = output, config
        self.ice_servers = [RTCIceServer(urls=server["urls"]) for server in config.ice_servers]
        self.sessions: dict[str, tuple[RelaySession, Outbox, PipeHost]] = {}
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)

    def send(self, message: dict[str, Any]) -> None:
        if not self.output.is_closing():
            self.output.write(frame(message))

    async def call(self, relay: str, method: str, **arguments: Any) -> Any:
        call = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call] = future
        self.send({"op": "call", "call": call, "relay": relay, "method": method, **arguments})
        return await future

    def handle(self, message: dict[str, Any]) -> None:
        op, relay = message.get("op"), message.get("relay", "")
        if op == "start":
            self._start(relay, message["room"], int(message["epoch"]), view_from_json(message["view"]))
        elif op == "deliver" and relay in self.sessions:
            _, inbox, host = self.sessions[relay]
            host.latest = view_from_json(message["view"])
            inbox.put_control(delivery_adapter.validate_python(message["item"]))
        elif op == "close" and relay in self.sessions:
            self.sessions[relay][1].put_control(CloseRequest(CloseCode.GOING_AWAY, "relay moved"))
        elif op == "reply" and (future := self._calls.pop(message["call"], None)) is not None:
            if not future.done():
                if message.get("error"):
                    future.set_exception(RecordingError(f"The recording store failed: {message['error']}."))
                else:
                    future.set_result(message.get("result"))

    def _start(self, relay: str, room_id: str, epoch: int, view: RelayView) -> None:
        if relay in self.sessions:
            return
        host = PipeHost(self, relay, view)
        inbox = Outbox(RELAY_OUTBOX)
        try:
            session = RelaySession(inbox, host, room_id, epoch, ice_servers=self.ice_servers, key=self.config.key,
                                   video_codec=self.config.video_codec,
                                   segment_seconds=self.config.segment_seconds, on_close=lambda: self._ended(relay))
        except Exception:
            log.exception("relay worker: could not start the relay of %s", room_id)
            self.send({"op": "lost", "relay": relay})  # the room moves it, as if this worker had died
            return
        self.sessions[relay] = (session, inbox, host)

    def _ended(self, relay: str) -> None:
        self.sessions.pop(relay, None)
        self.send({"op": "ended", "relay": relay})

    async def report(self) -> None:
        """Tell the node what each relay forwards, for its metrics."""
        while True:
            await asyncio.sleep(CENSUS_SECONDS)
            if self.sessions:
                self.send({"op": "census",
                           "relays": {relay: list(s.census()) for relay, (s, _, _) in self.sessions.items()}})

    async def stop(self) -> None:
        """The node is gone or stopping: stop every relay (their recordings' files are finished)."""
        sessions = [session for session, _, _ in self.sessions.values()]
        for _, inbox, _ in self.sessions.values():
            inbox.put_control(CloseRequest(CloseCode.GOING_AWAY, "server shutting down"))
        for future in self._calls.values():
            if not future.done():
                future.set_exception(RecordingError("The node has gone."))
        if sessions:
            await asyncio.wait([s.task for s in sessions], timeout=CLOSE_SECONDS)


async def serve(input_: BinaryIO, output: BinaryIO) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), input_)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, output)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    hello = await read_frame(reader)
    if hello is None or hello.get("op") != "hello":
        return
    config = WorkerConfig.from_json(hello["config"])
    logcontext.configure(config.log_level, config.log_format)
    worker = WorkerProcess(writer, config)
    reporting = asyncio.create_task(worker.report())
    exited = asyncio.Event()

    async def stop() -> None:
        reporting.cancel()
        await worker.stop()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        exited.set()

    async def read() -> None:
        stopping: asyncio.Task[None] | None = None
        while (message := await read_frame(reader)) is not None:
            if message.get("op") == "exit":  # stop, still reading: the store's answers come this way
                stopping = stopping or asyncio.create_task(stop())
                continue
            try:
                worker.handle(message)
            except Exception:  # one bad frame must not end every relay of this worker
                log.exception("relay worker: could not handle %s", message.get("op"))

    reading = asyncio.create_task(read())
    await asyncio.wait([reading, asyncio.create_task(exited.wait())], return_when=asyncio.FIRST_COMPLETED)
    if exited.is_set():
        reading.cancel()
        return
    # The node died without saying goodbye: die with it, as the relay would have in the node's own process.
    # A recording's live file keeps what was flushed, and another node finishes it once this node is declared
    # lost (or the node, at its next start); finishing it here would leave a file whose metadata no node wrote.
    log.warning("relay worker: the node has gone; stopping at once")
    os._exit(0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The frames go out on the original stdout; anything a library prints goes to stderr instead.
    output = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(serve(sys.stdin.buffer, output))


if __name__ == "__main__":
    main()
