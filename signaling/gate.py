"""What signaling asks of the server, declared here so that signaling imports nothing from it: whether a room
token is genuine, and whether whoever it names may still be let in. The app factory fills it in."""

from __future__ import annotations

from typing import Protocol

from .grants import Granted, RoomClaims


class Gate(Protocol):
    def verify(self, token: str) -> RoomClaims:
        """The claims of a room token this deployment issued; raises ``InvalidToken`` otherwise."""
        ...

    async def check(self, identity: str, invitation: int | None, generation: int | None = None) -> Granted | None:
        """Raises one of ``errors.BARRED``, which closes the socket, while ``identity`` may not be in the room;
        asked when they join and again when a host admits them, since a room token outlives the invitation,
        consent, participation or session it was issued under. ``generation`` is the token's (a clinician's
        session generation when it was issued), None when a host admits them (the room keeps no token).
        Returns what they may do in the room now, which a token issued before a change to their account does
        not know, with the account's revision of it; None: what their token says."""
        ...

    async def shows_history(self, identity: str) -> bool:
        """Whether ``identity`` may be shown the chat said before they came into the room; asked when they join
        and when they resume (the answer may have changed since)."""
        ...
