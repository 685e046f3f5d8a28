"""The one table of the server's error codes and their HTTP statuses: the error classes take theirs from it,
every code raised in the source is a row with the raising class's status, and the README documents it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import server.app  # noqa: F401  (imports every module, so every error class is defined)
from server.errors import ErrorCode, TelemedError, ValidationFailed
from server.http import _HTTP_LAYER_CODES
from web.pages import LOGIN_REASONS

ROOT = Path(__file__).resolve().parents[2]


def subclasses(root: type) -> list[type]:
    found = []
    for cls in root.__subclasses__():
        found += [cls, *subclasses(cls)]
    return found


ERROR_CLASSES = {cls.__name__: cls for cls in [TelemedError, *subclasses(TelemedError)]}


def raised_codes() -> list[tuple[str, str, str]]:
    """Every ``SomeError(..., code="...")`` in server/ and web/: (where, class name, code)."""
    found = []
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "web").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            for keyword in node.keywords:
                if name in ERROR_CLASSES and keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", name, keyword.value.value))
    return found


def readme_rows() -> list[list[str]]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| code | status | when |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def table_rows() -> list[list[str]]:
    return [[f"`{kind.code}`", str(kind.status or "its own"), kind.when] for kind in ErrorCode]


@pytest.mark.parametrize("cls", ERROR_CLASSES.values(), ids=lambda cls: cls.__name__)
def test_every_error_class_takes_its_code_and_status_from_its_row(cls: type[TelemedError]) -> None:
    """An error class's code and HTTP status are its row's, so no class answers with a pair the table
    (and the README) does not have."""
    assert isinstance(cls.kind, ErrorCode)
    assert (cls.code, cls.status) == (cls.kind.code, cls.kind.status)


def test_a_class_that_sets_its_own_code_is_refused() -> None:
    """Writing ``code = ...`` on a new class, instead of naming a row, fails at import: it would otherwise be
    overwritten by the inherited row without a word."""
    with pytest.raises(TypeError, match="takes its code and status from its row"):
        type("Stray", (TelemedError,), {"code": "stray"})
    with pytest.raises(TypeError, match="one status"):
        type("Stray", (TelemedError,), {"kind": ErrorCode.HTTP_ERROR})


def test_codes_are_unique() -> None:
    """One code, one row: a client can tell the status from the code alone."""
    codes = [kind.code for kind in ErrorCode]
    assert len(codes) == len(set(codes))


def test_the_source_raises_only_codes_of_the_table() -> None:
    """Every literal ``code=`` passed to an error class is a row of the table whose status is the class's,
    so a 401 is never sent with a 409's code."""
    by_code = {kind.code: kind for kind in ErrorCode}
    found = raised_codes()
    assert len(found) > 20  # the scan sees the raises (it would pass vacuously otherwise)
    wrong = [(where, name, code) for where, name, code in found
             if code not in by_code or by_code[code].status != ERROR_CLASSES[name].status]
    assert not wrong


def test_every_row_is_used() -> None:
    """No row is dead: each is an error class's, a code raised in the source, or the HTTP layer's."""
    used = {cls.kind for cls in ERROR_CLASSES.values()}
    raised = {code for _, _, code in raised_codes()}  # (once: it parses every source file)
    used |= {kind for kind in ErrorCode if kind.code in raised}
    used |= {kind for kind in ErrorCode if kind.code in _HTTP_LAYER_CODES.values()} | {ErrorCode.HTTP_ERROR}
    assert set(ErrorCode) - used == set()


def test_login_reasons_are_codes_of_the_table() -> None:
    """The login page explains codes it can be sent with; each is a 401 of the table."""
    by_code = {kind.code: kind for kind in ErrorCode}
    assert all(by_code[code].status == 401 for code in LOGIN_REASONS)


def test_readme_documents_exactly_the_table() -> None:
    """The README's table of error codes is ErrorCode row by row: same codes, statuses and order."""
    expected = table_rows()
    assert readme_rows() == expected, "README.md should read:\n" + "\n".join(
        "| " + " | ".join(row) + " |" for row in expected)


def test_the_json_shape_is_kept() -> None:
    """The API's error body stays {"error": {"code", "message", "fields"?}}, a raise's own code winning."""
    assert TelemedError("boom", code="bad-id").to_json() == {"error": {"code": "bad-id", "message": "boom"}}
    body = ValidationFailed({"title": "too long"}).to_json()["error"]
    assert body["code"] == "validation-failed" and body["fields"] == {"title": "too long"}
