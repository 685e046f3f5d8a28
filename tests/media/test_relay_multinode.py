"""The relay with participants on two server processes joined by a real Redis: offers, answers, ICE
candidates and layouts cross the bus to and from the one node running the room's relay."""

from __future__ import annotations

import asyncio

import aiohttp

from server.devprocs import TelemedNode

from ..support.nodes import enter, ws_url
from ..support.room_peer import RoomPeer
from ..support.signaling_client import connect, expect
from ..support.visits import patient_room_token


async def _patient_through(http: aiohttp.ClientSession, node: TelemedNode, host_node: TelemedNode,
                           host: RoomPeer) -> RoomPeer:
    """A patient invited on ``host_node`` who opens the link on ``node`` and is admitted by ``host``."""
    token = await patient_room_token(http, host_node.url, room_base=node.url)
    ws = await connect(http, token, url=ws_url(node))
    lobby = await expect(ws, "lobby")
    await host.send({"type": "admit", "participant_id": lobby["self"]["id"]})
    return RoomPeer(ws, await expect(ws, "joined"))


async def test_relay_serves_participants_on_both_nodes(nodes: tuple[TelemedNode, TelemedNode],
                                                      http: aiohttp.ClientSession) -> None:
    """With participants on two nodes (the patient invited on one and admitted from the other), the third seat
    switches the room to the relay and everyone receives everyone through it; when the specialist leaves, the others'
    layouts drop them and the patient still receives the doctor."""
    a, b = nodes
    li = RoomPeer(*await enter(http, a, "dr.li"))
    wang = RoomPeer(*await enter(http, b, "dr.wang"))
    patient = await _patient_through(http, b, a, li)
    peers = (li, wang, patient)
    try:
        assert patient.joined["mode"] == "relay"
        for peer in (li, wang):
            assert (await peer.next("mode"))["mode"] == "relay"
        await asyncio.gather(*(peer.join_relay(patient.joined["relay_slots"]) for peer in peers))
        for peer in peers:
            for other in peers:
                if other is not peer:
                    seen = await peer.sees(other, 15)
                    assert None not in seen, (peer.id, other.id, seen)

        # The specialist on node b leaves: both remaining participants' slots drop them, media goes on.
        await wang.close()
        for peer in (li, patient):
            assert peer.media is not None
            await asyncio.wait_for(_until_gone(peer, wang.id), 10)
        assert None not in await patient.sees(li, 15)
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)


async def _until_gone(peer: RoomPeer, participant_id: str) -> None:
    assert peer.media is not None
    while participant_id in peer.media.layout.values():
        peer.media.layout_changed.clear()
        await peer.media.layout_changed.wait()
