"""The one stylesheet stays well formed: every block it opens it closes, so no section's rules end up
inside another section's @media query (where they apply on narrow screens only)."""

from __future__ import annotations

import re

from web import STATIC_DIR


def test_every_block_of_the_stylesheet_is_closed() -> None:
    """Guards a merge that drops a closing brace: the admin console's narrow-screen block once swallowed
    every rule after it (the top bar's links, the clinic pages, the recordings player) on a desktop."""
    text = re.sub(r"/\*.*?\*/", "", (STATIC_DIR / "css" / "app.css").read_text(), flags=re.S)
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        if depth == 1 and line.startswith("@media"):
            raise AssertionError(f"line {number}: an @media inside an unclosed block")
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"line {number} closes a block that was never opened"
    assert depth == 0, "a block is never closed"
