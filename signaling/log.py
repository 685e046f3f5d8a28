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
from .placement import RelayHost


class BusError(Exception):
    """The log cannot be reached (the connection to Redis is down)."""


class LogLost(Exception):
    """The room's log is gone (Redis restarted empty): re-seed it from the copy before appending to it."""


class Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


CaughtUp = Marker
CAUGHT_UP = Marker("CAUGHT_UP")
# The log this follower was reading is gone (Redis restarted empty): what follows is a new log, which
# starts with a snapshot of the room (RoomHub re-seeds it from its copy, unless another node did first).
LOG_LOST = Marker("LOG_LOST")
# An entry this node cannot read (written by a newer release that says something this one does not know,
# or damaged): it keeps its place in the log (events are counted by position), and changes nothing here.
UNREADABLE = Marker("UNREADABLE")


class RoomLog(Protocol):
    """What the hub needs from a log. ``LocalRoomLog`` for one node, ``RedisRoomLog`` for several."""

    @property
    def healthy(self) -> bool: ...

    async def append(self, room_id: str, event: RoomEvent, *, continuing: bool = False) -> None:
        """Add an event at the end of the room's log; raises BusError if it cannot. ``continuing``: the
        appender's copy of the room has a history, so a log that is gone must be re-seeded first (LogLost)
        rather than started afresh with this event."""

    async def reseed(self, room_id: str, snapshot: RoomEvent) -> bool:
        """Start the room's log again with ``snapshot``, unless it exists (another node re-seeded it first)."""
        ...

    def follow(self, room_id: str) -> AsyncIterator[RoomEvent | Marker]:
        """Every event of the room from the first, then CAUGHT_UP, then new ones as they come; LOG_LOST
        when the log vanished, then the new log's events; UNREADABLE in the place of an entry that could not
        be read."""
        ...

    async def forget(self, room_id: str) -> None:
        """The room is empty and no node needs its history any more."""

    async def announce(self, node: str, ttl: float, host: RelayHost | None = None) -> bool:
        """Say that ``node`` is alive for the next ``ttl`` seconds, and what relays it takes (``host``);
        whether its presence was still there (False the first time, and when the log lost it: it expired,
        or Redis restarted empty)."""
        ...

    async def relay_hosts(self) -> dict[str, RelayHost]:
        """Every live node's presence: what relays each takes. Raises BusError if it cannot be read."""
        ...

    async def hand(self, node: str, room_id: str) -> None:
        """Tell ``node`` that a room's relay was handed to it (it may not follow that room yet)."""

    async def take_handed(self, node: str) -> list[str]:
        """The rooms whose relay was handed to ``node`` since it last asked, each once. Raises BusError if
        they cannot be read."""
        ...

    async def succeed(self, name: str, node: str) -> None:
        """``node`` is the new run of the node called ``name``: the run before it (killed, restarted at
        once) is gone now, and its presence goes with it, so other nodes declare it lost at once."""

    async def withdraw(self, node: str) -> None:
        """``node`` has stopped: its presence ends now, not when it would have run out."""

    async def node_alive(self, node: str) -> bool: ...

    async def ping(self) -> bool:
        """Whether the log answers right now."""
        ...

    async def close(self) -> None: ...


class _Follower:
    """One follower of a room in a LocalRoomLog: what it waits on for the next append."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class LocalRoomLog:
    """All rooms' logs in this process: one node, nothing to start."""

    healthy = True

    def __init__(self) -> None:
        self._events: dict[str, list[RoomEvent]] = {}
        # Each follower reads the room's own list from where it is, and waits on a future of its own once it
        # has read it all: an append wakes only the followers of its room, and nothing is queued twice.
        self._followers: dict[str, set[_Follower]] = {}
        # Hubs sharing this log (tests run several nodes in one process): their presences, and the rooms
        # whose relay one hands another.
        self._hosts: dict[str, RelayHost] = {}
        self._handed: dict[str, list[str]] = {}

    async def reseed(self, room_id: str, snapshot: RoomEvent) -> bool:
        return False  # this log is never lost

    async def append(self, room_id: str, event: RoomEvent, *, continuing: bool = False) -> None:
        self._events.setdefault(room_id, []).append(event)
        for follower in self._followers.get(room_id, ()):
            follower.wake()

    async def follow(self, room_id: str) -> AsyncIterator[RoomEvent | CaughtUp]:
        # Take the list and register in one step (no await between), so no event is missed or doubled; while
        # anyone follows the room, its list is only appended to (forget leaves a followed room alone).
        events = self._events.setdefault(room_id, [])
        follower = _Follower()
        self._followers.setdefault(room_id, set()).add(follower)
        try:
            history, read = len(events), 0
            while read < history:
                read += 1
                yield events[read - 1]
            yield CAUGHT_UP
            while True:
                if read < len(events):
                    read += 1
                    yield events[read - 1]
                else:
                    await follower.wait()
        finally:
            followers = self._followers.get(room_id)
            if followers is not None:
                followers.discard(follower)
                if not followers:
                    del self._followers[room_id]

    async def forget(self, room_id: str) -> None:
        if room_id not in self._followers:
            self._events.pop(room_id, None)

    async def announce(self, node: str, ttl: float, host: RelayHost | None = None) -> bool:
        self._hosts[node] = host or RelayHost()
        return True

    async def relay_hosts(self) -> dict[str, RelayHost]:
        return dict(self._hosts)

    async def hand(self, node: str, room_id: str) -> None:
        self._handed.setdefault(node, []).append(room_id)

    async def take_handed(self, node: str) -> list[str]:
        return self._handed.pop(node, [])

    async def succeed(self, name: str, node: str) -> None:
        pass

    async def withdraw(self, node: str) -> None:
        self._hosts.pop(node, None)

    async def node_alive(self, node: str) -> bool:
        return True  # the only node is this one

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        pass
