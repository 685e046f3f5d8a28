"""What the console (``telemed user disable``, ``reset-password``, ``licence``) tells the rooms of a change it made.

The console runs in a process of its own and follows no room. Where the nodes share a Redis, it appends the
change to the rooms' logs there itself, as a node's hub would, so a clinician disabled or reset at the shell is
sent out of a live call at once, and a licence changed there reaches their seat at once, not at the nodes' next
account sweep (``admin/account_sweep.py``, which stays the way back for what this cannot reach). With the
embedded in-process bus no other process can reach a room: the sweep is the only way, as before.
"""

from __future__ import annotations

import asyncio

from signaling.events import RoomEvent
from signaling.grants import room_id_for
from signaling.log import BusError, LogLost
from signaling.redis_log import RedisRoomLog

TELL_SECONDS = 2.0  # how long the console waits for the bus before leaving a room to the sweep


class ConsoleRooms:
    """The console's ``RoomNotifier`` on a Redis bus (under the nodes' ``TELEMED_REDIS_PREFIX``). Only a room
    with a log is told (a room nobody has opened needs nothing, and an event alone must not start its log); the
    consultations whose room was told, and those the bus did not answer for (``missed``: the sweep carries the
    change there), are kept for the console to say."""

    def __init__(self, redis_url: str, *, prefix: str) -> None:
        self._log = RedisRoomLog(redis_url, prefix=prefix)
        self.told: set[int] = set()  # consultations whose room's log took the change
        self.missed: set[int] = set()  # consultations whose room the bus did not answer for in time

    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        try:
            await asyncio.wait_for(self._log.append(room_id_for(consultation_id), event, continuing=True),
                                   TELL_SECONDS)
        except LogLost:
            return  # no room was opened for it (or its log has expired): nobody in a call there to tell
        except (BusError, TimeoutError):
            self.missed.add(consultation_id)
            return
        self.told.add(consultation_id)

    async def close(self) -> None:
        await self._log.close()
