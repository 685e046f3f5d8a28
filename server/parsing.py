"""Reading what callers send into values, within limits: JSON bodies, ids in paths and queries, whole numbers.

Every request body and every id in a path or query string is read here (or by a pydantic model using
``Id``), so a 5,000-digit number, an array nested 100,000 deep, a ``²`` where an id belongs or an id past
the database's columns is refused as bad input (400 or 422, saying what was wrong) at the edge, instead
of surfacing as a ValueError, RecursionError or database overflow further in.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Mapping
from itertools import accumulate
from typing import Annotated, Any

import pydantic
from aiohttp.helpers import parse_mimetype

from .errors import N_, BadRequest

# Ids are INTEGER columns: 32-bit on PostgreSQL (SQLite's 64 bits hold more), so an id past 2**31 - 1
# cannot name a row, and asking PostgreSQL about one is an error rather than "not found".
MAX_ID = 2**31 - 1
Id = Annotated[int, pydantic.Field(ge=1, le=MAX_ID)]
"""A row id in a request model: a whole number the id columns can hold."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 32  # our request models nest four deep at most; deeper is a mistake or an attack
MAX_NUMBER_CHARS = 40  # a double needs 17 significant digits and an exponent; 2**63 has 19 digits
_DIGITS = re.compile(r"[0-9]+")  # not \d, not str.isdigit(): both take "²" and "١", which int() reads or chokes on

# A JSON string, escapes and all, or an unterminated one to the end of the text. Possessive, and always
# matching once it starts at a quote, so stripping strings is one linear pass whatever the text.
_STRING = re.compile(r'"(?:[^"\\]|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")  # RFC 2046 bchars


def parse_whole(raw: str | None, lowest: int, highest: int) -> int | None:
    """The whole number ``raw`` spells in ASCII digits, if it lies in lowest..highest; None for anything else
    (a sign, a space, other scripts' digits, too many digits)."""
    if not raw or len(raw) > len(str(highest)) or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if lowest <= value <= highest else None


def parse_id(raw: str | None) -> int | None:
    """The row id ``raw`` spells (ASCII digits, 1..MAX_ID), or None."""
    return parse_whole(raw, 1, MAX_ID)


def query_id(query: Mapping[str, str], name: str, problems: dict[str, str], what: str = "an id") -> int | None:
    """The id in ``?name=``, None if absent; one that is not an id goes into ``problems`` (for a 422)."""
    raw = query.get(name, "")
    number = parse_id(raw)
    if raw and number is None:
        problems[name] = what
    return number


def multipart_problem(content_type: str) -> str | None:
    """What is wrong with a multipart Content-Type header, or None if it is not multipart or has a boundary
    aiohttp can split the body by (without one, its readers raise ValueError)."""
    mimetype = parse_mimetype(content_type)
    if mimetype.type != "multipart":
        return None
    boundary = mimetype.parameters.get("boundary", "")
    if not boundary:
        return f"The {mimetype.type}/{mimetype.subtype} Content-Type has no boundary."
    if not _BOUNDARY.fullmatch(boundary):
        return "The multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? characters."
    return None


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets inside strings do not count). Linear, and in C
    but for nothing: safe to run on any text before json.loads, whose parser recurses."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    steps = array("b")
    steps.frombytes(brackets.encode("ascii").translate(_STEP))
    return max(accumulate(steps), default=0)


def _shown(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}…{literal[-6:]} ({len(literal)} characters)"


def _int(literal: str) -> int:
    if len(literal) <= MAX_NUMBER_CHARS:
        value = int(literal)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise BadRequest(f"The number {_shown(literal)} is outside the signed 64-bit range.", code="bad-number")


def _float(literal: str) -> float:
    if len(literal) <= MAX_NUMBER_CHARS:
        value = float(literal)
        if math.isfinite(value):
            return value
    raise BadRequest(f"The number {_shown(literal)} is too long or too large.", code="bad-number")


def _constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number.", code="bad-json")


def load_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON request body: UTF-8, nested at most ``max_depth`` deep, whole numbers within signed
    64 bits, other numbers finite and of sane length, no NaN or Infinity. BadRequest says which rule broke."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(N_("The request body is not valid JSON: it is not UTF-8."), code="bad-json") from None
    if nesting_depth(text) > max_depth:
        raise BadRequest(f"The request body nests arrays or objects more than {max_depth} deep.", code="too-deep")
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.", code="bad-json") from None
    except RecursionError:  # cannot happen after the depth check; kept so it never becomes a 500
        raise BadRequest(N_("The request body nests arrays or objects too deep."), code="too-deep") from None
