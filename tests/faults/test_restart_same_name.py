"""A node killed and started again at once under the same name, as a supervisor restarts a crashed
process: the new incarnation is not taken for the old one, whose participants are let go."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from ..support.cluster import Cluster
from ..support.relayed_call import assert_no_failed_resume, every_pair_decodes, three_in_relay
from ..support.resilient_peer import Clinician, ResilientPeer
from ..support.signaling_client import bearer
from ..support.visits import as_guest, consent, invite

pytestmark = pytest.mark.faults

# Longer than the others' TTL: a restart takes a few seconds on a loaded machine, and the test must tell a
# loss declared because the new run started from one declared because the old run's presence ran out.
PRESENCE_TTL = 12.0


async def test_a_node_restarted_under_its_name_lets_its_participant_go(
        start_cluster: Callable[..., Cluster], http: aiohttp.ClientSession,
        recovery: Callable[[str, float], None]) -> None:
    """Guards node incarnations: node b is SIGKILLed and started again at once as node-b. Its participant
    (dr.wang, who does not come back) is seen reconnecting within moments of the restart, not a TTL later,
    and gone (``node-lost``) within about two presence TTLs of the kill; then nothing waits on them: the
    recording their missing consent blocked starts, and a newcomer's ``joined`` lists only who is there.
    Media between the two others, through the relay on node c, goes on throughout."""
    cluster = start_cluster(presence_ttl=PRESENCE_TTL)
    base = cluster.url("a")
    guest = await invite(http, base)
    await consent(http, guest, base=base)
    answer = await http.post(f"{base}/api/consultations/1/recording-consent", json={"given": True},
                             headers=await bearer(http, base, "dr.li"))
    assert answer.status == 201, await answer.text()
    answer = await http.post(f"{base}/api/guest/recording-consent", json=as_guest(guest, given=True))
    assert answer.status == 201, await answer.text()
    call = await three_in_relay(http, cluster, relay_on="c", guest=guest)
    li, wang, patient = call.peers
    newcomer: ResilientPeer | None = None
    try:
        asked = li.now()
        await li.send({"type": "recording", "on": True})
        refused = await li.event("error", after=asked)
        assert refused.data["code"] == "consent-missing", refused.data

        wang.stay_away()
        killed = await cluster.kill("b")
        restarted = await cluster.start_again("b")
        recovery("kill to node serving again", restarted - killed)
        for peer in (li, patient):
            reconnecting = await peer.event("participant-reconnecting", after=killed, within=PRESENCE_TTL * 2,
                                            where=lambda m: m["participant_id"] == wang.id)
            left = await peer.event("participant-left", after=killed, within=PRESENCE_TTL * 3,
                                    where=lambda m: m["participant_id"] == wang.id)
            assert left.at >= reconnecting.at and left.data["reason"] == "node-lost", left.data
            # The new run announces itself before it listens, so this may come before start_again returns.
            recovery(f"restart to participant-reconnecting ({peer.name})", reconnecting.at - restarted)
            recovery(f"kill to participant-reconnecting ({peer.name})", reconnecting.at - killed)
            recovery(f"kill to participant-left ({peer.name})", left.at - killed)
            assert reconnecting.at - restarted < PRESENCE_TTL / 8 + 0.5, \
                f"reconnecting {reconnecting.at - restarted:.1f} s after the restart: not given up at once"
            # The old run's presence key lasts 3/4 of the TTL (PROTOCOL.md): lost before it could run out, the
            # old run was given up because the new one started. (A restart slower than that proves nothing.)
            assert restarted - killed < PRESENCE_TTL * 0.6, f"the restart took {restarted - killed:.1f} s"
            assert reconnecting.at - killed < PRESENCE_TTL * 0.75, "given up by the new run, not by the key's expiry"
            assert left.at - killed < PRESENCE_TTL * 2 + 1, f"gone {left.at - killed:.1f} s after the kill"
        gone = li.seen("participant-left")[-1].at
        gap = max(li.longest_gap(patient, killed, gone), patient.longest_gap(li, killed, gone))
        recovery("longest media gap between the two others", gap)
        assert gap < 1.0, f"media between the others stopped for {gap:.1f} s"

        asked = li.now()
        await li.send({"type": "recording", "on": True})
        for peer in (li, patient):
            state = await peer.event("recording", after=asked, where=lambda m: m["on"])
            assert state.data["by"] == li.id
        await li.send({"type": "recording", "on": False})
        await li.event("recording", after=asked, where=lambda m: not m["on"])

        newcomer = ResilientPeer(http, cluster.urls, Clinician("dr.wang"))
        joined = await newcomer.enter(cluster.url("b"))
        assert joined["type"] == "joined" and not joined["resumed"], joined
        assert joined["self"]["id"] != wang.id
        assert sorted(p["id"] for p in joined["participants"]) == sorted([li.id, patient.id]), joined["participants"]
        await every_pair_decodes((li, patient, newcomer), since=newcomer.now(), within=15)
        assert_no_failed_resume(li, patient)
    finally:
        await call.close()
        if newcomer is not None:
            await newcomer.close()
