"""The room log: the ordered events of each room, shared by every node. This module: the in-process one.

A node follows a room's log from its start, so its copy of the room is built from the same events in
the same order as every other node's. ``CAUGHT_UP`` marks the end of what was there before following
began: effects of older events are history and are not carried out again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from .events import RoomEvent


class BusError(Exception):
    """The log cannot be reached (the connection to Redis is down)."""


class CaughtUp:
    def __repr__(self) -> str:
        return "CAUGHT_UP"


CAUGHT_UP = CaughtUp()


class RoomLog(Protocol):
    """What the hub needs from a log. ``LocalRoomLog`` for one node, ``RedisRoomLog`` for several."""

    @property
    def healthy(self) -> bool: ...

    async def append(self, room_id: str, event: RoomEvent) -> None:
        """Add an event at the end of the room's log; raises BusError if it cannot."""

    def follow(self, room_id: str) -> AsyncIterator[RoomEvent | CaughtUp]:
        """Every event of the room from the first, then CAUGHT_UP, then new ones as they come."""
        ...

    async def forget(self, room_id: str) -> None:
        """The room is empty and no node needs its history any more."""

    async def announce(self, node: str, ttl: float) -> None:
        """Say that ``node`` is alive for the next ``ttl`` seconds."""

    async def node_alive(self, node: str) -> bool: ...

    async def ping(self) -> bool:
        """Whether the log answers right now."""
        ...

    async def close(self) -> None: ...


class LocalRoomLog:
    """All rooms' logs in this process: one node, nothing to start."""

    healthy = True

    def __init__(self) -> None:
        self._events: dict[str, list[RoomEvent]] = {}
        # Each follower has a queue of its own: an append wakes only the followers of its room.
        self._followers: dict[str, set[asyncio.Queue[RoomEvent]]] = {}

    async def append(self, room_id: str, event: RoomEvent) -> None:
        self._events.setdefault(room_id, []).append(event)
        for queue in self._followers.get(room_id, ()):
            queue.put_nowait(event)

    async def follow(self, room_id: str) -> AsyncIterator[RoomEvent | CaughtUp]:
        queue: asyncio.Queue[RoomEvent] = asyncio.Queue()
        # Copy the history and register in one step (no await between), so no event is missed or doubled.
        history = list(self._events.get(room_id, ()))
        self._followers.setdefault(room_id, set()).add(queue)
        try:
            for event in history:
                yield event
            yield CAUGHT_UP
            while True:
                yield await queue.get()
        finally:
            followers = self._followers.get(room_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[room_id]

    async def forget(self, room_id: str) -> None:
        if room_id not in self._followers:
            self._events.pop(room_id, None)

    async def announce(self, node: str, ttl: float) -> None:
        pass

    async def node_alive(self, node: str) -> bool:
        return True  # the only node is this one

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass
