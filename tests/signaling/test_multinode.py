"""Two real server processes and a real redis-server: one room served by both nodes."""

from __future__ import annotations

import signal
import time

import aiohttp

from server.devprocs import TelemedNode

from ..support.nodes import PRESENCE_TTL, connect_at, enter
from ..support.signaling_client import expect


async def test_participants_on_different_nodes_meet_negotiate_and_chat_in_order(
        nodes: tuple[TelemedNode, TelemedNode], http: aiohttp.ClientSession) -> None:
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


async def test_a_killed_node_s_participants_leave_everyone_s_view_within_the_ttl(
        nodes: tuple[TelemedNode, TelemedNode], http: aiohttp.ClientSession) -> None:
    a, b = nodes
    li, wang, wang_joined = await doctor_on_a_specialist_on_b(http, a, b)
    killed = time.monotonic()
    b.stop(signal.SIGKILL)
    left = await expect(li, "participant-left", within=PRESENCE_TTL * 4)
    took = time.monotonic() - killed
    assert left == {"type": "participant-left", "participant_id": wang_joined["self"]["id"], "reason": "node-lost"}
    # The presence key lasts the TTL; node a checks every TTL/3, so the view is right within about 1.4 TTL.
    assert took < PRESENCE_TTL * 2, f"took {took:.1f} s"
    await li.send_json({"type": "ping", "id": 1})
    assert (await expect(li, "pong"))["id"] == 1, "node a and its room carry on"
    await li.close()
    await wang.close()
