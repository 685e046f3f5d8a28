"""The placement of relays among nodes (signaling/placement.py), as a table."""

from __future__ import annotations

import pytest

from signaling.placement import RelayHost, place_relay

FREE = RelayHost()
MEDIA = RelayHost(media_only=True)


@pytest.mark.parametrize(
    ("hosts", "placed"),
    [
        ({"a": FREE}, "a"),  # one node: it runs its rooms' relays
        ({"a": FREE, "b": FREE}, "a"),  # the node the room named keeps it while it has room
        ({"a": FREE, "m": MEDIA}, "m"),  # a media node comes first
        ({"a": FREE, "m1": RelayHost(media_only=True, relays=3), "m2": RelayHost(media_only=True, relays=1)},
         "m2"),  # the least loaded media node
        ({"a": FREE, "m1": MEDIA, "m2": MEDIA}, "m1"),  # a tie goes by name, so every node would choose alike
        ({"a": FREE, "m": RelayHost(media_only=True, relays=4, limit=4)}, "a"),  # a full media node is passed
        ({"a": FREE, "m": RelayHost(media_only=True, open=False)}, "a"),  # a stopping media node is passed
        ({"a": RelayHost(relays=2, limit=2), "b": RelayHost(relays=5), "c": RelayHost(relays=1, limit=3)},
         "c"),  # the named node is full: the least loaded node with room
        ({"a": RelayHost(limit=0), "b": FREE}, "b"),  # a limit of 0: this node runs none while another can
        ({"a": RelayHost(relays=2, limit=2), "b": RelayHost(relays=1, limit=1)}, "a"),  # none has room: stays
        ({"b": FREE}, "a"),  # the named node's own presence missing: it counts as a node with no limit
        ({"a": FREE, "b": RelayHost(media_only=False, open=False)}, "a"),
    ],
)
def test_place_relay(hosts: dict[str, RelayHost], placed: str) -> None:
    """Guards the order of preference: media nodes with room (least loaded), the named node if it has
    room, any node with room (least loaded), else the named node."""
    assert place_relay("a", hosts) == placed


@pytest.mark.parametrize(
    ("presence", "host"),
    [
        (RelayHost(media_only=True, relays=2, limit=8, open=False).to_json(),
         RelayHost(media_only=True, relays=2, limit=8, open=False)),
        ("1", RelayHost()),  # a node of the version before placement announced "1"
        ("{not json", RelayHost()),
        ('{"relays": "many"}', RelayHost()),
        ('{"relays": 3}', RelayHost(relays=3)),
    ],
)
def test_a_presence_reads_back_or_counts_as_a_node_with_no_limit(presence: str, host: RelayHost) -> None:
    """Guards reading other nodes' presences during a rolling upgrade: one not understood is a plain node,
    never an error that would stop the relay from starting."""
    assert RelayHost.from_json(presence) == host
