"""The rooms of this node and the outboxes of their connections: applies room effects by queueing messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import NotJoined, SignalingError, SlowConsumer
from .messages import Answer, Candidate, Offer, Participant, ServerMessage
from .room import Room, Send

OUTBOX_LIMIT = 256


class Outbox:
    """Messages waiting to be written to one connection; a client that stops reading is cut off, not buffered."""

    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self.queue: asyncio.Queue[ServerMessage | SignalingError] = asyncio.Queue()
        self.limit = limit
        self.overflowed = False

    def put(self, message: ServerMessage) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            self.queue.put_nowait(SlowConsumer("Too many messages are waiting for this connection."))
            return
        self.queue.put_nowait(message)

    def put_control(self, item: ServerMessage | SignalingError | object) -> None:
        """Answers to the connection's own requests (pong, errors, end): never refused, never counted."""
        self.queue.put_nowait(item)  # type: ignore[arg-type]


class RoomHub:
    """Holds this node's rooms. The seam for several nodes: effects are delivered through ``deliver``."""

    def __init__(self, *, max_participants: int, room_factory: Callable[..., Room] = Room) -> None:
        self.max_participants = max_participants
        self._room_factory = room_factory
        self._rooms: dict[str, Room] = {}
        self._outboxes: dict[str, Outbox] = {}

    def room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def join(self, room_id: str, participant: Participant, outbox: Outbox) -> None:
        room = self._rooms.get(room_id) or self._room_factory(room_id, max_participants=self.max_participants)
        effects = room.join(participant)  # raises before anything changes if the join is refused
        self._rooms[room_id] = room
        self._outboxes[participant.id] = outbox
        self.deliver(effects)

    def leave(self, room_id: str, participant_id: str) -> None:
        room = self._rooms.get(room_id)
        self._outboxes.pop(participant_id, None)
        if room is None:
            return
        self.deliver(room.leave(participant_id))
        if room.is_empty:
            del self._rooms[room_id]

    def forward(self, room_id: str, sender_id: str, message: Offer | Answer | Candidate) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            raise NotJoined("Join the room before sending negotiation messages.")
        self.deliver(room.forward(sender_id, message))

    def deliver(self, effects: list[Send]) -> None:
        for effect in effects:
            outbox = self._outboxes.get(effect.to)
            if outbox is not None:
                outbox.put(effect.message)
