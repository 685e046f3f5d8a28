"""The arithmetic of a page and the LIKE pattern every search uses (server/paging.py)."""

from __future__ import annotations

import pytest

from server.paging import Page, like_pattern, offset, pages_for


@pytest.mark.parametrize(("page", "per_page", "total", "pages", "has_prev", "has_next"), [
    (1, 20, 0, 1, False, False),     # an empty search is page 1 of 1
    (1, 20, 20, 1, False, False),    # exactly one page
    (1, 20, 21, 2, False, True),     # one over spills onto a second page
    (2, 20, 21, 2, True, False),
    (2, 20, 60, 3, True, True),
    (5, 20, 41, 3, True, False),     # past the last: nothing follows it
    (1, 1, 3, 3, False, True),
])
def test_page_says_where_it_stands(page: int, per_page: int, total: int, pages: int, has_prev: bool,
                                   has_next: bool) -> None:
    """Guards the pager's links: no "Next" on the last page (or past it), no "Previous" on the first."""
    found = Page(items=[], page=page, per_page=per_page, total=total)
    assert (found.pages, found.has_prev, found.has_next) == (pages, has_prev, has_next)
    assert found.meta() == {"page": page, "pages": pages, "per_page": per_page, "total": total,
                            "has_next": has_next, "has_prev": has_prev}
    assert pages_for(total, per_page) == pages


@pytest.mark.parametrize(("page", "per_page", "skipped"), [(1, 20, 0), (2, 20, 20), (3, 25, 50), (0, 20, 0)])
def test_offset(page: int, per_page: int, skipped: int) -> None:
    """Guards which rows a page fetches: page 1 starts at the first row, and nothing before page 1 exists."""
    assert offset(page, per_page) == skipped


@pytest.mark.parametrize(("text", "pattern"), [
    ("wang", "%wang%"),
    ("50%", "%50\\%%"),             # a percent sign is a percent sign, not "anything"
    ("a_b", "%a\\_b%"),             # an underscore is not "any one character"
    ("c:\\x", "%c:\\\\x%"),         # the escape character itself is escaped first
    ("王%_\\", "%王\\%\\_\\\\%"),
    ("", "%%"),
])
def test_like_pattern_takes_wildcards_literally(text: str, pattern: str) -> None:
    """Guards every search box: what a user types is matched as typed, never as a wildcard."""
    assert like_pattern(text) == pattern


async def test_like_pattern_matches_literally_in_the_database() -> None:
    """Guards the pattern against the database's own reading of it: "5%" finds "5%" and not "50"."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.connect() as conn:
        await conn.execute(sa.text("create table t (v text)"))
        await conn.execute(sa.text("insert into t values ('5%'), ('50'), ('a_b'), ('axb'), ('c\\d')"))
        t = sa.table("t", sa.column("v"))

        async def found(text: str) -> list[str]:
            rows = await conn.execute(sa.select(t.c.v).where(t.c.v.ilike(like_pattern(text), escape="\\"))
                                      .order_by(t.c.v))
            return [r[0] for r in rows]

        assert await found("5%") == ["5%"]
        assert await found("a_b") == ["a_b"]
        assert await found("c\\") == ["c\\d"]
    await engine.dispose()
