"""A three-party consultation through the relay, spread over a cluster's nodes a, b and c: dr.li on a,
dr.wang on b, the patient on c. The relay runs where the join that made the room three was served, so the
order of joining puts it on the node a test chooses."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from aiohttp import ClientSession

from .cluster import Cluster
from .resilient_peer import Clinician, Patient, ResilientPeer
from .visits import consent, invite

HOME = {"dr.li": "a", "dr.wang": "b", "patient": "c"}


@dataclass
class RelayedCall:
    li: ResilientPeer
    wang: ResilientPeer
    patient: ResilientPeer
    guest: str  # the patient's invitation token
    relay_node: str  # the cluster's name for the node that runs the relay
    epoch: int

    @property
    def peers(self) -> tuple[ResilientPeer, ResilientPeer, ResilientPeer]:
        return self.li, self.wang, self.patient

    def on(self, node: str) -> ResilientPeer:
        """The participant whose home is ``node``."""
        return next(peer for peer in self.peers if HOME[peer.name] == node)

    def others(self, peer: ResilientPeer) -> list[ResilientPeer]:
        return [p for p in self.peers if p is not peer]

    async def close(self) -> None:
        await asyncio.gather(*(peer.close() for peer in self.peers), return_exceptions=True)


async def admit(host: ResilientPeer, patient: ResilientPeer, url: str) -> None:
    """The patient opens the link on ``url`` and waits in the lobby; ``host`` admits them."""
    since = patient.now()
    lobby = await patient.enter(url)
    assert lobby["type"] == "lobby", lobby
    await host.send({"type": "admit", "participant_id": lobby["self"]["id"]})
    try:
        await patient.event("joined", after=since)
    except AssertionError as error:
        raise AssertionError(f"{error}; the host {host.name} saw {host.recent(12)}") from None


async def three_in_relay(http: ClientSession, cluster: Cluster, relay_on: str = "c", *,
                         guest: str | None = None) -> RelayedCall:
    """Seat the three so the last join is on ``relay_on``; wait until each decodes the other two."""
    if guest is None:
        guest = await invite(http, cluster.url("a"))
        await consent(http, guest, base=cluster.url("a"))
    urls = cluster.urls
    li = ResilientPeer(http, urls, Clinician("dr.li"))
    wang = ResilientPeer(http, urls, Clinician("dr.wang"))
    patient = ResilientPeer(http, urls, Patient(guest))
    call = RelayedCall(li, wang, patient, guest, relay_on, 0)
    try:
        if relay_on == "c":
            await li.enter(cluster.url("a"))
            await wang.enter(cluster.url("b"))
            await admit(li, patient, cluster.url("c"))
        elif relay_on == "a":
            await wang.enter(cluster.url("b"))
            await admit(wang, patient, cluster.url("c"))
            await li.enter(cluster.url("a"))
        else:
            await li.enter(cluster.url("a"))
            await admit(li, patient, cluster.url("c"))
            await wang.enter(cluster.url("b"))
        third = call.on(relay_on)
        joined = third.seen("joined")[-1].data
        assert joined["mode"] == "relay", joined
        call.epoch = joined["relay_epoch"]
        await every_pair_decodes(call.peers, since=0, within=20)
    except BaseException:
        await call.close()
        raise
    return call


async def every_pair_decodes(peers: tuple[ResilientPeer, ...] | list[ResilientPeer], *, since: float,
                             within: float, after_epoch: int = 0) -> float:
    """Wait until every peer decodes every other's camera after ``since`` (through a relay newer than
    ``after_epoch``); the seconds from ``since`` to the last pair's media flowing."""
    took = await asyncio.gather(*(peer.media_flowing_from(other, since=since, within=within, after_epoch=after_epoch)
                                  for peer, other in itertools.permutations(peers, 2)))
    return max(took)


async def new_relay_epoch(peer: ResilientPeer, old_epoch: int, since: float, *,
                          told_by: tuple[str, ...] = ("mode",), within: float = 10) -> int:
    """The epoch of the relay that replaced ``old_epoch``'s, as ``peer`` is told it after ``since``: by
    ``mode``, or also by the ``joined`` of its resume when ``told_by`` says so."""
    event = await peer.event(told_by, after=since, within=within,
                             where=lambda m: m["mode"] == "relay" and m["relay_epoch"] != old_epoch)
    assert event.data["relay_epoch"] > old_epoch, event.data
    return event.data["relay_epoch"]


def assert_no_failed_resume(*peers: ResilientPeer) -> None:
    for peer in peers:
        failed = peer.seen("error", where=lambda m: m["code"] == "resume-failed")
        assert not failed, f"{peer.name} could not resume: {failed}"
