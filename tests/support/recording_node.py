"""Two clinicians recording a call on one real node, through its own API and signaling: what the tests of a
node killed mid-recording start from."""

from __future__ import annotations

import asyncio

import aiohttp

from .room_peer import RoomPeer
from .signaling_client import bearer, connect, expect, signaling_path


async def enter(http: aiohttp.ClientSession, base: str, username: str) -> RoomPeer:
    """``username`` in consultation 1's room on ``base``'s node."""
    headers = await bearer(http, base, username)
    token = (await (await http.post(f"{base}/api/consultations/1/room-token", headers=headers)).json())["token"]
    ws = await connect(http, token, url=f"{base}{signaling_path()}")
    return RoomPeer(ws, await expect(ws, "joined"))


async def recording_on(http: aiohttp.ClientSession, base: str) -> tuple[RoomPeer, RoomPeer]:
    """dr.li and dr.wang on ``base``'s node, recorded there (with the patient's consent given through dr.li),
    media flowing into the recording. The caller closes both."""
    verbal = await http.post(f"{base}/api/consultations/1/consents", json={"purpose": "recording"},
                             headers=await bearer(http, base, "dr.li"))
    assert verbal.status == 201, await verbal.text()
    li, wang = await enter(http, base, "dr.li"), await enter(http, base, "dr.wang")
    try:
        for username in ("dr.li", "dr.wang"):
            await http.post(f"{base}/api/consultations/1/recording-consent", json={"given": True},
                            headers=await bearer(http, base, username))
        for _ in range(2):
            await li.next("consent")
        await li.send({"type": "recording", "on": True})
        mode = await li.next("mode")
        await asyncio.gather(li.join_relay(mode["relay_slots"]), wang.join_relay(mode["relay_slots"]))
        assert (await li.next("recording"))["on"]
        await wang.media.wait_for_slot(li.id)  # type: ignore[union-attr]
    except BaseException:
        await li.close()
        await wang.close()
        raise
    return li, wang
