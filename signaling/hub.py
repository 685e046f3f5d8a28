"""This node's side of the rooms: follows each room's log, applies it to a local copy, and carries out
the effects that belong to this node (messages to its sockets, its grace timers, its chat writes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from .errors import BusUnavailable, SignalingError, SlowConsumer
from .events import GraceExpired, NodeLost, RoomEvent
from .log import CAUGHT_UP, BusError, RoomLog
from .messages import ServerMessage
from .room import Close, Deliver, Effect, Room, StartGrace, StartRelay, Status, StoreChat

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 256
IDLE_ROOM_SECONDS = 5.0  # how long a room with no local socket is still followed
CATCH_UP_SECONDS = 5.0  # how long a join waits for this node to read a room's log before refusing
CHAT_STORE_SECONDS = 5.0  # how long a chat line's delivery waits for the database before going out unstored


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


ChatStore = Callable[[str, StoreChat], Awaitable[None]]
RelayStarter = Callable[["RoomHub", str, int], None]  # (hub, room id, relay epoch): run the room's relay here


@dataclass
class Replica:
    """This node's copy of one room, and what follows its log."""

    room: Room
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    connections: set[str] = field(default_factory=set)
    idle_since: float | None = None
    # Effects waiting behind a chat line being stored, in log order, and the task carrying them out.
    # (A list: rarely more than a few long, and an empty one is 56 bytes where a deque is 760, per room.)
    backlog: list[list[Effect]] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None


class RoomHub:
    def __init__(self, log_: RoomLog, *, node_id: str, max_participants: int, grace_seconds: float = 30.0,
                 presence_ttl: float = 10.0, chat_store: ChatStore | None = None,
                 relay_starter: RelayStarter | None = None) -> None:
        self.log = log_
        self.node_id = node_id
        self.max_participants = max_participants
        self.grace_seconds = grace_seconds
        self.presence_ttl = presence_ttl
        self.chat_store = chat_store
        self.relay_starter = relay_starter
        self._replicas: dict[str, Replica] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._presence: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self.log.healthy

    # ---- life cycle ----

    async def start(self) -> None:
        await self.log.announce(self.node_id, self.presence_ttl)
        self._presence = asyncio.create_task(self._keep_presence())

    async def stop(self) -> None:
        tasks = [t for t in (self._presence, *self._tasks, *(r.task for r in self._replicas.values()),
                             *(r.draining for r in self._replicas.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._replicas.clear()

    # ---- connections ----

    def attach(self, conn: str, *, room_id: str | None = None, limit: int = OUTBOX_LIMIT) -> Outbox:
        """An outbox for one connection; with ``room_id``, the connection keeps that room followed here."""
        outbox = Outbox(limit)
        self._outboxes[conn] = outbox
        if room_id is not None and (replica := self._replicas.get(room_id)) is not None:
            replica.connections.add(conn)
            replica.idle_since = None
        return outbox

    def detach(self, conn: str, room_id: str) -> None:
        self._outboxes.pop(conn, None)
        replica = self._replicas.get(room_id)
        if replica is not None:
            replica.connections.discard(conn)
            if not replica.connections:
                replica.idle_since = asyncio.get_running_loop().time()

    def close_all(self, code: int, reason: str) -> None:
        """Ask every socket of this node to close (the node is shutting down): clients resume elsewhere."""
        for outbox in self._outboxes.values():
            outbox.put_control(CloseRequest(code, reason))

    def room(self, room_id: str) -> Room | None:
        replica = self._replicas.get(room_id)
        return replica.room if replica else None

    async def submit(self, room_id: str, event: RoomEvent, *, conn: str | None = None) -> None:
        """Append an event to the room's log, refusing at once what the room would refuse."""
        replica = await self._replica(room_id)
        if conn is not None:
            replica.connections.add(conn)
            replica.idle_since = None
        if (error := replica.room.refusal(event)) is not None:
            raise error
        try:
            await self.log.append(room_id, event)
        except BusError:
            raise BusUnavailable("This server cannot reach the others right now; please try again.") from None

    # ---- following the logs ----

    async def _replica(self, room_id: str) -> Replica:
        replica = self._replicas.get(room_id)
        if replica is None:
            replica = Replica(Room(room_id, max_participants=self.max_participants))
            self._replicas[room_id] = replica
            replica.task = asyncio.create_task(self._follow(room_id, replica))
        try:
            await asyncio.wait_for(replica.ready.wait(), CATCH_UP_SECONDS)
        except TimeoutError:
            raise BusUnavailable("This server cannot reach the others right now; please try again.") from None
        return replica

    async def _follow(self, room_id: str, replica: Replica) -> None:
        seq, live = 0, False
        async for item in self.log.follow(room_id):
            if item is CAUGHT_UP:
                live = True
                replica.ready.set()
                continue
            seq += 1
            try:
                effects = replica.room.apply(item, seq)  # type: ignore[arg-type]
            except Exception:  # a bug must not stop the room for everyone on this node
                log.exception("room %s: could not apply event %d", room_id, seq)
                continue
            if live:
                self._carry_out(room_id, replica, effects)

    def _carry_out(self, room_id: str, replica: Replica, effects: list[Effect]) -> None:
        """Carry out one event's effects, in log order. A chat line is stored before anyone here is told
        of it, so whoever saw it can read it back from the API at once: its effects, and every later
        event's, wait for the write (the room's state does not: it is already applied)."""
        if replica.draining is None and not any(isinstance(e, StoreChat) for e in effects):
            self._execute(room_id, effects)
            return
        replica.backlog.append(effects)
        if replica.draining is None:
            replica.draining = asyncio.create_task(self._drain(room_id, replica))

    async def _drain(self, room_id: str, replica: Replica) -> None:
        try:
            while replica.backlog:
                effects = replica.backlog.pop(0)
                for effect in effects:
                    if isinstance(effect, StoreChat):
                        await self._store_chat(room_id, effect)
                self._execute(room_id, effects)
        finally:
            replica.draining = None

    async def _store_chat(self, room_id: str, line: StoreChat) -> None:
        """Every node that follows the room writes the line before delivering it (the store ignores a line
        already kept), so no node waits on another's write. If the database fails, the line still goes
        out: a chat that stops is worse than a line missing from the record, which the log names."""
        if self.chat_store is None:
            return
        try:
            await asyncio.wait_for(self.chat_store(room_id, line), CHAT_STORE_SECONDS)
        except Exception:
            log.exception("room %s: chat line %d delivered before it could be stored", room_id, line.seq)

    def _execute(self, room_id: str, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Deliver | Close):
                if effect.at.node != self.node_id or (outbox := self._outboxes.get(effect.at.conn)) is None:
                    continue
                if isinstance(effect, Deliver):
                    outbox.put(effect.message)
                else:
                    outbox.put_control(CloseRequest(effect.code, effect.reason))
            elif isinstance(effect, StartGrace) and effect.node == self.node_id:
                self._spawn(self._expire_later(room_id, effect))
            elif isinstance(effect, StartRelay) and effect.node == self.node_id and self.relay_starter:
                self.relay_starter(self, room_id, effect.epoch)

    def owe(self, room_id: str, event: RoomEvent) -> None:
        """Append an event the room must get even if the bus is down now (a socket's leave or disconnect):
        dropping it would leave a participant in everyone's view for good."""
        self._spawn(self._append_retrying(room_id, event))

    async def _expire_later(self, room_id: str, grace: StartGrace) -> None:
        await asyncio.sleep(self.grace_seconds)
        await self._append_retrying(room_id, GraceExpired(participant_id=grace.participant_id, epoch=grace.epoch))

    async def _append_retrying(self, room_id: str, event: RoomEvent) -> None:
        """For events the node owes the room (timers, lost nodes): keep trying until the bus is back."""
        delay = 0.2
        while True:
            try:
                await self.log.append(room_id, event)
                return
            except BusError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- presence of nodes, and forgetting idle rooms ----

    async def _keep_presence(self) -> None:
        """Refresh this node's presence; append NodeLost for nodes whose presence ran out; drop idle rooms."""
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            await self.log.announce(self.node_id, self.presence_ttl)
            now = asyncio.get_running_loop().time()
            for room_id, replica in list(self._replicas.items()):
                others = {m.at.node for m in replica.room.members.values()} - {self.node_id}
                for node in others:
                    if not await self.log.node_alive(node):
                        log.warning("node %s is gone; removing its participants from %s", node, room_id)
                        self._spawn(self._append_retrying(room_id, NodeLost(node=node)))
                if replica.idle_since is not None and now - replica.idle_since > IDLE_ROOM_SECONDS \
                        and not self._owes_timer(replica):
                    await self._drop(room_id, replica)

    def _owes_timer(self, replica: Replica) -> bool:
        """A member of this node is reconnecting: it will most likely resume here within the grace period,
        so keep the copy rather than replay the room's log when it does."""
        return any(m.at.node == self.node_id and m.status is Status.RECONNECTING
                   for m in replica.room.members.values())

    async def _drop(self, room_id: str, replica: Replica) -> None:
        self._replicas.pop(room_id, None)
        for task in (replica.task, replica.draining):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if replica.room.is_empty:
            await self.log.forget(room_id)
