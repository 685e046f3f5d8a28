"""The node running a room's relay is SIGKILLed under a three-party call spread over nodes a, b and c."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from ..support.cluster import Cluster
from ..support.relayed_call import assert_no_failed_resume, every_pair_decodes, new_relay_epoch, three_in_relay
from .conftest import PRESENCE_TTL

pytestmark = pytest.mark.faults

KILL_TO_MEDIA = PRESENCE_TTL + 5  # the node is declared lost within the TTL; then a new relay and one offer each


async def test_relay_node_killed_its_participant_resumes_and_media_returns(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards the relay's failover: when the node running it dies, its participant resumes its seat on
    another node, the room starts a relay on a node with a participant present (a new ``relay_epoch``,
    announced to everyone), everyone connects to it, and media among all three flows again within the
    presence TTL plus 5 s of the kill. Nobody leaves."""
    call = await three_in_relay(http, cluster, relay_on="c")
    victim = call.on("c")
    try:
        killed = await cluster.kill("c")
        resumed = await victim.event("joined", after=killed, within=10, where=lambda m: m["resumed"])
        assert resumed.data["self"]["id"] == victim.id and cluster.name_of(victim.url) != "c"
        recovery("kill to resumed on another node", resumed.at - killed)

        epochs = {await new_relay_epoch(peer, call.epoch, killed) for peer in call.others(victim)}
        epochs.add(await new_relay_epoch(victim, call.epoch, killed, told_by=("mode", "joined")))
        assert len(epochs) == 1, f"one new relay, told the same to everyone: {epochs}"

        took = await every_pair_decodes(call.peers, since=killed, within=KILL_TO_MEDIA + 10, after_epoch=call.epoch)
        recovery("kill to media among all three", took)
        assert took < KILL_TO_MEDIA, f"media back {took:.1f} s after the kill"
        for peer in call.others(victim):
            assert not peer.seen("participant-left", after=killed), f"{peer.name} saw someone leave"
        assert_no_failed_resume(*call.peers)
    finally:
        await call.close()


async def test_relay_node_killed_its_participant_gone_the_others_carry_on(
        cluster: Cluster, http: aiohttp.ClientSession, recovery: Callable[[str, float], None]) -> None:
    """Guards what the two others see when the relay's node dies and its participant never comes back:
    ``participant-reconnecting`` once the node is declared lost, then ``participant-left`` (``node-lost``)
    after another presence TTL; meanwhile a new relay (a new epoch, ``mode`` to both), through which media
    between the two flows again within the presence TTL plus 5 s of the kill, and still once the seat is
    gone."""
    call = await three_in_relay(http, cluster, relay_on="a")
    victim = call.li
    remaining = [call.wang, call.patient]
    try:
        victim.stay_away()
        killed = await cluster.kill("a")
        for peer in remaining:
            reconnecting = await peer.event("participant-reconnecting", after=killed, within=PRESENCE_TTL * 2,
                                            where=lambda m: m["participant_id"] == victim.id)
            left = await peer.event("participant-left", after=reconnecting.at, within=PRESENCE_TTL * 2 + 2,
                                    where=lambda m: m["participant_id"] == victim.id)
            assert left.data["reason"] == "node-lost", left.data
            first = peer.seen("participant-left", after=killed, where=lambda m: m["participant_id"] == victim.id)[0]
            assert first is left, "reconnecting first, then left"
            recovery(f"kill to participant-reconnecting ({peer.name})", reconnecting.at - killed)
            recovery(f"kill to participant-left ({peer.name})", left.at - killed)
            assert reconnecting.at - killed < PRESENCE_TTL + 0.5, "declared lost within the presence TTL"
            held = left.at - reconnecting.at
            assert PRESENCE_TTL / 2 < held < PRESENCE_TTL + 1.5, f"seat held {held:.1f} s, not one presence TTL"
        epochs = {await new_relay_epoch(peer, call.epoch, killed) for peer in remaining}
        assert len(epochs) == 1, epochs

        took = await every_pair_decodes(remaining, since=killed, within=KILL_TO_MEDIA + 10, after_epoch=call.epoch)
        recovery("kill to media between the two left", took)
        assert took < KILL_TO_MEDIA, f"media back {took:.1f} s after the kill"
        gone = max(peer.seen("participant-left")[-1].at for peer in remaining)
        await every_pair_decodes(remaining, since=gone, within=5, after_epoch=call.epoch)
        assert_no_failed_resume(*remaining)
    finally:
        await call.close()
