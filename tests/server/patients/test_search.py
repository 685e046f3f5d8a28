"""Finding a hospital's patients: by a part of the name in any case (a % or _ in it taken literally), a page
at a time, only ever the caller's own hospital's."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.db import Database
from server.demo import seed_demo
from server.models import Patient, User
from server.patients import records
from server.patients.inputs import PatientSearch
from server.permissions import Principal

from .test_records import key_of, principal


async def _add(client: TestClient, hospital_id: int, names: list[str]) -> None:
    async with client.app[DATABASE].session() as session:
        session.add_all([Patient(hospital_id=hospital_id, name=name) for name in names])
        await session.commit()


@pytest.mark.parametrize(("name", "expected"), [
    ("zhang", ["张伟 Zhang Wei", "张三 Zhang San"]),
    ("张", ["张伟 Zhang Wei", "张三 Zhang San"]),
    ("100%", ["100% sure"]),
    ("_", ["snake_case"]),
    ("nobody", []),
])
async def test_by_a_part_of_the_name(client: TestClient, name: str, expected: list[str]) -> None:
    """Each row: a name search matches any part of the name in any case, Chinese too, takes % and _ literally, finds
    only the caller's own hospital's patients, and counts as many as it lists."""
    who = await principal(client.app[DATABASE], "dr.li")
    await _add(client, who.hospital_id, ["张三 Zhang San", "100% sure", "snake_case", "1000 sure"])
    await _add(client, 3, ["张四 Zhang Si"])  # Baihe's: never shown to Qingshan
    async with client.app[DATABASE].session() as session:
        found = await records.look_up(session, who, key_of(client), PatientSearch(name=name))
    assert sorted(p.name for p in found.items) == sorted(expected) and found.total == len(expected)


async def test_a_page_at_a_time(client: TestClient) -> None:
    """Forty-six patients come 20 to a page over three pages, then an empty fourth; each page gives the same total
    and page count, and together they list every patient once, in name order."""
    who = await principal(client.app[DATABASE], "dr.li")
    await _add(client, who.hospital_id, [f"Patient {n:02d}" for n in range(45)])
    pages = []
    async with client.app[DATABASE].session() as session:
        for page in (1, 2, 3, 4):
            pages.append(await records.look_up(session, who, key_of(client), PatientSearch(page=page)))
    assert [len(p.items) for p in pages] == [20, 20, 6, 0]
    assert {p.total for p in pages} == {46} and pages[0].pages == 3
    names = [patient.name for p in pages for patient in p.items]
    assert len(set(names)) == 46 and names == sorted(names)


async def test_the_name_search_means_the_same_on_both_databases(database_url: str) -> None:
    """ILIKE with an escape character: PostgreSQL and SQLite must agree on case, % and _."""
    database = Database(database_url)
    try:
        await database.upgrade()
        await seed_demo(database)
        async with database.session() as session:
            li = (await session.exec(select(User).where(User.username == "dr.li"))).one()
            assert li.id is not None
            session.add_all([Patient(hospital_id=li.hospital_id, name=n) for n in ("100% sure", "1000 sure", "A_B")])
            await session.commit()
        who = Principal(li.id, li.role, li.hospital_id)
        found = {}
        async with database.session() as session:
            for name in ("ZHANG", "100%", "_"):
                page = await records.look_up(session, who, b"k" * 32, PatientSearch(name=name))
                found[name] = sorted(p.name for p in page.items)
        assert found == {"ZHANG": ["张伟 Zhang Wei"], "100%": ["100% sure"], "_": ["A_B"]}
    finally:
        await database.close()
