"""The server's error tree: each error has a stable code, a user-safe message and one HTTP status.

``ErrorCode`` is the one table of the codes the server answers with and the status each goes with; the
README's table of error codes is this one (a test holds it to it). Each error class takes its code and status
from its row; a raise may pass a more precise ``code=``, which must be a row with the class's status (a test
reads every raise in the source to check).
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from .i18n import Contextual


def N_(message: str) -> str:
    """Mark a user-facing message for translation; pages translate it when they show it."""
    return message


def NC_(context: str, message: str) -> str:
    """Mark a message whose words depend on where it is shown (pybabel's ``-k NC_:1c,2``): it is translated
    under ``context`` (``msgctxt``), as ``pgettext`` would, by whichever gettext later shows it."""
    return Contextual(context, message)


class ErrorCode(enum.Enum):
    """An error code of the HTTP API (and the pages), the ``status`` it answers with, and ``when``."""

    code: str
    status: int | None
    when: str

    def __init__(self, code: str, status: int | None, when: str) -> None:
        self.code = code
        self.status = status
        self.when = when

    BAD_REQUEST = "bad-request", 400, "the request is malformed"
    BAD_ID = "bad-id", 400, "an id in the path is not a whole number"
    BAD_JSON = "bad-json", 400, "the body is not JSON"
    BODY_TOO_LARGE = "body-too-large", 400, "a JSON body over 1 MiB"
    BAD_UPLOAD = "bad-upload", 400, "an upload that is not `multipart/form-data` with a field `file`"
    BAD_MULTIPART = "bad-multipart", 400, "a `multipart/form-data` body without a valid boundary"
    UPLOAD_CUT_SHORT = "upload-cut-short", 400, "an upload that stops before its file does"
    BAD_NUMBER = "bad-number", 400, "a number in a JSON body outside the signed 64-bit range, or too long"
    TOO_DEEP = "too-deep", 400, "a JSON body nesting arrays or objects more than 32 deep"
    REFERRAL_CLOSED = "referral-closed", 400, "attaching a file to a closed referral"
    WRONG_SCOPE = ("wrong-scope", 400,
                   "consent to sharing records, given on a consultation booked for a referral (it goes on the "
                   "referral)")
    CHOICE_REQUIRED = "choice-required", 400, "a form sent without one of its choices (pages)"
    BAD_IDEMPOTENCY_KEY = ("bad-idempotency-key", 400,
                           "an `Idempotency-Key` header that is not 1 to 128 printable ASCII characters")
    UNAUTHENTICATED = "unauthenticated", 401, "the caller is not who they need to be"
    LOGIN_REQUIRED = "login-required", 401, "no token and no session"
    TOKEN_INVALID = ("token-invalid", 401,
                     "an access, room, invitation or calendar token that is malformed, forged or not valid yet")
    TOKEN_EXPIRED = "token-expired", 401, "the access token has expired; log in again"
    TOKEN_REVOKED = "token-revoked", 401, "the session was logged out"
    SESSION_ENDED = "session-ended", 401, "an administrator disabled the account or reset its password since this login"
    ACCOUNT_DISABLED = "account-disabled", 401, "the account no longer exists or is disabled"
    BAD_CREDENTIALS = "bad-credentials", 401, "wrong username or password"
    LINK_REVOKED = "link-revoked", 401, "an invitation link that was revoked"
    LINK_CLOSED = "link-closed", 401, "an invitation link to a consultation that has ended"
    LINK_LOCKED = ("link-locked", 401,
                   "an invitation link locked after too many wrong answers to the patient's identity check")
    IDENTITY_MISMATCH = ("identity-mismatch", 401,
                         "a name or last four of the national ID that do not match the invited patient "
                         "(`attempts_left` says how many tries remain)")
    FORBIDDEN = "forbidden", 403, "the caller's role or part in it does not allow this"
    CROSS_SITE = "cross-site", 403, "a state-changing request or form from another site"
    PASSWORD_CHANGE_REQUIRED = ("password-change-required", 403,
                                "the account has a temporary password: set a new one (`POST /api/me/password`) first")
    CONSENT_REQUIRED = "consent-required", 403, "a patient's room token before their video consent stands"
    IDENTITY_REQUIRED = ("identity-required", 403,
                         "a patient's consent or room token before they confirmed who they are "
                         "(`POST /api/guest/identity`)")
    RECORDS_WITHHELD = ("records-withheld", 403,
                        "the patient has not consented to sharing their records with the caller's hospital")
    LICENCE_UNVERIFIED = ("licence-unverified", 403,
                          "a clinician whose licence no administrator has verified yet, signing a report")
    NOT_FOUND = "not-found", 404, "no such thing (or not one the caller may know of)"
    METHOD_NOT_ALLOWED = "method-not-allowed", 405, "the path does not take this method"
    CONFLICT = "conflict", 409, "not possible in the present state"
    LAST_ADMINISTRATOR = ("last-administrator", 409,
                          "disabling or demoting the last active administrator, which would leave nobody to administer")
    ILLEGAL_TRANSITION = "illegal-transition", 409, "a referral action its present state does not allow"
    REFERRAL_CHANGED = "referral-changed", 409, "someone else changed the referral a moment ago"
    SLOT_TAKEN = "slot-taken", 409, "the slot was booked by someone else first"
    SPECIALIST_UNVERIFIED = ("specialist-unverified", 409,
                             "booking a specialist whose licence no administrator has verified yet")
    REPORT_EXISTS = "report-exists", 409, "signing a referral's report when it has one (amend it instead)"
    REPORT_SUPERSEDED = "report-superseded", 409, "amending a report version that is not the latest"
    ROOM_NOT_OPEN = "room-not-open", 409, "a room token before the room opens"
    ROOM_CLOSED = "room-closed", 409, "a room token after the room closed"
    NO_PATIENT = "no-patient", 409, "inviting or recording the consent of a consultation's patient when it has none"
    NO_CONSENT = "no-consent", 409, "withdrawing a consent the caller never gave"
    CONSENT_WITHDRAWN = "consent-withdrawn", 409, "withdrawing a consent already withdrawn"
    CONSENT_TEXT_CHANGED = ("consent-text-changed", 409,
                            "consenting to a text that is no longer the current one (`current` names it)")
    DUPLICATE_PATIENT = ("duplicate-patient", 409,
                         "a patient with this national ID is already registered (`patient_id` names them)")
    NO_REFERRAL = ("no-referral", 409,
                   "consent to sharing records, for a consultation neither booked through a referral nor with "
                   "clinicians of another hospital taking part")
    IDEMPOTENCY_KEY_IN_USE = ("idempotency-key-in-use", 409,
                              "a request with the same `Idempotency-Key` is still being handled; try again")
    TOO_LARGE = ("too-large", 413,
                 "an attachment over `TELEMED_ATTACHMENT_MAX_BYTES`, or a bandwidth probe's upload over 512 KiB")
    UNSUPPORTED_TYPE = "unsupported-type", 415, "an attachment that is empty, or not PDF, PNG, JPEG, WebP or DICOM"
    RANGE_NOT_SATISFIABLE = "range-not-satisfiable", 416, "a `Range` outside the recording"
    VALIDATION_FAILED = "validation-failed", 422, "a field's value is wrong (`fields` names each one and why)"
    NO_PREVIEW = "no-preview", 422, "a preview of an attachment that is not DICOM, cannot be read or holds no image"
    DICOM_COMPRESSED = ("dicom-compressed", 422,
                        "a preview of a DICOM image compressed in a way the server cannot decode (`transfer_syntax` "
                        "names it): download the file instead")
    IDEMPOTENCY_KEY_REUSED = ("idempotency-key-reused", 422,
                              "an `Idempotency-Key` sent before with a different request (`key` names it)")
    TOO_MANY_REQUESTS = "too-many-requests", 429, "slow down (`retry_after`, and the `Retry-After` header)"
    INTERNAL_ERROR = "internal-error", 500, "a fault of the server's, logged"
    BAD_SETTING = "bad-setting", 500, "a setting is missing or malformed (start-up stops with it)"
    UNAVAILABLE = "unavailable", 503, "the service cannot do this now; try again"
    DATABASE_UNAVAILABLE = ("database-unavailable", 503,
                            "the database cannot be reached right now; try again (`retry_after`, and the "
                            "`Retry-After` header)")
    STORAGE_UNAVAILABLE = ("storage-unavailable", 503,
                           "the storage of recordings, attachments and reports cannot be reached right now (a "
                           "missing mount, a storage server down); try again (`retry_after`, and the `Retry-After` "
                           "header)")
    RECORDING_NOT_READY = "recording-not-ready", 503, "a recording that is not finished yet"
    RECORDING_TAMPERED = "recording-tampered", 503, "a recording that failed its integrity check"
    REPORT_TAMPERED = "report-tampered", 503, "a signed report whose stored file failed its integrity check"
    HTTP_ERROR = "http-error", None, "any other refusal by the HTTP layer itself, with its own status"


class TelemedError(Exception):
    """Root of every error the server turns into an answer. The message is safe to show the caller."""

    kind: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    code: str = kind.code
    status: ClassVar[int] = kind.status  # every row but HTTP_ERROR has one

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ or "status" in cls.__dict__:
            raise TypeError(f"{cls.__name__} takes its code and status from its row: kind = ErrorCode.…")
        if cls.kind.status is None:
            raise TypeError(f"{cls.__name__}: an error class answers with one status; {cls.kind.name} has none")
        cls.code, cls.status = cls.kind.code, cls.kind.status

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

    kind = ErrorCode.BAD_SETTING


class BadRequest(TelemedError):
    kind = ErrorCode.BAD_REQUEST


class ValidationFailed(TelemedError):
    """The request was well-formed but a field's value is unacceptable.

    ``fields`` names each wrong field and why, in English (the API's 422; our reasons are marked ``N_``). A
    refusal by pydantic also keeps, per field, pydantic's error type and its context (``min_length``...), so a
    page can say it in the reader's words without reading pydantic's English."""

    kind = ErrorCode.VALIDATION_FAILED

    def __init__(self, fields: dict[str, str], *, kinds: dict[str, tuple[str, dict[str, Any]]] | None = None) -> None:
        summary = "; ".join(f"{name}: {reason}" for name, reason in fields.items())
        super().__init__(f"Invalid input: {summary}", fields=fields)
        self.kinds = kinds or {}


class Unauthenticated(TelemedError):
    kind = ErrorCode.UNAUTHENTICATED


class TokenExpired(Unauthenticated):
    kind = ErrorCode.TOKEN_EXPIRED


class Forbidden(TelemedError):
    kind = ErrorCode.FORBIDDEN


class NotFound(TelemedError):
    kind = ErrorCode.NOT_FOUND


class MethodNotAllowed(TelemedError):
    """The path exists but does not take this method; ``allowed`` goes out in the Allow header."""

    kind = ErrorCode.METHOD_NOT_ALLOWED

    def __init__(self, message: str, *, allowed: frozenset[str] | set[str] = frozenset()) -> None:
        super().__init__(message)
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(sorted(self.allowed))}


class Conflict(TelemedError):
    kind = ErrorCode.CONFLICT


class TooManyRequests(TelemedError):
    """Slow down; ``retry_after`` seconds travel in the body and in the Retry-After header."""

    kind = ErrorCode.TOO_MANY_REQUESTS

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(TelemedError):
    kind = ErrorCode.UNAVAILABLE


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached (refused, cut off, restarting); the same request may work in a few
    seconds, which ``retry_after`` and Retry-After say. A change whose connection broke while it committed may
    have landed: a client resends it with the same ``Idempotency-Key`` to have it done exactly once."""

    kind = ErrorCode.DATABASE_UNAVAILABLE
    RETRY_AFTER = 5

    def __init__(self, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(N_("The service cannot reach its database right now. Please try again in a few seconds."),
                         retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StorageUnavailable(Unavailable):
    """The directory that holds recordings, attachments and reports cannot be reached (not mounted, its storage
    server down, unreadable): the file is not missing, only out of reach, and the same request may work later."""

    kind = ErrorCode.STORAGE_UNAVAILABLE
    RETRY_AFTER = 30

    def __init__(self, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(N_("This file is temporarily unavailable: its storage cannot be reached right now. Please "
                            "try again in a little while."), retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RangeNotSatisfiable(TelemedError):
    kind = ErrorCode.RANGE_NOT_SATISFIABLE

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class PayloadTooLarge(TelemedError):
    kind = ErrorCode.TOO_LARGE


class UnsupportedMediaType(TelemedError):
    kind = ErrorCode.UNSUPPORTED_TYPE
