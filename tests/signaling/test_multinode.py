"""Two real server processes and a real redis-server: one room served by both nodes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import aiohttp
import pytest

from server.devprocs import RedisServer, TelemedNode

from ..support.nodes import PRESENCE_TTL, connect_at, enter
from ..support.signaling_client import expect

pytestmark = pytest.mark.alone  # node processes timed against their presence TTL


async def test_participants_on_different_nodes_meet_negotiate_and_chat_in_order(
        nodes: tuple[TelemedNode, TelemedNode], http: aiohttp.ClientSession) -> None:
    """Two clinicians on two nodes meet: offer and answer cross between the nodes, thirty ICE candidates arrive in
    the order sent, and chat sent from both at once shows in the same order on both nodes."""
    a, b = nodes
    li, li_joined = await enter(http, a, "dr.li")
    wang, wang_joined = await enter(http, b, "dr.wang")
    assert [p["id"] for p in wang_joined["participants"]] == [li_joined["self"]["id"]]
    assert (await expect(li, "participant-joined"))["participant"]["id"] == wang_joined["self"]["id"]

    li_id, wang_id = li_joined["self"]["id"], wang_joined["self"]["id"]
    await wang.send_json({"type": "offer", "to": li_id, "sdp": "v=0 from node b"})
    assert (await expect(li, "offer"))["sdp"] == "v=0 from node b"
    await li.send_json({"type": "answer", "to": wang_id, "sdp": "v=0 from node a"})
    assert (await expect(wang, "answer"))["sdp"] == "v=0 from node a"
    for n in range(30):
        await li.send_json({"type": "candidate", "to": wang_id,
                            "candidate": {"candidate": f"candidate:{n} 1 udp 1 127.0.0.1 {5000 + n} typ host"}})
    got = [(await expect(wang, "candidate"))["candidate"]["candidate"] for _ in range(30)]
    assert got == [f"candidate:{n} 1 udp 1 127.0.0.1 {5000 + n} typ host" for n in range(30)], "in order"

    for n in range(5):
        await li.send_json({"type": "chat", "text": f"a{n}"})
        await wang.send_json({"type": "chat", "text": f"b{n}"})
    on_a = [(m["id"], m["text"]) for m in [await expect(li, "chat") for _ in range(10)]]
    on_b = [(m["id"], m["text"]) for m in [await expect(wang, "chat") for _ in range(10)]]
    assert on_a == on_b, "both nodes show the chat in the same order"
    await li.close()
    await wang.close()


async def doctor_on_a_specialist_on_b(http: aiohttp.ClientSession, a: TelemedNode,
                                      b: TelemedNode):  # type: ignore[no-untyped-def]
    """dr.li in the room through node a, dr.wang through node b, and dr.li told of dr.wang."""
    li, _ = await enter(http, a, "dr.li")
    wang, wang_joined = await enter(http, b, "dr.wang")
    await expect(li, "participant-joined")
    return li, wang, wang_joined


async def test_a_participant_dropped_on_one_node_resumes_on_the_other(
        nodes: tuple[TelemedNode, TelemedNode], http: aiohttp.ClientSession) -> None:
    """A participant dropped on node b resumes through node a with their secret: the same seat, and the other side
    sees them reconnecting, then resumed."""
    a, b = nodes
    li, wang, wang_joined = await doctor_on_a_specialist_on_b(http, a, b)
    await wang.close(code=4000)
    assert (await expect(li, "participant-reconnecting"))["participant_id"] == wang_joined["self"]["id"]

    # The load balancer sends the reconnecting browser to the other node.
    again = await connect_at(http, a, "dr.wang", resume=wang_joined["resume"])
    resumed = await expect(again, "joined")
    assert resumed["resumed"] is True and resumed["self"]["id"] == wang_joined["self"]["id"]
    assert (await expect(li, "participant-resumed"))["participant_id"] == wang_joined["self"]["id"]
    await li.close()
    await again.close()


async def test_a_killed_node_s_participants_are_reconnecting_within_the_ttl_then_leave(
        nodes: tuple[TelemedNode, TelemedNode], http: aiohttp.ClientSession) -> None:
    """A node killed outright cannot say its sockets died: the others declare it lost within
    TELEMED_PRESENCE_TTL, show its participants as reconnecting at once, and let them go (`node-lost`) when
    they have not resumed elsewhere within another TTL."""
    a, b = nodes
    li, wang, wang_joined = await doctor_on_a_specialist_on_b(http, a, b)
    killed = time.monotonic()
    b.stop(signal.SIGKILL)
    reconnecting = await expect(li, "participant-reconnecting", within=PRESENCE_TTL * 4)
    noticed = time.monotonic() - killed
    assert reconnecting["participant_id"] == wang_joined["self"]["id"]
    assert noticed < PRESENCE_TTL, f"declared lost after {noticed:.1f} s"
    left = await expect(li, "participant-left", within=PRESENCE_TTL * 4)
    took = time.monotonic() - killed
    assert left == {"type": "participant-left", "participant_id": wang_joined["self"]["id"], "reason": "node-lost"}
    assert PRESENCE_TTL * 0.9 < took - noticed < PRESENCE_TTL * 2, f"left {took - noticed:.1f} s after"
    await li.send_json({"type": "ping", "id": 1})
    assert (await expect(li, "pong"))["id"] == 1, "node a and its room carry on"
    await li.close()
    await wang.close()


async def test_a_node_restarted_at_once_under_its_name_has_its_old_participants_declared_lost(
        tmp_path: Path, redis_server: RedisServer, http: aiohttp.ClientSession) -> None:
    """systemd restarts a crashed node at once under the same TELEMED_NODE_ID: the new run says the old one
    is gone, so its participants are reconnecting at once (not after a TTL), and gone a TTL later."""
    env = {"TELEMED_REDIS_URL": redis_server.url, "TELEMED_PRESENCE_TTL": "6", "TELEMED_RECONNECT_GRACE": "30"}
    data = tmp_path / "var"
    with TelemedNode(data, {**env, "TELEMED_NODE_ID": "node-a"}) as a:
        b = TelemedNode(data, {**env, "TELEMED_NODE_ID": "node-b"}).start()
        try:
            li, wang, wang_joined = await doctor_on_a_specialist_on_b(http, a, b)
            b.stop(signal.SIGKILL)
            b.start()
            restarted = time.monotonic()
            reconnecting = await expect(li, "participant-reconnecting", within=10)
            assert reconnecting["participant_id"] == wang_joined["self"]["id"]
            assert time.monotonic() - restarted < 6 / 4, "the old run is lost as soon as the new one starts"
            left = await expect(li, "participant-left", within=10)
            assert left["reason"] == "node-lost"
            await li.close()
            await wang.close()
        finally:
            b.stop()
