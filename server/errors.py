"""The server's error tree: each error has a stable code, a user-safe message and one HTTP status."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a user-facing message for translation; pages translate it when they show it."""
    return message


class TelemedError(Exception):
    """Root of every error the server turns into an answer. The message is safe to show the caller."""

    status = 500
    code = "internal-error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that belong with this error's answer, whatever shape the answer takes."""
        return {}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


class SettingsError(TelemedError):
    """A setting is missing or malformed; start-up stops with this message."""

    code = "bad-setting"


class BadRequest(TelemedError):
    status = 400
    code = "bad-request"


class ValidationFailed(TelemedError):
    """The request was well-formed but a field's value is unacceptable."""

    status = 422
    code = "validation-failed"

    def __init__(self, fields: dict[str, str]) -> None:
        summary = "; ".join(f"{name}: {reason}" for name, reason in fields.items())
        super().__init__(f"Invalid input: {summary}", fields=fields)


class Unauthenticated(TelemedError):
    status = 401
    code = "unauthenticated"


class TokenExpired(Unauthenticated):
    code = "token-expired"


class Forbidden(TelemedError):
    status = 403
    code = "forbidden"


class NotFound(TelemedError):
    status = 404
    code = "not-found"


class Conflict(TelemedError):
    status = 409
    code = "conflict"


class TooManyRequests(TelemedError):
    """Slow down; ``retry_after`` seconds travel in the body and in the Retry-After header."""

    status = 429
    code = "too-many-requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(TelemedError):
    status = 503
    code = "unavailable"


class RangeNotSatisfiable(TelemedError):
    status = 416
    code = "range-not-satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class PayloadTooLarge(TelemedError):
    status = 413
    code = "too-large"


class UnsupportedMediaType(TelemedError):
    status = 415
    code = "unsupported-type"
