"""Where a relay runs across real nodes: on a media node (``TELEMED_NODE_ROLE=media``) when there is one, on
another node when the one the room names is at its ``TELEMED_RELAY_LIMIT``; and back on a participant's node
when the media node dies."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from ..support.cluster import Cluster
from ..support.relayed_call import assert_no_failed_resume, every_pair_decodes, new_relay_epoch, three_in_relay
from .conftest import PRESENCE_TTL

pytestmark = pytest.mark.faults

KILL_TO_MEDIA = PRESENCE_TTL + 5  # as for a relay node killed: declared lost, a new relay, one offer each


async def relays_on(http: aiohttp.ClientSession, cluster: Cluster) -> dict[str, int]:
    """The relays each node says it runs, by the node's name in the cluster (its /readyz)."""
    counts = {}
    for name, node in cluster.nodes.items():
        if node.running:
            async with http.get(f"{node.url}/readyz") as response:
                counts[name] = (await response.json())["relays"]["rooms"]
    return counts


async def test_a_media_node_runs_the_relay_and_when_it_dies_a_participant_s_node_takes_it(
        start_cluster: Callable[..., Cluster], http: aiohttp.ClientSession,
        recovery: Callable[[str, float], None]) -> None:
    """Guards media nodes: with a media node behind the same Redis, a room that becomes relayed on node c has
    its relay handed to the media node (a new epoch everyone is told of) and media among all three flows
    through it while a, b and c run none; the media node serves no page. When it is SIGKILLed, the relay
    starts again on a participant's node and media returns within the presence TTL plus 5 s."""
    cluster = start_cluster(media=("m",))
    async with http.get(f"{cluster.url('m')}/login") as response:
        assert response.status == 404, "a media node serves no page"
    call = await three_in_relay(http, cluster, relay_on="c")
    try:
        epoch = await new_relay_epoch(call.li, call.epoch, 0)  # the relay c was given, handed to m
        assert await relays_on(http, cluster) == {"a": 0, "b": 0, "c": 0, "m": 1}
        await every_pair_decodes(call.peers, since=0, within=20, after_epoch=epoch - 1)

        killed = await cluster.kill("m")
        epochs = {await new_relay_epoch(peer, epoch, killed) for peer in call.peers}
        assert len(epochs) == 1, f"one new relay, told the same to everyone: {epochs}"
        took = await every_pair_decodes(call.peers, since=killed, within=KILL_TO_MEDIA + 10, after_epoch=epoch)
        recovery("media node killed to media among all three", took)
        assert took < KILL_TO_MEDIA, f"media back {took:.1f} s after the kill"
        counts = await relays_on(http, cluster)
        assert sum(counts.values()) == 1 and "m" not in counts, counts
        for peer in call.peers:
            assert not peer.seen("participant-reconnecting", after=killed), f"{peer.name}'s node did not die"
        assert_no_failed_resume(*call.peers)
    finally:
        await call.close()


async def test_a_node_at_its_relay_limit_hands_the_relay_to_a_node_with_room(
        start_cluster: Callable[..., Cluster], http: aiohttp.ClientSession) -> None:
    """Guards TELEMED_RELAY_LIMIT: node c may run no relay, so the relay of a room made relayed on c runs on
    another node (the least loaded, a), media flows among all three through it, and c's /readyz states its
    limit and stays ready."""
    cluster = start_cluster(env_of={"c": {"TELEMED_RELAY_LIMIT": "0"}})
    call = await three_in_relay(http, cluster, relay_on="c")
    try:
        epoch = await new_relay_epoch(call.patient, call.epoch, 0)
        await every_pair_decodes(call.peers, since=0, within=20, after_epoch=epoch - 1)
        assert await relays_on(http, cluster) == {"a": 1, "b": 0, "c": 0}
        async with http.get(f"{cluster.url('c')}/readyz") as response:
            ready = await response.json()
        assert response.status == 200 and ready["relays"] == {"rooms": 0, "streams": 0, "limit": 0}, ready
    finally:
        await call.close()
