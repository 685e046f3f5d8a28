"""A patient's way in, as their browser takes it: invited by a clinician, consents by purpose, room token."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from .signaling_client import bearer


async def invite(session: ClientSession | TestClient, base: str = "", host: str = "dr.li",
                 consultation: int = 1) -> str:
    """The invitation link's token (the part after /visit/)."""
    response = await session.post(f"{base}/api/consultations/{consultation}/invitations", json={},
                                  headers=await bearer(session, base, host))
    assert response.status == 201, await response.text()
    return (await response.json())["url"].removeprefix("/visit/")


async def consent(session: ClientSession | TestClient, guest: str, purpose: str = "video", *, base: str = "",
                  given: bool = True) -> dict[str, Any]:
    response = await session.post(f"{base}/api/guest/consents", json={"guest": guest, "purpose": purpose,
                                                                        "given": given})
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def patient_room_token(session: ClientSession | TestClient, base: str = "", host: str = "dr.li", *,
                             guest: str | None = None, room_base: str | None = None) -> str:
    """Invited (unless ``guest`` is given), consented to the video visit, and a room token for it."""
    guest = guest or await invite(session, base, host)
    await consent(session, guest, base=base)
    response = await session.post(f"{room_base if room_base is not None else base}/api/guest/room-token",
                                  json={"guest": guest})
    assert response.status == 200, await response.text()
    return (await response.json())["token"]
