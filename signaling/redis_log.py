"""The room log in Redis: one stream per room (XADD gives every node the same order), and node presence keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .events import RoomEvent, decode, encode
from .log import CAUGHT_UP, BusError, CaughtUp

log = logging.getLogger(__name__)

LOG_TTL_SECONDS = 12 * 3600  # a room's history outlives any consultation, then Redis drops it
PAGE = 500
BLOCK_MS = 5000
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)




class RedisRoomLog:
    """Rooms shared by every node connected to the same Redis."""

    def __init__(self, url: str, *, prefix: str = "telemed") -> None:
        self._redis = Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._healthy = True

    def stream_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:log"

    def presence_key(self, node: str) -> str:
        return f"{self._prefix}:node:{node}"

    @property
    def healthy(self) -> bool:
        return self._healthy

    def _mark(self, healthy: bool, why: BaseException | None = None) -> None:
        if healthy != self._healthy:
            if healthy:
                log.warning("redis bus is reachable again")
            else:
                log.error("redis bus is unreachable: %s", type(why).__name__ if why else "unknown")
        self._healthy = healthy

    async def append(self, room_id: str, event: RoomEvent) -> None:
        key = self.stream_key(room_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xadd(key, {"e": encode(event)})
                pipe.expire(key, LOG_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            raise BusError("the bus between nodes is unreachable") from exc
        self._mark(True)

    async def follow(self, room_id: str) -> AsyncIterator[RoomEvent | CaughtUp]:
        key, last, attempt, replaying = self.stream_key(room_id), "0-0", 0, True
        while True:
            try:
                if replaying:  # what is there already, page by page
                    entries = await self._redis.xrange(key, min="-" if last == "0-0" else f"({last}", count=PAGE)
                else:  # then wait for what comes; a connection lost here resumes after the last id seen
                    reply = await self._redis.xread({key: last}, block=BLOCK_MS, count=PAGE)
                    entries = reply[0][1] if reply else []
            except (RedisError, OSError) as exc:
                self._mark(False, exc)
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            attempt = 0
            self._mark(True)
            for entry_id, fields in entries:
                last = entry_id.decode()
                yield decode(fields[b"e"])
            if replaying and len(entries) < PAGE:
                replaying = False
                yield CAUGHT_UP

    async def forget(self, room_id: str) -> None:
        pass  # other nodes may still follow it; the stream's TTL removes it

    async def announce(self, node: str, ttl: float) -> None:
        try:
            await self._redis.set(self.presence_key(node), "1", px=int(ttl * 1000))
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return
        self._mark(True)

    async def node_alive(self, node: str) -> bool:
        try:
            return bool(await self._redis.exists(self.presence_key(node)))
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return True  # unknown is not dead: never drop others' participants because we lost Redis

    async def ping(self) -> bool:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return False
        self._mark(True)
        return True

    async def close(self) -> None:
        await self._redis.aclose()
