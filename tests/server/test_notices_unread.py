"""The unread count, marking some or all read, and following one: always the caller's own notifications."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server import notices
from server.appkeys import DATABASE
from server.errors import NotFound
from server.models import User
from server.notices import MarkRead, Notice
from server.permissions import Principal

from ..conftest import login


async def _seed(client: TestClient) -> tuple[Principal, Principal, list[int], int]:
    """Three notifications for dr.li, one for dr.wang."""
    async with client.app[DATABASE].session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        li, wang = users["dr.li"], users["dr.wang"]
        assert li.id is not None and wang.id is not None
        rows = [Notice.referral_state(n, "accepted").to(li.id) for n in (7, 8, 9)]
        theirs = Notice.referral_state(7, "accepted").to(wang.id)
        session.add_all([*rows, theirs])
        await session.commit()
        ids = [row.id for row in rows]
        assert None not in ids and theirs.id is not None
    return (Principal(li.id, li.role, li.hospital_id), Principal(wang.id, wang.role, wang.hospital_id),
            [i for i in ids if i is not None], theirs.id)


async def test_following_one_marks_it_read_and_the_count_drops(client: TestClient) -> None:
    """Following a notification leads to its link and marks it read, so the unread count drops by one; following it
    again still leads there; another user's notification is not found for the caller and stays unread for its owner."""
    li, wang, ids, theirs = await _seed(client)
    async with client.app[DATABASE].session() as session:
        assert await notices.unread_count(session, li) == 3
        assert await notices.follow(session, li, ids[0]) == "/referrals/7"
        assert await notices.unread_count(session, li) == 2
        assert await notices.follow(session, li, ids[0]) == "/referrals/7", "following it again still leads there"
        with pytest.raises(NotFound):
            await notices.follow(session, li, theirs)
        assert await notices.unread_count(session, wang) == 1, "another's stays unread"


async def test_marking_some_read_touches_only_the_callers(client: TestClient) -> None:
    """Marking chosen ids read marks only the caller's own among them (another user's stays unread); marking all then
    marks the caller's remaining two, leaving none unread."""
    li, wang, ids, theirs = await _seed(client)
    async with client.app[DATABASE].session() as session:
        assert await notices.mark_read(session, li, MarkRead(ids=[ids[1], theirs])) == 1
        assert await notices.unread_count(session, li) == 2 and await notices.unread_count(session, wang) == 1
        assert await notices.mark_read(session, li) == 2
        assert await notices.unread_count(session, li) == 0


async def test_the_api_counts_and_marks(client: TestClient) -> None:
    """Over the API: the list gives the caller's three notifications and the unread count; marking ids read marks only
    the caller's (1 of the 2 sent), an id that is not a number is a 422 naming ids.0, and marking with no body marks the
    rest, leaving the count at 0."""
    _, _, ids, theirs = await _seed(client)
    headers = await login(client, "dr.li")
    listed = await (await client.get("/api/notifications", headers=headers)).json()
    assert listed["unread"] == 3 and len(listed["notifications"]) == 3
    some = await client.post("/api/notifications/read", json={"ids": [ids[0], theirs]}, headers=headers)
    assert (await some.json()) == {"read": 1}
    bad = await client.post("/api/notifications/read", json={"ids": ["x"]}, headers=headers)
    assert bad.status == 422 and "ids.0" in (await bad.json())["error"]["fields"]
    rest = await client.post("/api/notifications/read", headers=headers)
    assert (await rest.json()) == {"read": 2}
    assert (await (await client.get("/api/notifications", headers=headers)).json())["unread"] == 0
