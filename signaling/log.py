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
        self._appended = asyncio.Condition()

    async def append(self, room_id: str, event: RoomEvent) -> None:
        async with self._appended:
            self._events.setdefault(room_id, []).append(event)
            self._appended.notify_all()

    async def follow(self, room_id: str) -> AsyncIterator[RoomEvent | CaughtUp]:
        events = self._events.setdefault(room_id, [])
        position = len(events)
        for event in events[:position]:
            yield event
        yield CAUGHT_UP
        while True:
            async with self._appended:
                await self._appended.wait_for(lambda seen=position: len(self._events.get(room_id, ())) > seen)
                fresh = self._events[room_id][position:]
            position += len(fresh)
            for event in fresh:
                yield event

    async def forget(self, room_id: str) -> None:
        self._events.pop(room_id, None)

    async def announce(self, node: str, ttl: float) -> None:
        pass

    async def node_alive(self, node: str) -> bool:
        return True  # the only node is this one

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass
