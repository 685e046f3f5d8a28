"""Chat while the database (PostgreSQL, through a proxy that can refuse) is down: a line that cannot be
stored is refused, never delivered, so the stored chat is exactly what was delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from server.db import Database
from server.devprocs import TelemedNode

from ..support.resilient_peer import Clinician, ResilientPeer
from ..support.signaling_client import bearer
from ..support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

REFUSED_WITHIN = 8.0  # the refusal may wait for the write's own timeout (5 s in signaling/hub.py)


async def delivered(sender: ResilientPeer, reader: ResilientPeer, text: str, within: float = 5) -> bool:
    """Send ``text``: True once both have it, False if the sender is told ``chat-not-stored``."""
    since = sender.now()
    await sender.send({"type": "chat", "text": text})

    def outcome() -> bool | None:
        if sender.seen("error", after=since, where=lambda m: m["code"] == "chat-not-stored"):
            return False
        if all(peer.seen("chat", after=since, where=lambda m: m["text"] == text) for peer in (sender, reader)):
            return True
        return None

    await sender.until(lambda: outcome() is not None, within, f"{text!r} neither delivered nor refused")
    result = outcome()
    assert result is not None
    return result


async def test_a_chat_line_that_cannot_be_stored_is_refused_and_not_delivered(
        tmp_path: Path, postgres_url: str, http: aiohttp.ClientSession,
        recovery: Callable[[str, float], None]) -> None:
    """Guards "stored before delivered" through a database outage: while PostgreSQL refuses connections,
    a chat line is answered with ``error`` ``chat-not-stored`` and nobody gets it; once it accepts again,
    chat works; and ``GET /api/consultations/1/chat`` has exactly the lines delivered."""
    database = Database(postgres_url)
    await database.upgrade()
    await database.close()
    target = URL(postgres_url)
    assert target.host is not None and target.port is not None
    proxy = TcpProxy(target.host, target.port)
    await proxy.accept()
    through_proxy = str(target.with_host("127.0.0.1").with_port(proxy.port))
    node = TelemedNode(tmp_path / "var", {"TELEMED_DATABASE_URL": through_proxy}, log_file=tmp_path / "node.log")
    await asyncio.to_thread(node.start)  # in a thread: the proxy it reaches the database through runs on this loop
    li = ResilientPeer(http, [node.url], Clinician("dr.li"))
    wang = ResilientPeer(http, [node.url], Clinician("dr.wang"))
    try:
        await li.enter(node.url)
        await wang.enter(node.url)
        sent = ["before, from li", "before, from wang"]
        assert await delivered(li, wang, sent[0])
        assert await delivered(wang, li, sent[1])

        await proxy.refuse()
        refused_at = li.now()
        assert not await delivered(li, wang, "during the outage", within=REFUSED_WITHIN)
        recovery("chat-not-stored after the database went", li.now() - refused_at)
        await asyncio.sleep(1)
        for peer in (li, wang):
            assert not peer.seen("chat", where=lambda m: m["text"] == "during the outage"), peer.name

        await proxy.accept()
        accepted_at = li.now()
        for attempt in range(20):
            text = f"after, from li ({attempt})"
            if await delivered(li, wang, text, within=REFUSED_WITHIN):
                sent.append(text)
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("chat did not come back once the database accepted again")
        took = li.now() - accepted_at
        recovery("database back to a chat line stored and delivered", took)
        assert took < 5, f"chat worked again {took:.1f} s after the database came back"
        sent.append("after, from wang")
        assert await delivered(wang, li, sent[-1])

        stored = await (await http.get(f"{node.url}/api/consultations/1/chat",
                                       headers=await bearer(http, node.url, "dr.li"))).json()
        assert [line["text"] for line in stored["chat"]] == sent, stored
        seen = [e.data["text"] for e in li.seen("chat")]
        assert seen == sent, f"delivered {seen}, sent and stored {sent}"
    finally:
        await li.close()
        await wang.close()
        await asyncio.to_thread(node.stop)
        await proxy.close()
