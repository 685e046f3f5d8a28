"""One page of a list that grows: its items, where it stands among the rest, and the LIKE pattern its
search uses. Pure: the services count and fetch, this only does the arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .outputs import Out

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a search (numbered from 1), and how many items the whole search found."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the search has; at least one, so an empty search is "page 1 of 1"."""
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def meta(self) -> dict[str, Any]:
        """Where this page stands, for a JSON answer beside its items."""
        return {"page": self.page, "pages": self.pages, "per_page": self.per_page, "total": self.total,
                "has_next": self.has_next, "has_prev": self.has_prev}


class PageShown(Out):
    """Where a page of a list stands: its number (from 1), how many there are, how many items a page holds,
    how many in all, and whether there is a next or a previous page."""

    page: int
    pages: int
    per_page: int
    total: int
    has_next: bool
    has_prev: bool


def pages_for(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill; at least one."""
    return max(1, -(-total // per_page))


def offset(page: int, per_page: int) -> int:
    """How many items come before page ``page`` (from 1)."""
    return (max(page, 1) - 1) * per_page


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally (use it with
    ``escape="\\\\"``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


LIKE_ESCAPE = "\\"
