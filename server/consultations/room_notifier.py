"""How the server's domain tells a consultation's room what happened (a consent given or withdrawn, an
invitation revoked), without knowing how rooms are run: the app factory fills it with the signaling hub."""

from __future__ import annotations

from typing import Protocol

from signaling.events import RoomEvent


class RoomNotifier(Protocol):
    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        """Append ``event`` to the consultation's room log before returning, so that what the caller does
        next (say, start a recording right after a consent's 201) comes after it in the room; if the log
        cannot be reached now, it is appended later, retried. Never raises."""
        ...
