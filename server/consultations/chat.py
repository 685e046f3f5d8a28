"""The consultation's chat kept in the database: written once by the sender's node, read by participants."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.effects import StoreChat
from signaling.grants import consultation_of_room
from signaling.hub import ChatStore

from ..db import Database
from ..models import ChatLine
from ..outputs import Instant, Out
from ..permissions import Principal, can_view_consultation
from .service import visible


class ChatLineShown(Out):
    """A line as participants saw it: who sent it (``participant_id`` in the room; ``user_id`` null for a
    guest), and when by the sender's clock."""

    participant_id: str
    user_id: int | None
    name: str
    text: str
    sent_at: Instant


class Chat(Out):
    """The consultation's chat, in the order participants saw it; none of it, and ``records_withheld``, for a
    reader on another hospital than the patient's while the patient has not consented to sharing their
    records (what was said is about the patient, and names them)."""

    chat: list[ChatLineShown]
    records_withheld: bool = False


def shown(lines: list[ChatLine]) -> Chat:
    return Chat(chat=[ChatLineShown(participant_id=line.participant_id, user_id=line.user_id, name=line.name,
                                    text=line.text, sent_at=line.sent_at) for line in lines])


async def read(session: AsyncSession, who: Principal, consultation_id: int) -> Chat:
    """The chat, for those who may see the consultation's record, as they may see it."""
    view = await visible(session, who, consultation_id, can_view_consultation)
    if view.withheld:
        return Chat(chat=[], records_withheld=True)
    return shown(await chat_lines(session, consultation_id))


def chat_store(database: Database) -> ChatStore:
    """The hub's callback that keeps a chat line with its consultation."""

    async def store(room_id: str, line: StoreChat) -> None:
        async with database.session() as session:
            session.add(ChatLine(
                consultation_id=consultation_of_room(room_id), session=line.session, seq=line.seq,
                participant_id=line.participant.id, user_id=line.participant.user_id, name=line.participant.name,
                text=line.text, sent_at=datetime.fromtimestamp(line.at_time, UTC),
            ))
            try:
                await session.commit()
            except sa.exc.IntegrityError:
                await session.rollback()  # already kept: a second write of the same line changes nothing

    return store


async def chat_lines(session: AsyncSession, consultation_id: int) -> list[ChatLine]:
    """Every line, in the order participants saw them: sessions by when they began, lines by log position.

    (Not by sent_at alone: that is the sender node's clock, and nodes' clocks differ a little.)
    """
    lines = (await session.exec(select(ChatLine).where(ChatLine.consultation_id == consultation_id))).all()
    began: dict[str, datetime] = {}
    for line in lines:
        began[line.session] = min(began.get(line.session, line.sent_at), line.sent_at)
    return sorted(lines, key=lambda line: (began[line.session], line.session, line.seq))
