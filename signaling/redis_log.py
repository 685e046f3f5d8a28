"""The room log in Redis: one stream per room (XADD gives every node the same order), and node presence keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field

from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from .events import RoomEvent, decode, encode
from .log import CAUGHT_UP, LOG_LOST, UNREADABLE, BusError, LogLost, Marker
from .placement import RelayHost
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

LOG_TTL_SECONDS = 12 * 3600  # a room's history outlives any consultation, then Redis drops it
NAME_TTL_SECONDS = 7 * 24 * 3600  # which run of a named node is the latest: kept for a week
PAGE = 500
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)
POOL_SIZE = 64
POOL_WAIT_SECONDS = 5
HANDED_TTL_SECONDS = 60  # rooms handed to a node that never read them (it died) are dropped after this
HANDED_AT_ONCE = 100  # rooms handed to a node that it takes in one read

# Append and announce in one atomic step, so the order of announcements is the order of the log. ARGV[3]:
# "any" appends; "existing" only to a log that exists (the appender's copy has a history: a log gone since
# must be re-seeded first); "absent" only starts a log (a re-seed: the first node to do it wins).
APPEND_SCRIPT = """
local exists = redis.call('EXISTS', KEYS[1]) == 1
if (ARGV[3] == 'existing' and not exists) or (ARGV[3] == 'absent' and exists) then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])
return id
"""


def _read(stream: str, entry_id: str, data: bytes) -> RoomEvent | Marker:
    """The event in a log entry, or UNREADABLE: one entry this release cannot read (a newer node's, in a
    rolling upgrade, or damaged) must not stop the reader that serves every room this node follows. Logged
    without its content, which may be a chat line or a patient's name."""
    try:
        return decode(data)
    except ValueError as error:  # pydantic's ValidationError is one; so is a UnicodeDecodeError
        kind = error.errors()[0]["type"] if isinstance(error, ValidationError) and error.errors() else "bytes"
        log.warning("%s: entry %s cannot be read by this release (%s); skipped", stream, entry_id, kind)
        return UNREADABLE


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisRoomLog:
    """Rooms shared by every node connected to the same Redis.

    Each room's log is a Stream (durable, replayable); new entries are also published on the room's
    channel, and each node reads all its rooms' channels on one subscription. A follower subscribes
    before it replays the stream and skips what it has already replayed, so nothing is lost or doubled.
    """

    def __init__(self, url: str, *, prefix: str = "telemed") -> None:
        # Blocking pool: under a burst, wait a moment for a free connection instead of failing.
        pool = BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS,
                                               socket_connect_timeout=2, health_check_interval=10)
        self._redis = Redis(connection_pool=pool)
        self._append = self._redis.register_script(APPEND_SCRIPT)
        self._prefix = prefix
        self._healthy = True
        self._followers: dict[str, set[_Follower]] = {}  # channel -> followers of that room on this node
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        # One (un)subscription at a time: redis-py's PubSub connects on its first command, and two first
        # commands at once (two rooms followed at once on a new node) each made a connection, the second
        # replacing the first, whose room was then subscribed on a connection nobody read.
        self._subscribing = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._unsubscribe: set[str] = set()  # channels no follower needs any more

    def stream_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:log"

    def channel(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:events"

    def presence_key(self, node: str) -> str:
        return f"{self._prefix}:node:{node}"

    def name_key(self, name: str) -> str:
        return f"{self._prefix}:node-name:{name}"

    def handed_key(self, node: str) -> str:
        return f"{self._prefix}:node-handed:{node}"

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

    async def append(self, room_id: str, event: RoomEvent, *, continuing: bool = False) -> None:
        if not await self._add(room_id, event, "existing" if continuing else "any"):
            raise LogLost(room_id)

    async def reseed(self, room_id: str, snapshot: RoomEvent) -> bool:
        return await self._add(room_id, snapshot, "absent")

    async def _add(self, room_id: str, event: RoomEvent, mode: str) -> bool:
        try:
            added = await self._append(keys=[self.stream_key(room_id), self.channel(room_id)],
                                       args=[encode(event), LOG_TTL_SECONDS, mode])
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            raise BusError("the bus between nodes is unreachable") from exc
        self._mark(True)
        return added is not None

    async def follow(self, room_id: str) -> AsyncIterator[RoomEvent | Marker]:
        follower = _Follower(self.stream_key(room_id), self.channel(room_id))
        self._followers.setdefault(follower.channel, set()).add(follower)
        try:
            await self._subscribe(follower.channel)
            async for entry_id, event in self._read_stream(follower.stream, after="0-0"):
                follower.last = entry_id
                yield event
            yield CAUGHT_UP
            while True:
                entry_id, event = await follower.queue.get()
                if event is LOG_LOST:
                    follower.last = "0-0"  # what follows is the new log, from its first entry
                    yield LOG_LOST
                    continue
                if _id(entry_id) <= _id(follower.last):
                    continue  # already replayed, or delivered twice after a reconnection
                follower.last = entry_id
                yield event
        finally:
            # No network call here: this runs while the follow is being cancelled (a room dropped, the
            # node stopping). The reader, which owns the subscription, unsubscribes between reads.
            followers = self._followers.get(follower.channel, set())
            followers.discard(follower)
            if not followers:
                self._followers.pop(follower.channel, None)
                self._unsubscribe.add(follower.channel)

    async def _subscribe(self, channel: str) -> None:
        self._unsubscribe.discard(channel)
        attempt = 0
        while True:
            try:
                async with self._subscribing:
                    await self._pubsub.subscribe(channel)
                break
            except (RedisError, OSError) as exc:
                self._mark(False, exc)
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_channels())

    async def _read_stream(self, key: str, *, after: str) -> AsyncIterator[tuple[str, RoomEvent]]:
        """Entries after ``after``, page by page, retrying while Redis is away."""
        last, attempt = after, 0
        while True:
            try:
                entries = await self._redis.xrange(key, min="-" if last == "0-0" else f"({last}", count=PAGE)
            except (RedisError, OSError) as exc:
                self._mark(False, exc)
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1
                continue
            self._mark(True)
            for entry_id, fields in entries:
                last = entry_id.decode()
                yield last, _read(key, last, fields.get(b"e", b""))
            if len(entries) < PAGE:
                return

    async def _read_channels(self) -> None:
        """This node's one reader of every room it follows."""
        attempt, surprises, lost = 0, 0, False
        while self._followers:
            if lost:  # subscribe again and refill the gap; until that works, nothing can be read
                if not await self._recover():
                    await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                    attempt += 1
                    continue
                lost, attempt = False, 0
                self._mark(True)
            try:
                if await self._read_once():
                    surprises = 0
            except (RedisError, OSError) as exc:
                self._mark(False, exc)
                lost = True
            except Exception:  # a bug here must not stop every room this node follows: read them all again
                log.exception("the reader of the rooms' channels failed; subscribing again")
                lost = True
                await asyncio.sleep(RETRY_SECONDS[min(surprises, len(RETRY_SECONDS) - 1)])  # not in a tight loop
                surprises += 1

    async def _read_once(self) -> bool:
        """Unsubscribe what no follower needs, then hand the next message (if one comes within a second) to
        its room's followers; whether one was handed."""
        if self._unsubscribe:
            async with self._subscribing:  # (a room followed again meanwhile is subscribed after this)
                channels = [c for c in self._unsubscribe if c not in self._followers]
                self._unsubscribe.clear()
                if channels:
                    await self._pubsub.unsubscribe(*channels)
        message = await self._pubsub.get_message(timeout=1.0)
        if message is None or message.get("type") != "message":
            return False
        raw_id, _, payload = message["data"].partition(b" ")
        entry_id = raw_id.decode("ascii", "replace")
        for follower in self._followers.get(message["channel"].decode(), ()):
            follower.queue.put_nowait((entry_id, _read(follower.stream, entry_id, payload)))
        return True

    async def _recover(self) -> bool:
        """After a lost connection: subscribe again, then fetch from each stream what was published meanwhile."""
        try:
            async with self._subscribing:
                with suppress(RedisError, OSError):
                    await self._pubsub.aclose()
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                if self._followers:
                    await self._pubsub.subscribe(*self._followers)
            for followers in list(self._followers.values()):
                for follower in list(followers):
                    start = f"({follower.last}" if follower.last != "0-0" else "-"
                    if follower.last != "0-0" and not await self._redis.xrange(follower.stream, min=follower.last,
                                                                                max=follower.last, count=1):
                        # Redis came back without its data: this room's log is gone. Read the new one from
                        # its start (a snapshot, once a node has re-seeded it).
                        log.warning("the log of %s is gone (Redis restarted empty); re-seeding it", follower.stream)
                        follower.queue.put_nowait(("0-0", LOG_LOST))
                        start = "-"
                    entries = await self._redis.xrange(follower.stream, min=start)
                    for entry_id, fields in entries:
                        follower.queue.put_nowait((entry_id.decode(), _read(follower.stream, entry_id.decode(),
                                                                             fields.get(b"e", b""))))
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return False
        except Exception:  # as in the reader: tried again, never the end of every room's reading
            log.exception("the rooms' channels could not be subscribed again")
            return False
        return True

    async def forget(self, room_id: str) -> None:
        pass  # other nodes may still follow it; the stream's TTL removes it

    async def announce(self, node: str, ttl: float, host: RelayHost | None = None) -> bool:
        try:
            before = await self._redis.set(self.presence_key(node), (host or RelayHost()).to_json(),
                                           px=int(ttl * 1000), get=True)
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            return True  # unknown: the next announcement will tell
        self._mark(True)
        return before is not None

    async def relay_hosts(self) -> dict[str, RelayHost]:
        prefix = self.presence_key("")
        try:
            keys = [key async for key in self._redis.scan_iter(match=prefix + "*", count=200)]
            values = await self._redis.mget(keys) if keys else []
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            raise BusError("the bus between nodes is unreachable") from exc
        return {key.decode()[len(prefix):]: RelayHost.from_json(value)
                for key, value in zip(keys, values, strict=True) if value is not None}

    async def hand(self, node: str, room_id: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.rpush(self.handed_key(node), room_id).expire(self.handed_key(node),
                                                                        HANDED_TTL_SECONDS).execute()
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            raise BusError("the bus between nodes is unreachable") from exc

    async def take_handed(self, node: str) -> list[str]:
        try:
            rooms = await self._redis.lpop(self.handed_key(node), HANDED_AT_ONCE)
        except (RedisError, OSError) as exc:
            self._mark(False, exc)
            raise BusError("the bus between nodes is unreachable") from exc
        return [room.decode() for room in rooms or []]

    async def succeed(self, name: str, node: str) -> None:
        try:
            before = await self._redis.set(self.name_key(name), node, ex=NAME_TTL_SECONDS, get=True)
            if before is not None and before.decode() != node:
                await self._redis.delete(self.presence_key(before.decode()))
                log.warning("node %s restarted: its previous run %s is gone", name, before.decode())
        except (RedisError, OSError) as exc:
            self._mark(False, exc)  # the old run's presence runs out by itself within a TTL

    async def withdraw(self, node: str) -> None:
        with suppress(RedisError, OSError):
            await self._redis.delete(self.presence_key(node))

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
        if self._reader is not None:
            await cancel_and_wait(self._reader)
        with suppress(RedisError, OSError):
            await self._pubsub.aclose()
        await self._redis.aclose()


@dataclass(eq=False)
class _Follower:
    stream: str
    channel: str
    last: str = "0-0"
    queue: asyncio.Queue[tuple[str, RoomEvent | Marker]] = field(default_factory=asyncio.Queue)
