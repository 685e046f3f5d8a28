"""How the server's domain tells a consultation's room what happened (a consent given or withdrawn, an
invitation revoked, an account's session ended or what it may do changed), without knowing how rooms are run:
the app factory fills it with the signaling hub, the console with the rooms' Redis logs (``console_rooms``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal, Protocol

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.events import Expelling, Regranting, RoomEvent
from signaling.grants import Granted

from ..models import Consultation, ConsultationParticipant, utcnow

# Why the server sends a clinician out of their rooms: taken off the consultation or disabled, or their session
# ended (their password reset): the reasons of ``Expelling`` that are about a clinician's account.
SentOut = Literal["not-a-participant", "session-ended"]
ROOM_REACH = timedelta(days=1)  # a room opens and closes well within this of its consultation's planned start


class RoomNotifier(Protocol):
    async def tell(self, consultation_id: int, event: RoomEvent) -> None:
        """Append ``event`` to the consultation's room log before returning, so that what the caller does
        next (say, start a recording right after a consent's 201) comes after it in the room; if the log
        cannot be reached now, it is appended later, retried. Never raises."""
        ...


async def send_out(session: AsyncSession, rooms: RoomNotifier, user_id: int, reason: SentOut) -> None:
    """Send a clinician out of every consultation's room they may be in now."""
    await _tell_rooms_of(session, rooms, user_id, Expelling(identity=f"user:{user_id}", reason=reason))


async def regrant(session: AsyncSession, rooms: RoomNotifier, user_id: int, granted: Granted) -> None:
    """Tell every consultation's room a clinician may be in now what they may do there from now on."""
    await _tell_rooms_of(session, rooms, user_id, Regranting(identity=f"user:{user_id}", grants=granted.grants,
                                                            revision=granted.revision))


async def _tell_rooms_of(session: AsyncSession, rooms: RoomNotifier, user_id: int, event: RoomEvent) -> None:
    """The rooms a clinician may be in now: of the consultations they take part in planned to start within
    ``ROOM_REACH`` of now, whatever their state (a call goes on after its report completes the consultation)."""
    now = utcnow()
    consultations = (await session.exec(
        select(ConsultationParticipant.consultation_id)
        .join(Consultation, col(Consultation.id) == col(ConsultationParticipant.consultation_id))
        .where(ConsultationParticipant.user_id == user_id,
               col(Consultation.planned_start).between(now - ROOM_REACH, now + ROOM_REACH))
        .order_by(col(ConsultationParticipant.consultation_id)))).all()
    await asyncio.gather(*(rooms.tell(consultation, event) for consultation in consultations))
