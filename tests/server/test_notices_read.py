"""Marking notifications read, as a service: the caller's own unread ones, and nobody else's."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from server import notices
from server.appkeys import DATABASE
from server.models import Notification, User
from server.notices import Notice
from server.permissions import Principal


async def test_marking_read_touches_only_the_callers_unread_notifications(client: TestClient) -> None:
    """Marking read marks the caller's own two unread notifications and leaves another user's unread; a second call
    finds nothing left to mark."""
    database = client.app[DATABASE]
    async with database.session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        li, wang = users["dr.li"], users["dr.wang"]
        assert li.id is not None and wang.id is not None
        notice = Notice.referral_state(7, "accepted")
        session.add_all([notice.to(li.id), notice.to(li.id), notice.to(wang.id)])
        await session.commit()
    who = Principal(li.id, li.role, li.hospital_id)
    async with database.session() as session:
        assert await notices.mark_read(session, who) == 2
    async with database.session() as session:
        assert await notices.mark_read(session, who) == 0, "already read"
        unread = (await session.exec(select(Notification.user_id).where(col(Notification.read_at).is_(None)))).all()
    assert unread == [wang.id]
