"""One signaling connection's loop: a reader that feeds the hub, a writer that drains the outbox."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from aiohttp import WSMsgType, web

from .errors import CLOSE_NORMAL, AlreadyJoined, NotJoined, SignalingError, UnsupportedVersion, close_code_for
from .hub import Outbox, RoomHub
from .messages import (
    PROTOCOL_VERSION,
    Answer,
    Candidate,
    Error,
    Join,
    Leave,
    Offer,
    Participant,
    Ping,
    Pong,
    dump,
    parse,
)

log = logging.getLogger(__name__)

_DONE = object()  # tells the writer that the reader has finished: flush what is queued, then stop
FLUSH_SECONDS = 5.0


class SignalingConnection:
    """Serves one participant's WebSocket in one room until it closes, leaves or is closed for cause."""

    def __init__(self, ws: web.WebSocketResponse, hub: RoomHub, room_id: str, participant: Participant,
                 *, max_message_bytes: int) -> None:
        self.ws = ws
        self.hub = hub
        self.room_id = room_id
        self.participant = participant
        self.max_message_bytes = max_message_bytes
        self.outbox = Outbox()
        self.joined = False

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            await self._read()
        finally:
            if self.joined:
                self.hub.leave(self.room_id, self.participant.id)
            self.outbox.put_control(_DONE)
            try:
                await asyncio.wait_for(writer, FLUSH_SECONDS)
            except TimeoutError:
                log.info("signaling connection %s: gave up flushing to a client that does not read",
                         self.participant.id)
            if not self.ws.closed:
                await self.ws.close(code=CLOSE_NORMAL)

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type == WSMsgType.TEXT:
                data: str | bytes = frame.data
            elif frame.type == WSMsgType.BINARY:
                data = frame.data
            else:  # ERROR: the transport failed; CLOSE frames end the iteration themselves
                log.info("signaling connection %s failed: %s", self.participant.id, self.ws.exception())
                return
            try:
                if not self._handle(parse(data, max_bytes=self.max_message_bytes)):
                    return
            except SignalingError as error:
                self.outbox.put_control(error)
                if close_code_for(error) is not None:
                    return

    def _handle(self, message: object) -> bool:
        """Apply one message; False once the participant has left."""
        if isinstance(message, Join):
            if self.joined:
                raise AlreadyJoined("You have already joined this room.")
            if message.protocol != PROTOCOL_VERSION:
                raise UnsupportedVersion(
                    f"This server speaks signaling protocol {PROTOCOL_VERSION}, not {message.protocol}.")
            self.hub.join(self.room_id, self.participant, self.outbox)
            self.joined = True
        elif isinstance(message, Ping):
            self.outbox.put_control(Pong(id=message.id))
        elif isinstance(message, Leave):
            return False
        elif isinstance(message, Offer | Answer | Candidate):
            if not self.joined:
                raise NotJoined("Join the room before sending negotiation messages.")
            self.hub.forward(self.room_id, self.participant.id, message)
        return True

    async def _write(self) -> None:
        while True:
            item = await self.outbox.queue.get()
            if item is _DONE:
                return
            if isinstance(item, SignalingError):
                await self._send(Error(code=item.code, message=item.message))
                if (code := close_code_for(item)) is not None:
                    await self.ws.close(code=code, message=item.code.encode())
                    return
            else:
                await self._send(item)

    async def _send(self, message: object) -> None:
        with suppress(ConnectionResetError):
            await self.ws.send_str(dump(message))  # type: ignore[arg-type]
