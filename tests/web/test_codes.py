"""The browser's close and error codes come from the server's one table (web/codes.py), and nowhere else."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient

from server.errors import ErrorCode as ApiErrorCode
from signaling.errors import CloseCode, ErrorCode
from web import STATIC_DIR
from web.codes import PATH, render_module

JS_DIR = STATIC_DIR / "js"
EXPORT = re.compile(r"^export const (\w+) = Object\.freeze\((.*?)\);$", re.MULTILINE | re.DOTALL)
# A close code as a number: the application's range, or the protocol's own that mean something to us.
CLOSE_NUMBER = re.compile(r"(?<![\w.])(4\d{3}|1001|1009)(?![\w.])")
# A close code passed to close() or compared with a code, written as a number (1000 included).
CLOSE_CALL = re.compile(r"\.close\(\s*\d|\bcode\s*[!=]==?\s*\d|\d\s*[!=]==?\s*(?:event\.)?code\b")
# An error code compared as a string literal rather than taken from ERRORS.
ERROR_LITERAL = re.compile(r"\.code\s*[!=]==?\s*[\"'`]|[\"'`]\s*[!=]==?\s*\w+\.code\b")


def exports(source: str) -> dict[str, object]:
    """What the module exports, read back as JSON values."""
    return {name: json.loads(value) for name, value in EXPORT.findall(source)}


def test_module_is_the_table() -> None:
    """The module exports every close code by name, the final ones, and every error row's wire code by its
    name, exactly as signaling/errors.py has them; and the HTTP API's error codes as server/errors.py has them."""
    assert exports(render_module()) == {
        "CLOSE": {close.name: int(close) for close in CloseCode},
        "FINAL_CLOSES": [int(close) for close in CloseCode if close.final],
        "ERRORS": {kind.name: kind.code for kind in ErrorCode},
        "API_ERRORS": {kind.name: kind.code for kind in ApiErrorCode},
    }


async def test_the_server_serves_the_module_beside_the_scripts(client: TestClient) -> None:
    """/static/js/codes.js is the rendered table, as JavaScript from this origin (so 'self' scripts may
    import it), revalidated on every load (no-cache) and answered 304 while it has not changed."""
    response = await client.get(PATH)
    assert response.status == 200
    assert response.content_type == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert exports(await response.text()) == exports(render_module())
    again = await client.get(PATH, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


def test_no_file_shadows_the_module() -> None:
    """The module is generated: a codes.js written into web/static/js would be a second copy (and never
    served, since the route comes first)."""
    assert not (JS_DIR / "codes.js").exists()


@pytest.mark.parametrize("path", sorted(JS_DIR.glob("*.js")), ids=lambda path: path.name)
def test_scripts_copy_no_codes(path) -> None:
    """No script writes a close code or compares an error code by hand: they import CLOSE, FINAL_CLOSES and
    ERRORS from ./codes.js, so a code changed on the server changes in the browser too."""
    source = path.read_text()
    found = [(line_no, line.strip()) for line_no, line in enumerate(source.splitlines(), 1)
             if CLOSE_NUMBER.search(line) or CLOSE_CALL.search(line) or ERROR_LITERAL.search(line)]
    assert not found, f"{path.name} copies codes; import them from ./codes.js: {found}"


@pytest.mark.parametrize("line", [
    "const FINAL_CLOSES = new Set([1000, 4400, 4401]);",
    "this.ws.close(4000, 'dropped');",
    "this.ws?.close(1000);",
    "else if (code !== 1000) fail();",
    "if (event.code === 1001) retry();",
    'if (message.code === "resume-failed") rejoin();',
    "if ('room-full' == error.code) wait();",
])
def test_the_grep_can_fail(line: str) -> None:
    """Each way of copying a code by hand is caught (a grep that matches nothing guards nothing)."""
    assert CLOSE_NUMBER.search(line) or CLOSE_CALL.search(line) or ERROR_LITERAL.search(line)


@pytest.mark.parametrize("line", [
    "const BACKOFF_MS = [0.5, 1, 2, 4, 8].map((seconds) => seconds * 1000);",
    "this.ws?.close(CLOSE.NORMAL);",
    "if (message.code === ERRORS.RESUME_FAILED) rejoin();",
    "const PING_EVERY_MS = 10_000;",
])
def test_the_grep_lets_the_constants_through(line: str) -> None:
    """Using the imported constants, and numbers that are not close codes, is not flagged."""
    assert not (CLOSE_NUMBER.search(line) or CLOSE_CALL.search(line) or ERROR_LITERAL.search(line))
