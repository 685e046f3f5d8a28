"""The parsing layer on its own: ids as ASCII digits within the id columns' range, and JSON bodies within
their depth and number limits, refused with BadRequest (never ValueError or RecursionError) otherwise."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import BadRequest
from server.http import same_origin
from server.parsing import MAX_DEPTH, MAX_ID, Id, load_json, multipart_problem, nesting_depth, parse_id, parse_whole


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", 1), ("42", 42), ("007", 7), (str(MAX_ID), MAX_ID),
    (None, None), ("", None), ("0", None), ("-1", None), ("+1", None), (" 1", None), ("1 ", None), ("1.0", None),
    ("²", None), ("١", None), ("１", None), ("1²", None),  # isdigit() says yes to each; int() reads the last two
    (str(MAX_ID + 1), None), ("9" * 30, None), ("9" * 5000, None),  # past the columns; past int()'s digit limit
])
def test_an_id_is_ascii_digits_within_the_id_columns(raw: str | None, expected: int | None) -> None:
    """Guards the one reading of ids in paths, queries and forms: no other script's digits, nothing past MAX_ID."""
    assert parse_id(raw) == expected


def test_whole_numbers_keep_to_their_range() -> None:
    """Guards ?days=-style parameters: the bounds hold at both ends."""
    assert [parse_whole(raw, 1, 31) for raw in ("1", "31", "0", "32", "٣")] == [1, 31, None, None, None]


@given(st.text(max_size=30))
def test_no_text_makes_parse_id_raise(raw: str) -> None:
    """Guards against the ValueError that ``int()`` raises on text ``isdigit()`` let through."""
    number = parse_id(raw)
    assert number is None or (1 <= number <= MAX_ID and raw.isascii())


def test_the_id_type_bounds_model_fields() -> None:
    """Guards request models: an id PostgreSQL's INTEGER columns cannot hold is a 422 on the field, not a
    database error later."""
    class Body(pydantic.BaseModel):
        patient_id: Id

    assert Body(patient_id=MAX_ID).patient_id == MAX_ID
    for bad in (0, -1, MAX_ID + 1, 2**63, "99999999999999999999"):
        with pytest.raises(pydantic.ValidationError):
            Body(patient_id=bad)


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "]"]', 1), (r'["\"[[["]', 1),
    ('"[[[[', 0), ("[" * 5 + "]" * 5, 5), ("[[][][]]", 2),
])
def test_nesting_depth_ignores_brackets_in_strings(text: str, depth: int) -> None:
    """Guards the depth check from counting a summary's "[" as nesting (and refusing good referrals)."""
    assert nesting_depth(text) == depth


@given(st.recursive(st.none() | st.integers() | st.text(alphabet='[]{}"\\ab'),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\'), inner,
                                                                                 max_size=3), max_leaves=20))
def test_nesting_depth_is_the_real_depth(value: Any) -> None:
    """Guards the scan against JSON's own strings and escapes: it measures what json.loads would build."""
    def depth(v: Any) -> int:
        children = list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)

    assert nesting_depth(json.dumps(value)) == depth(value)


@pytest.mark.parametrize(("body", "code"), [
    (b"9" * 5000, "bad-number"),  # past int()'s 4300-digit limit: was a ValueError
    (b'{"n": ' + str(2**63).encode() + b"}", "bad-number"),
    (b'{"n": ' + str(-(2**63) - 1).encode() + b"}", "bad-number"),
    (b"1e400", "bad-number"), (b"0." + b"1" * 100, "bad-number"),
    (b"NaN", "bad-json"), (b"[Infinity]", "bad-json"),
    (b"[" * 100_000 + b"]" * 100_000, "too-deep"),  # was a RecursionError
    (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "too-deep"),
    (b"{not json", "bad-json"), (b"", "bad-json"), (b"\xff\xfe", "bad-json"),
])
def test_bodies_past_the_limits_are_bad_requests(body: bytes, code: str) -> None:
    """Guards each limit of a JSON body: each breach is a 400 that names it, not a ValueError or a 500."""
    with pytest.raises(BadRequest) as refused:
        load_json(body)
    assert refused.value.code == code


def test_bodies_within_the_limits_parse_as_json_does() -> None:
    """Guards against the limits refusing good bodies: 64-bit edges, floats, deep-enough nesting, CJK text."""
    good = {"max": 2**63 - 1, "min": -(2**63), "f": 0.1, "e": 1e-300, "summary": "心电图 [ST ↓] {V4–V6}",
            "nested": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))}
    assert load_json(json.dumps(good, ensure_ascii=False).encode()) == good


@given(st.binary(max_size=200) | st.text(alphabet='[]{}"\\0123456789.eE-+, :nulltrefaNIify', max_size=200)
       .map(str.encode))
def test_no_body_escapes_as_anything_but_a_bad_request(body: bytes) -> None:
    """Guards parse_body's promise: whatever the bytes, a value or BadRequest, never another exception."""
    try:
        load_json(body)
    except BadRequest:
        pass


@pytest.mark.parametrize(("origin", "host", "expected"), [
    (None, "telemed.example", True), ("null", "telemed.example", False),
    ("https://telemed.example", "telemed.example", True), ("https://evil.example", "telemed.example", False),
    ("https://telemed.example:443", "telemed.example", True), ("http://telemed.example", "telemed.example", True),
    ("https://telemed.example:8443", "telemed.example", False),
    ("https://telemed.example", "telemed.example:8443", False),
    ("https://telemed.example:8443", "telemed.example:8443", True), ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
    ("https://TELEMED.example", "telemed.example", True), ("ftp://telemed.example", "telemed.example", False),
    ("https://", "telemed.example", False), ("https://evil.example", "", False),
    ("http://[::1", "telemed.example", False), ("http://a:99999", "telemed.example", False),
    ("http://\udcff", "telemed.example", False), ("https://telemed.example", "[bad", False),
])
def test_an_unreadable_origin_is_not_same_origin(origin: str | None, host: str, expected: bool) -> None:
    """Guards the cookie-write check: an Origin (or Host) yarl cannot parse is cross-site, not a ValueError."""
    assert same_origin(origin, host) is expected


@given(st.text(max_size=40), st.text(max_size=40))
def test_same_origin_never_raises(origin: str, host: str) -> None:
    """Guards the same check against any header text at all."""
    assert same_origin(origin, host) in (True, False)


@pytest.mark.parametrize(("content_type", "refused"), [
    ("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", False),
    ('multipart/form-data; boundary="a b"', False),
    ("application/json", False), ("application/x-www-form-urlencoded", False), ("", False),
    ("multipart/form-data", True), ("multipart/form-data; boundary=", True), ("multipart/mixed", True),
    ("multipart/form-data; boundary=" + "b" * 71, True), ('multipart/form-data; boundary="a\\"b"', True),
])
def test_a_multipart_content_type_needs_a_boundary(content_type: str, refused: bool) -> None:
    """Guards the check that keeps aiohttp's form readers from raising ValueError on a missing boundary."""
    assert (multipart_problem(content_type) is not None) is refused
