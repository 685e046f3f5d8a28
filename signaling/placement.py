"""Where a room's relay runs. The room names a node (that of the participant who made it relayed); that node
then asks every node's presence what it can take, and keeps the relay or hands it over. Pure: the hub reads
the presences and carries the choice out.

Each node says, in its presence, whether it takes media only (``telemed serve --role media``), how many relays
it runs and the most it may run (``TELEMED_RELAY_LIMIT``). A media-only node with room comes first (the
fewest relays first), so that signaling nodes keep their loop for signaling; then the node the room named,
if it has room; then any other node with room. When no node has room, the relay stays where the room put it:
a call through an overloaded node is better than no call, and that node's /readyz says ``over-capacity``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RelayHost:
    """What a node says about itself: ``media_only``, the ``relays`` it runs now and its ``limit`` (None: no
    limit); ``open`` is False while it stops (it takes nothing new)."""

    media_only: bool = False
    relays: int = 0
    limit: int | None = None
    open: bool = True

    @property
    def has_room(self) -> bool:
        return self.open and (self.limit is None or self.relays < self.limit)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> RelayHost:
        """A presence of an older version, or one not understood, reads as a node with no limit."""
        try:
            fields = json.loads(data)
            return cls(media_only=bool(fields.get("media_only", False)), relays=int(fields.get("relays", 0)),
                       limit=None if fields.get("limit") is None else int(fields["limit"]),
                       open=bool(fields.get("open", True)))
        except (ValueError, TypeError, AttributeError):
            return cls()


def place_relay(named: str, hosts: Mapping[str, RelayHost]) -> str:
    """The node that should run a relay the room gave to ``named``, given each live node's presence
    (``named``'s own included, or it counts as a node with no limit)."""
    def load(node: str) -> tuple[int, str]:
        return hosts[node].relays, node

    media = sorted((node for node, host in hosts.items() if host.media_only and host.has_room), key=load)
    if media:
        return media[0]
    if hosts.get(named, RelayHost()).has_room:
        return named
    others = sorted((node for node, host in hosts.items() if node != named and host.has_room), key=load)
    return others[0] if others else named
