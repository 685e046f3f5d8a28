"""What applying a room event asks of the nodes: effects, carried out by the node they name (or the node
holding the connection they name). The room decides; the hub (and the relay it starts) does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import Where
from .messages import Participant, ServerMessage

ANY_NODE = "*"  # a timer every node following the room runs (the node that would have is gone)
RELAY_PREFIX = "relay:"  # how a relay's connection name begins


def relay_conn(room_id: str, epoch: int) -> str:
    """A relay's place among its node's connections: room events for it are delivered there. Each relay
    started has its own, so a relay moved away and back never shares an outbox with the one before."""
    return f"{RELAY_PREFIX}{room_id}:{epoch}"


def is_relay_conn(conn: str) -> bool:
    """Whether a connection is a relay's (a client's is a random URL-safe name, which has no colon)."""
    return conn.startswith(RELAY_PREFIX)


@dataclass(frozen=True)
class Deliver:
    at: Where
    message: ServerMessage


@dataclass(frozen=True)
class Close:
    at: Where
    code: int
    reason: str


@dataclass(frozen=True)
class StartGrace:
    """Start the grace timer on ``node`` (ANY_NODE: on every node following the room); when it runs out,
    append GraceExpired(participant_id, epoch, reason). ``node-lost``: the participant's socket died with
    its node, and a live client reconnects at once, so the timer is short (a presence TTL); ``timeout``:
    the reconnection grace."""

    node: str
    participant_id: str
    epoch: int
    reason: str = "timeout"


@dataclass(frozen=True)
class StoreChat:
    """Keep a chat line with the consultation, then append ChatStored(seq, stored) (``node``: the sender's,
    the only one that writes it). Nobody is shown the line before it is kept: a line is stored or refused,
    never only shown."""

    node: str
    session: str
    seq: int
    participant: Participant
    text: str
    at_time: float


@dataclass(frozen=True)
class StartRelay:
    """Run this room's media relay on ``node`` (``epoch`` counts relays started, so a stale one stops).
    ``placed``: the relay was handed to ``node``, which runs it; otherwise ``node`` may hand it on."""

    node: str
    epoch: int
    placed: bool = False


@dataclass(frozen=True)
class StopRelay:
    """Stop relay ``epoch`` on ``node``: the room moved it elsewhere (its node is stopping, or was lost)."""

    node: str
    epoch: int


Effect = Deliver | Close | StartGrace | StoreChat | StartRelay | StopRelay
