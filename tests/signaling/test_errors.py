"""The one table of signaling errors and close codes: the error classes take their codes from it, media's wire
errors are rows of it, and PROTOCOL.md documents exactly it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from media import errors as media_errors
from signaling.errors import CloseCode, ErrorCode, SignalingError, close_code_for

PROTOCOL = Path(__file__).resolve().parents[2] / "signaling" / "PROTOCOL.md"


def subclasses(root: type) -> list[type]:
    found = []
    for cls in root.__subclasses__():
        found += [cls, *subclasses(cls)]
    return found


def markdown_tables(section: str) -> dict[str, list[list[str]]]:
    """The tables of a markdown section, keyed by their header row, as rows of stripped cells."""
    tables: dict[str, list[list[str]]] = {}
    header = None
    for line in section.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if header is None:
            header = " | ".join(cells)
            tables[header] = []
        elif not all(set(cell) <= {"-"} for cell in cells):
            tables[header].append(cells)
    return tables


def errors_section() -> str:
    text = PROTOCOL.read_text()
    start = text.index("## Errors and close codes")
    return text[start:text.index("\n## ", start + 1)]


def error_rows() -> list[list[str]]:
    return [[f"`{kind.code}`", kind.when, str(int(kind.close)) if kind.close else ""] for kind in ErrorCode]


def close_rows() -> list[list[str]]:
    return [[str(int(close)), f"`{close.name}`", close.meaning, "no" if close.final else "yes"]
            for close in CloseCode]


def as_markdown(rows: list[list[str]]) -> str:
    return "\n".join(("| " + " | ".join(row) + " |").replace("|  |", "| |") for row in rows)


@pytest.mark.parametrize("cls", subclasses(SignalingError), ids=lambda cls: cls.__name__)
def test_every_error_class_takes_its_codes_from_its_row(cls: type[SignalingError]) -> None:
    """Each error class names a row of ErrorCode and carries that row's wire code and close code, so no
    class can hold a code the table (and so PROTOCOL.md and the browser) does not know."""
    assert isinstance(cls.kind, ErrorCode)
    assert cls.code == cls.kind.code
    assert close_code_for(cls("x")) == cls.kind.close
    assert cls.close_code is None or isinstance(cls.close_code, CloseCode)


def test_every_row_is_raised_by_someone() -> None:
    """No row is dead: each is the kind of one signaling error class, or the code of one of media's wire
    errors (the relay answers through the room), and no two classes share a row."""
    kinds = [cls.kind for cls in subclasses(SignalingError)]
    media_codes = {ErrorCode.NEGOTIATION_FAILED: media_errors.NegotiationFailed.code,
                   ErrorCode.NOT_IN_RELAY: media_errors.NotInRelay.code}
    assert len(kinds) == len(set(kinds))
    assert set(kinds) | set(media_codes) == set(ErrorCode)
    assert all(kind.code == code for kind, code in media_codes.items())


def test_a_class_without_a_row_is_refused() -> None:
    """Forgetting ``kind`` on a new error class fails at import, not on the wire."""
    with pytest.raises(TypeError, match="must name its row"):
        type("Stray", (SignalingError,), {})


def test_close_codes_are_the_websocket_ones_or_the_applications() -> None:
    """Close codes are protocol ones (1000-1999) or in the application's range (4000-4999), where a browser
    may also send them; every code an error closes with is in the table."""
    assert all(1000 <= code < 2000 or 4000 <= code < 5000 for code in CloseCode)
    assert {kind.close for kind in ErrorCode if kind.close} <= set(CloseCode)


def test_protocol_documents_exactly_the_error_table() -> None:
    """PROTOCOL.md's table of errors is ErrorCode row by row: the same codes, in the same order, with the
    same close codes, and nothing documented that the table lacks."""
    tables = markdown_tables(errors_section())
    documented = tables["code | when | closes with"]
    assert documented == error_rows(), "PROTOCOL.md should read:\n" + as_markdown(error_rows())


def test_protocol_documents_exactly_the_close_codes() -> None:
    """PROTOCOL.md's table of close codes is CloseCode row by row, with whether the client reconnects."""
    tables = markdown_tables(errors_section())
    documented = tables["close code | name | when | the client reconnects"]
    assert documented == close_rows(), "PROTOCOL.md should read:\n" + as_markdown(close_rows())


def test_protocol_mentions_no_close_code_outside_the_table() -> None:
    """Anywhere in PROTOCOL.md (prose too), a close code is one the table has."""
    mentioned = {int(code) for code in re.findall(r"\b(10\d\d|4\d{3})\b", PROTOCOL.read_text())}
    assert mentioned - {int(code) for code in CloseCode} == set()


def test_the_table_parser_can_fail() -> None:
    """The parser reads a row that differs as different (a test that could not fail would guard nothing)."""
    section = "| code | when | closes with |\n| --- | --- | --- |\n| `room-full` | a full room | 4410 |\n"
    assert markdown_tables(section)["code | when | closes with"] == [["`room-full`", "a full room", "4410"]]
    assert markdown_tables(section)["code | when | closes with"][0] not in error_rows()
