"""What a log line is about (the request, the room, the participant) and the two ways lines are written.

It sits in the lowest layer so that signaling, media and the server can all set and read the same context.
Each field is a ``ContextVar``: a request's handler, a signaling connection's loop and a relay's loop each run
as their own task, so what one sets is never seen by another.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
room: contextvars.ContextVar[str | None] = contextvars.ContextVar("room", default=None)
participant: contextvars.ContextVar[str | None] = contextvars.ContextVar("participant", default=None)

FIELDS = ("request_id", "room", "participant")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def room_context(room_id: str) -> contextvars.Context:
    """A fresh context naming only this room: for a room's own long-lived task, which must not inherit the
    request or the participant that happened to start it."""
    context = contextvars.Context()
    context.run(room.set, room_id)
    return context


class ContextFilter(logging.Filter):
    """Stamps each record with the context it was logged in (so a handler that formats later still has it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in zip(FIELDS, (request_id, room, participant), strict=True):
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(value) for name in FIELDS if (value := getattr(record, name, None)) is not None}


class TextFormatter(logging.Formatter):
    """Today's readable line, with the context after it in brackets when there is some."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if context := _context(record):
            first, newline, rest = line.partition("\n")  # after the message, before any traceback
            tags = " ".join(f"{name}={value}" for name, value in context.items())
            line = f"{first} [{tags}]{newline}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the context fields present,
    and ``exc`` for an exception. Nothing else of the record is written (no arguments, no extras): what a
    line says is only what its message says."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing lines in ``fmt`` with their context."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.addFilter(ContextFilter())
    out.setFormatter(formatter(fmt))
    return out


def configure(level: str, fmt: str) -> None:
    """Send every logger's records to stderr in ``fmt`` ("text" or "json") from ``level`` up."""
    logging.basicConfig(level=level, handlers=[handler(fmt)])
