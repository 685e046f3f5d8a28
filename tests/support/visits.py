"""A patient's way in, as their browser takes it: invited by a clinician, confirms who they are, consents by
purpose, room token."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from .signaling_client import bearer

DEMO_PATIENT = "张伟 Zhang Wei"  # server/demo.py's patient, registered with no national ID: the name decides
# The proof each invited link's identity check answered. Sent in the body, since a ClientSession keeps no
# cookie from 127.0.0.1 (a TestClient's jar would; a browser does).
_PROOFS: dict[str, str] = {}


async def confirm(session: ClientSession | TestClient, guest: str, *, base: str = "", name: str = DEMO_PATIENT,
                  last4: str = "") -> str:
    """The identity check passed for this link: its proof, remembered for ``as_guest``."""
    response = await session.post(f"{base}/api/guest/identity", json={"guest": guest, "name": name,
                                                                       "id_last4": last4})
    assert response.status == 200, await response.text()
    _PROOFS[guest] = (await response.json())["identity"]
    return _PROOFS[guest]


def as_guest(guest: str, **fields: Any) -> dict[str, Any]:
    """A guest request's body: the link, the proof its identity check answered (if any), and ``fields``."""
    return {"guest": guest, **({"identity": _PROOFS[guest]} if guest in _PROOFS else {}), **fields}


async def invite(session: ClientSession | TestClient, base: str = "", host: str = "dr.li",
                 consultation: int = 1, *, confirmed: bool = True) -> str:
    """The invitation link's token (the part after /visit/), its identity check passed unless not
    ``confirmed`` (the demo patient's name)."""
    response = await session.post(f"{base}/api/consultations/{consultation}/invitations", json={},
                                  headers=await bearer(session, base, host))
    assert response.status == 201, await response.text()
    guest = (await response.json())["url"].removeprefix("/visit/")
    if confirmed:
        await confirm(session, guest, base=base)
    return guest


async def consent(session: ClientSession | TestClient, guest: str, purpose: str = "video", *, base: str = "",
                  given: bool = True) -> dict[str, Any]:
    response = await session.post(f"{base}/api/guest/consents", json=as_guest(guest, purpose=purpose, given=given))
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def patient_room_token(session: ClientSession | TestClient, base: str = "", host: str = "dr.li", *,
                             guest: str | None = None, room_base: str | None = None) -> str:
    """Invited (unless ``guest`` is given), consented to the video visit, and a room token for it."""
    guest = guest or await invite(session, base, host)
    await consent(session, guest, base=base)
    response = await session.post(f"{room_base if room_base is not None else base}/api/guest/room-token",
                                  json=as_guest(guest))
    assert response.status == 200, await response.text()
    return (await response.json())["token"]
