"""What the pages' forms need around the shared input models: a field's error in the reader's language,
next to the field, and a time typed on the hospital's clock made into the aware time the models take.

The models and services name each wrong field in English (the API's 422). A page shows the same refusal
beside the field, translated: messages the server wrote are marked ``N_`` and translate directly;
pydantic's own come in a handful of shapes, each matched here to a sentence of ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from server.errors import N_, TelemedError

Gettext = Callable[[str], str]

# pydantic's messages (by their English shape) and what a person is told instead; %(n)s is the number in them
_PYDANTIC: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Field required$"), N_("Please fill this in.")),
    (re.compile(r"^String should have at least 1 character"), N_("Please fill this in.")),
    (re.compile(r"^String should have at least (?P<n>\d+) character"), N_("At least %(n)s characters.")),
    (re.compile(r"^String should have at most (?P<n>\d+) character"), N_("At most %(n)s characters.")),
    (re.compile(r"^String should match pattern"), N_("This is not in the expected form.")),
    (re.compile(r"^Input should be greater than or equal to (?P<n>\S+)$"), N_("At least %(n)s.")),
    (re.compile(r"^Input should be less than or equal to (?P<n>\S+)$"), N_("At most %(n)s.")),
    (re.compile(r"^Input should be a valid integer"), N_("Enter a whole number.")),
    (re.compile(r"^Input should have timezone info"), N_("Enter a date and a time.")),
    (re.compile(r"^Input should be a valid datetime"), N_("Enter a date and a time.")),
    (re.compile(r"^Input should be a valid date"), N_("Enter a date.")),
    (re.compile(r"^List should have at least"), N_("Choose at least one.")),
    (re.compile(r"^List should have at most (?P<n>\d+) item"), N_("Choose at most %(n)s.")),
    (re.compile(r"^Input should be "), N_("Choose one of the options.")),
    (re.compile(r"^Extra inputs are not permitted"), N_("This form sent something unexpected.")),
]
_VALUE_ERROR = re.compile(r"^Value error, (?P<message>.*)$", re.DOTALL)


def say(message: str, gettext: Gettext) -> str:
    """One field's refusal in the reader's language."""
    if found := _VALUE_ERROR.match(message):
        return gettext(found["message"])
    for pattern, ours in _PYDANTIC:
        if found := pattern.match(message):
            return gettext(ours) % found.groupdict() if found.groupdict() else gettext(ours)
    return gettext(message)  # ours, marked N_ where it was raised


def field_errors(error: TelemedError, gettext: Gettext) -> dict[str, str]:
    """Each wrong field of a refusal, translated, under its dotted name and each name above it
    (``participant_ids.0`` is also ``participant_ids``), so a template finds it by the input's name."""
    found: dict[str, str] = {}
    for name, message in (error.details.get("fields") or {}).items():
        text = say(str(message), gettext)
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):
            found.setdefault(".".join(parts[:depth]), text)
    return found


def summary(error: TelemedError, gettext: Gettext) -> str:
    """What to say above a form: the error's own message, or for a 422 that fields below need checking."""
    if error.details.get("fields"):
        return gettext(N_("Please correct the fields marked below."))
    return gettext(error.message)


def on_clock(raw: str, zone: str) -> str:
    """A form's ``YYYY-MM-DDTHH:MM`` read on ``zone``'s clock, as the aware ISO time the models take.
    Anything else (empty, malformed, already aware) is passed on as it came, for the model to refuse or take."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if moment.tzinfo is not None:
        return raw
    return moment.replace(tzinfo=ZoneInfo(zone)).isoformat()
