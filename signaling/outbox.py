"""What waits to be written to one connection (a socket, or a relay): a bounded queue with one reader."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from .errors import SignalingError, SlowConsumer
from .messages import ServerMessage

OUTBOX_LIMIT = 256


@dataclass(frozen=True)
class CloseRequest:
    """Tells a connection's writer to close the socket with this code once what is queued is sent."""

    code: int
    reason: str


OutboxItem = ServerMessage | SignalingError | CloseRequest | object


class Outbox:
    """Messages waiting to be written to one connection; a client that stops reading is cut off, not buffered.

    One reader (the connection's writer, or a relay) takes them with ``get``. A deque and that reader's
    future, not an asyncio.Queue: a Queue keeps three deques (for items, getters and putters), about
    2 KiB a connection before anything is queued."""

    __slots__ = ("_items", "_reader", "limit", "overflowed")

    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self._items: deque[OutboxItem] = deque()
        self._reader: asyncio.Future[None] | None = None
        self.limit = limit
        self.overflowed = False

    def qsize(self) -> int:
        return len(self._items)

    def put(self, message: ServerMessage) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self.limit:
            self.overflowed = True
            self._push(SlowConsumer("Too many messages are waiting for this connection."))
            return
        self._push(message)

    def put_control(self, item: OutboxItem) -> None:
        """Answers to the connection's own requests and close requests: never refused, never counted."""
        self._push(item)

    def _push(self, item: OutboxItem) -> None:
        self._items.append(item)
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def get(self) -> OutboxItem:
        """The oldest item, once there is one."""
        while not self._items:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        return self._items.popleft()
