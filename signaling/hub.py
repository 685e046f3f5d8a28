"""This node's side of the rooms: follows each room's log, applies it to a local copy, and carries out
the effects that belong to this node (messages to its sockets, its grace timers, its chat writes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from . import logcontext
from .effects import (
    ANY_NODE,
    Close,
    Deliver,
    Effect,
    StartGrace,
    StartRelay,
    StopRelay,
    StoreChat,
    is_relay_conn,
    relay_conn,
)
from .errors import BusUnavailable, CloseCode
from .events import (
    ChatStored,
    GraceExpired,
    Joining,
    NodeLost,
    NodeStopping,
    RelayHandoff,
    Resuming,
    RoomEvent,
    Snapshot,
)
from .grants import Granted
from .log import CAUGHT_UP, LOG_LOST, UNREADABLE, BusError, LogLost, RoomLog
from .members import Status
from .outbox import OUTBOX_LIMIT, CloseRequest, Outbox
from .placement import RelayHost, place_relay
from .room import Room
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

IDLE_ROOM_SECONDS = 5.0  # how long a room with no local socket is still followed
CATCH_UP_SECONDS = 5.0  # how long a join waits for this node to read a room's log before refusing
CHAT_STORE_SECONDS = 5.0  # how long a chat line may wait for the database before it is refused
# Presence: this node's key lives PRESENCE_KEEPS of the TTL and is refreshed, and others checked, every
# PRESENCE_EVERY of it. A killed node is declared lost within (KEEPS + EVERY) TTL < TTL; a node whose loop
# stalls less than (KEEPS - EVERY) TTL is never taken for lost.
PRESENCE_KEEPS = 0.75
PRESENCE_EVERY = 0.125
BOUNDED_APPEND_SECONDS = 2.0  # how long a stopping node tries to tell a room it is going


ChatStore = Callable[[str, StoreChat], Awaitable[None]]
RelayStarter = Callable[["RoomHub", str, int], None]  # (hub, room id, relay epoch): run the room's relay here
NodeLostListener = Callable[[str], None]  # (node id): this node has just declared that node lost


@dataclass(frozen=True)
class Census:
    """What this node holds now, for monitoring: the rooms it follows, its clients' sockets (relays left
    out) and the participants on them, by status (a reconnecting one counts where its socket was)."""

    rooms: int
    connections: int
    participants: dict[Status, int]


@dataclass
class Replica:
    """This node's copy of one room, and what follows its log."""

    room: Room
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    connections: set[str] = field(default_factory=set)
    idle_since: float | None = None
    # The last chat line this node is storing: lines are stored, and shown, one after another in log order.
    chat_tail: asyncio.Future[None] | None = None


class RoomHub:
    def __init__(self, log_: RoomLog, *, node_id: str, max_participants: int, grace_seconds: float = 30.0,
                 presence_ttl: float = 10.0, chat_store: ChatStore | None = None,
                 relay_starter: RelayStarter | None = None, node_name: str | None = None,
                 media_only: bool = False, relay_limit: int | None = None,
                 relay_count: Callable[[], int] = lambda: 0, on_node_lost: NodeLostListener | None = None) -> None:
        """``node_id``: this run of the node, unique to it (a node restarted is a new one); ``node_name``: the
        name it runs under (TELEMED_NODE_ID), whose previous run is declared gone when this one starts.
        ``media_only``: this node serves no participant and runs relays handed to it; ``relay_limit``: the
        most relays it should run (None: no limit); ``relay_count``: how many it runs now. ``on_node_lost``:
        told of each node this one declares lost (what it left beyond its rooms, its recordings, is the
        server's to finish)."""
        self.log = log_
        self.node_id = node_id
        self.node_name = node_name
        self.max_participants = max_participants
        self.grace_seconds = grace_seconds
        self.presence_ttl = presence_ttl
        self.chat_store = chat_store
        self.relay_starter = relay_starter
        self.media_only = media_only
        self.relay_limit = relay_limit
        self.relay_count = relay_count
        self.on_node_lost = on_node_lost
        self._replicas: dict[str, Replica] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._presence: asyncio.Task[None] | None = None
        self._relay_hosts: dict[str, RelayHost] = {}  # every node's presence, as last read
        self.stopping = False  # shutting down: no join or resume is taken here any more
        self._blind_until = 0.0  # until then, another node's missing presence proves nothing (see _sweep)

    @property
    def healthy(self) -> bool:
        return self.log.healthy

    # ---- life cycle ----

    async def start(self) -> None:
        await self.log.announce(self.node_id, self.presence_ttl * PRESENCE_KEEPS, self.relay_host())
        if self.node_name is not None:
            await self.log.succeed(self.node_name, self.node_id)
        await self._read_relay_hosts()
        self._presence = asyncio.create_task(self._keep_presence())

    def relay_host(self) -> RelayHost:
        """What this node says about itself in its presence, for the placement of relays."""
        return RelayHost(media_only=self.media_only, relays=self.relay_count(), limit=self.relay_limit,
                         open=not self.stopping)

    async def drain(self, seconds: float) -> None:
        """Stop gracefully (SIGTERM): take nothing new; tell every room this node is going, so a relay running
        here moves to another node now; close every socket with 1001 so its client resumes on another node;
        wait (at most ``seconds``) until the rooms have seen them go; then declare this node lost, so that
        other nodes keep the seats of those not back yet (with their grace timers, not this node's)."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        # Closed at once in this node's presence: no relay is handed here any more.
        with suppress(TimeoutError):
            await asyncio.wait_for(self.log.announce(self.node_id, self.presence_ttl * PRESENCE_KEEPS,
                                                     self.relay_host()), BOUNDED_APPEND_SECONDS)
        rooms = list(self._replicas)
        await asyncio.gather(*(self._append_bounded(room_id, NodeStopping(node=self.node_id)) for room_id in rooms))
        # What the rooms say on reading it (a recording stopped with the relay, the relay's new place) goes to
        # this node's sockets too: they close after it, not before, or their clients would miss it.
        told = loop.time() + min(seconds, BOUNDED_APPEND_SECONDS)
        while loop.time() < told and any(self.node_id not in self._replicas[room_id].room.stopping  # noqa: ASYNC110
                                          for room_id in rooms if room_id in self._replicas):
            await asyncio.sleep(0.02)
        self.close_all(CloseCode.GOING_AWAY, "server shutting down")
        deadline = loop.time() + seconds
        # (Polled: the rooms change as their logs are read, with no one event to wait on.)
        while loop.time() < deadline and any(self._holds(replica) for replica in self._replicas.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if storing := [r.chat_tail for r in self._replicas.values() if r.chat_tail is not None]:
            await asyncio.wait(storing, timeout=CHAT_STORE_SECONDS)  # lines being kept are shown or refused
        if self._presence is not None:
            self._presence.cancel()  # else it would announce this node again after it withdrew
        await asyncio.gather(*(self._append_bounded(room_id, NodeLost(node=self.node_id))
                               for room_id, replica in list(self._replicas.items())
                               if any(m.at.node == self.node_id for m in replica.room.members.values())))
        await self.log.withdraw(self.node_id)

    def _holds(self, replica: Replica) -> bool:
        """Whether a participant of this room is still on a live socket here."""
        return any(m.at.node == self.node_id and m.status is not Status.RECONNECTING
                   for m in replica.room.members.values())

    async def _append_bounded(self, room_id: str, event: RoomEvent) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._append_retrying(room_id, event), BOUNDED_APPEND_SECONDS)

    async def stop(self) -> None:
        replicas = (r.task for r in self._replicas.values())
        tasks = [t for t in (self._presence, *self._tasks, *replicas) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)
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

    def census(self) -> Census:
        """Counted now, from this node's copies of its rooms: cheap enough for every scrape."""
        participants = dict.fromkeys(Status, 0)
        for replica in self._replicas.values():
            for member in replica.room.members.values():
                if member.at.node == self.node_id:
                    participants[member.status] += 1
        return Census(rooms=len(self._replicas), participants=participants,
                      connections=sum(1 for conn in self._outboxes if not is_relay_conn(conn)))

    def here(self) -> dict[str, dict[str, Granted]]:
        """Who sits or waits in a room on this node now, by identity: the rooms each is in, with what it may do
        in each (and which of its account's changes that is, if known)."""
        found: dict[str, dict[str, Granted]] = {}
        for room_id, replica in self._replicas.items():
            for member in replica.room.members.values():
                if member.at.node == self.node_id:
                    found.setdefault(member.identity, {})[room_id] = Granted(member.grants, member.grants_revision)
        return found

    def room(self, room_id: str) -> Room | None:
        replica = self._replicas.get(room_id)
        return replica.room if replica else None

    async def submit(self, room_id: str, event: RoomEvent, *, conn: str | None = None) -> None:
        """Append an event to the room's log, refusing at once what the room would refuse."""
        replica = await self._replica(room_id)
        if conn is not None:
            replica.connections.add(conn)
            replica.idle_since = None
        if self.stopping and isinstance(event, Joining | Resuming):
            raise BusUnavailable("This server is shutting down; connect again (to another server).")
        if (error := replica.room.refusal(event)) is not None:
            raise error
        try:
            await self._append(room_id, event)
        except BusError:
            raise BusUnavailable("This server cannot reach the others right now; please try again.") from None

    async def _append(self, room_id: str, event: RoomEvent) -> None:
        """Append to a room's log. If this node's copy has a history and the log is gone (Redis restarted
        empty), re-seed the log from the copy first, so the event does not start a room without its members."""
        replica = self._replicas.get(room_id)
        continuing = replica is not None and replica.room.seq > 0
        try:
            await self.log.append(room_id, event, continuing=continuing)
        except LogLost:
            assert replica is not None
            await self._reseed(room_id, replica)
            await self.log.append(room_id, event)

    # ---- following the logs ----

    async def _replica(self, room_id: str) -> Replica:
        replica = self._replicas.get(room_id)
        if replica is None:
            replica = Replica(Room(room_id, max_participants=self.max_participants))
            self._replicas[room_id] = replica
            # Its own context: the room's loop outlives the connection or request that happened to start it.
            replica.task = asyncio.create_task(self._follow(room_id, replica), context=logcontext.room_context(room_id))
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
                # A relay handed to this node before it followed the room (placement.py): start it now.
                room = replica.room
                if room.relay_node == self.node_id and self.relay_starter is not None:
                    self.relay_starter(self, room_id, room.relay_epoch)
                continue
            if item is LOG_LOST:  # Redis lost the log: start it again from this copy, unless a node did first
                self._spawn(self._reseed_retrying(room_id, replica))
                continue
            seq = item.seq if isinstance(item, Snapshot) else seq + 1
            if item is UNREADABLE:  # logged by the log; it still takes its place, as on every other node
                replica.room.seq = seq  # (a snapshot of this copy says where it stands)
                continue
            try:
                effects = replica.room.apply(item, seq)  # type: ignore[arg-type]
            except Exception:  # a bug must not stop the room for everyone on this node
                log.exception("room %s: could not apply event %d", room_id, seq)
                continue
            if live:
                self._execute(room_id, effects)

    async def _reseed(self, room_id: str, replica: Replica) -> None:
        if await self.log.reseed(room_id, replica.room.snapshot()):
            log.warning("room %s: re-seeded its log from this node's copy (as of event %d)", room_id, replica.room.seq)

    async def _reseed_retrying(self, room_id: str, replica: Replica) -> None:
        delay = 0.2
        while self._replicas.get(room_id) is replica:
            try:
                await self._reseed(room_id, replica)
                return
            except BusError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _store_chat(self, room_id: str, line: StoreChat, after: asyncio.Future[None] | None) -> None:
        """Keep a chat line with the consultation, then tell the room whether it was kept: only then is it
        shown (or its sender told it was not). ``after``: the line before it, which goes first."""
        if after is not None:
            await asyncio.wait({after})
        stored = False
        if self.chat_store is None:
            stored = True
        else:
            try:
                await asyncio.wait_for(self.chat_store(room_id, line), CHAT_STORE_SECONDS)
                stored = True
            except Exception as exc:  # the database is down or slow: the line is refused, not lost unseen
                log.warning("room %s: chat line %d could not be stored (%s); its sender is told",
                            room_id, line.seq, type(exc).__name__)
        await self._append_retrying(room_id, ChatStored(seq=line.seq, stored=stored))

    def _execute(self, room_id: str, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Deliver | Close):
                if effect.at.node != self.node_id or (outbox := self._outboxes.get(effect.at.conn)) is None:
                    continue
                if isinstance(effect, Deliver):
                    outbox.put(effect.message)
                else:
                    outbox.put_control(CloseRequest(effect.code, effect.reason))
            elif isinstance(effect, StartGrace) and effect.node in (self.node_id, ANY_NODE):
                self._spawn(self._expire_later(room_id, effect))
            elif isinstance(effect, StoreChat) and effect.node == self.node_id \
                    and (replica := self._replicas.get(room_id)) is not None:
                replica.chat_tail = self._spawn(self._store_chat(room_id, effect, replica.chat_tail))
            elif isinstance(effect, StartRelay) and effect.node == self.node_id and self.relay_starter:
                # Decided now, from the presences as last read: a relay that stays here starts before the
                # offers that follow in the log are delivered to it.
                node = self.node_id if effect.placed else place_relay(
                    self.node_id, {**self._relay_hosts, self.node_id: self.relay_host()})
                if node == self.node_id:
                    self.relay_starter(self, room_id, effect.epoch)
                else:
                    self._spawn(self._hand_relay(room_id, effect.epoch, node))
            elif isinstance(effect, StopRelay) and effect.node == self.node_id:
                if (outbox := self._outboxes.get(relay_conn(room_id, effect.epoch))) is not None:
                    outbox.put_control(CloseRequest(CloseCode.GOING_AWAY, "relay moved"))

    async def _hand_relay(self, room_id: str, epoch: int, node: str) -> None:
        """Hand relay ``epoch``, which the room gave this node, to ``node`` (placement.py), and wake that node
        up; if the log cannot be reached, the relay runs here."""
        assert self.relay_starter is not None
        try:
            await asyncio.wait_for(self._append(room_id, RelayHandoff(epoch=epoch, node=node)), BOUNDED_APPEND_SECONDS)
            await asyncio.wait_for(self.log.hand(node, room_id), BOUNDED_APPEND_SECONDS)
            log.info("room %s: relay %d handed to node %s", room_id, epoch, node)
        except (BusError, TimeoutError):
            log.warning("room %s: could not hand relay %d to node %s; it runs here", room_id, epoch, node)
            self.relay_starter(self, room_id, epoch)

    async def _follow_handed(self, room_id: str) -> None:
        try:
            replica = await self._replica(room_id)
        except BusUnavailable:
            log.warning("room %s: a relay was handed here but its log cannot be read", room_id)
            return
        if not replica.connections and replica.idle_since is None:
            replica.idle_since = asyncio.get_running_loop().time()  # dropped unless its relay is running here

    async def tell(self, room_id: str, event: RoomEvent) -> None:
        """Append an event the server owes the room (a consent, an expulsion) now, so what follows comes after
        it; if the bus is away, go on trying in the background rather than hold the caller."""
        try:
            await asyncio.wait_for(self._append(room_id, event), BOUNDED_APPEND_SECONDS)
        except (BusError, TimeoutError):
            self.owe(room_id, event)  # (these events are idempotent: appending one twice changes nothing)

    def owe(self, room_id: str, event: RoomEvent) -> None:
        """Append an event the room must get even if the bus is down now (a socket's leave or disconnect):
        dropping it would leave a participant in everyone's view for good."""
        self._spawn(self._append_retrying(room_id, event))

    async def _expire_later(self, room_id: str, grace: StartGrace) -> None:
        # A participant whose node died and who has not resumed within a presence TTL is not coming back.
        await asyncio.sleep(self.presence_ttl if grace.reason == "node-lost" else self.grace_seconds)
        await self._append_retrying(room_id, GraceExpired(participant_id=grace.participant_id, epoch=grace.epoch,
                                                          reason=grace.reason))  # type: ignore[arg-type]

    async def _append_retrying(self, room_id: str, event: RoomEvent) -> None:
        """For events the node owes the room (timers, lost nodes): keep trying until the bus is back."""
        delay = 0.2
        while True:
            try:
                await self._append(room_id, event)
                return
            except BusError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- presence of nodes, and forgetting idle rooms ----

    async def _keep_presence(self) -> None:
        """Refresh this node's presence; append NodeLost for nodes whose presence ran out; drop idle rooms."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.presence_ttl * PRESENCE_EVERY)
            if not await self.log.announce(self.node_id, self.presence_ttl * PRESENCE_KEEPS, self.relay_host()):
                # Our own key was gone: Redis lost its data (restarted empty), or this node stalled. Others'
                # keys may be missing for the same reason: give them a TTL to announce themselves again.
                self._blind_until = loop.time() + self.presence_ttl
            if loop.time() >= self._blind_until:
                await self._sweep()
            await self._read_relay_hosts()
            now = loop.time()
            for room_id, replica in list(self._replicas.items()):
                if replica.idle_since is not None and now - replica.idle_since > IDLE_ROOM_SECONDS \
                        and not self._owes_timer(replica):
                    await self._drop(room_id, replica)

    async def _read_relay_hosts(self) -> None:
        """Read every node's presence, for the placement of the next relays (kept as they were if Redis is
        away: a relay then stays where the room puts it, most likely); and follow the rooms whose relay
        another node handed to this one since the last time: the relay starts as this node's copy of the room
        catches up (see ``_follow``), and the room is forgotten like any once its relay has gone."""
        if self.relay_starter is None:
            return
        with suppress(BusError):
            self._relay_hosts = await self.log.relay_hosts()
            for room_id in await self.log.take_handed(self.node_id):
                self._spawn(self._follow_handed(room_id))

    async def _sweep(self) -> None:
        """Declare lost, in every room that still counts on them, the nodes whose presence ran out: those
        where members sit, and those running a relay. Each node is asked about once per sweep."""
        rooms: dict[str, list[str]] = {}
        for room_id, replica in self._replicas.items():
            room = replica.room
            nodes = {m.at.node for m in room.members.values()} | ({room.relay_node} if room.relay_node else set())
            for node in nodes - room.lost_nodes - {self.node_id}:
                rooms.setdefault(node, []).append(room_id)
        for node, room_ids in rooms.items():
            if not await self.log.node_alive(node):
                log.warning("node %s is gone; its participants are reconnecting in %d room(s)", node, len(room_ids))
                for room_id in room_ids:
                    self._spawn(self._append_retrying(room_id, NodeLost(node=node)))
                if self.on_node_lost is not None:
                    self.on_node_lost(node)

    async def node_gone(self, node: str) -> bool:
        """Whether ``node``'s presence has run out (killed, or cut off from the others), as the sweep tells it:
        never this node; never while this node cannot tell (its own presence was just found missing: the log
        may have lost everyone's), nor when the log does not answer."""
        if node == self.node_id or asyncio.get_running_loop().time() < self._blind_until:
            return False
        return not await self.log.node_alive(node)

    def _owes_timer(self, replica: Replica) -> bool:
        """A member is reconnecting whose timer this node runs (it was here, or its node is lost): it will
        most likely resume within the grace period, so keep the copy rather than replay the room's log."""
        room = replica.room
        return any(m.status is Status.RECONNECTING and (m.at.node == self.node_id or m.at.node in room.lost_nodes)
                   for m in room.members.values())

    async def _drop(self, room_id: str, replica: Replica) -> None:
        self._replicas.pop(room_id, None)
        if replica.task is not None:
            await cancel_and_wait(replica.task)
        if replica.room.is_empty:
            await self.log.forget(room_id)
