"""A refusal or an error in the reader's words, whatever raised it.

Most errors carry a message of ours marked ``N_``, which translates directly. Some put values into English
words (``A referral that is accepted cannot be accepted.``, ``'abc' is not a referral id.``) for the API: a
page says those from the error's code and details instead. And a message the catalog has no words for falls
back to its code's sentence, so a page in Chinese never shows the API's English.
"""

from __future__ import annotations

from collections.abc import Callable

from server.consultations.service import NOBODY_ELSE_TAKES_PART
from server.errors import N_, ErrorCode, TelemedError
from server.i18n import knows
from server.notices import STATE_LABELS
from server.referrals.flow import ReferralAction

Gettext = Callable[[str], str]

# One sentence per row of server/errors.py's table (a test holds it to the table): what a page says for a
# code whose own message it cannot put into the reader's words.
BY_CODE: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: N_("The request could not be read. Go back and try again."),
    ErrorCode.BAD_ID: N_("This address does not name anything: its number is not valid."),
    ErrorCode.BAD_JSON: N_("The request could not be read. Go back and try again."),
    ErrorCode.BODY_TOO_LARGE: N_("What was sent is too large."),
    ErrorCode.BAD_UPLOAD: N_("The file could not be read from the form. Choose it and send it again."),
    ErrorCode.BAD_MULTIPART: N_("The file could not be read from the form. Choose it and send it again."),
    ErrorCode.UPLOAD_CUT_SHORT: N_("The upload stopped before the whole file arrived. Send it again."),
    ErrorCode.BAD_NUMBER: N_("A number in the request is too large."),
    ErrorCode.TOO_DEEP: N_("The request could not be read. Go back and try again."),
    ErrorCode.REFERRAL_CLOSED: N_("This referral is closed: nothing more can be attached to it."),
    ErrorCode.WRONG_SCOPE: N_("This consultation was booked for a referral: consent to sharing records is given on "
                              "the referral."),
    ErrorCode.CHOICE_REQUIRED: N_("Choose from the lists."),
    ErrorCode.BAD_IDEMPOTENCY_KEY: N_("The request could not be read. Go back and try again."),
    ErrorCode.UNAUTHENTICATED: N_("Please log in."),
    ErrorCode.LOGIN_REQUIRED: N_("Please log in to continue."),
    ErrorCode.TOKEN_INVALID: N_("This link or pass is not valid."),
    ErrorCode.TOKEN_EXPIRED: N_("Your session has expired. Please log in again."),
    ErrorCode.TOKEN_REVOKED: N_("You have logged out. Please log in again."),
    ErrorCode.SESSION_ENDED: N_("Your session has ended: your password was changed or reset, or an administrator "
                                "ended it. Please log in again."),
    ErrorCode.ACCOUNT_DISABLED: N_("This account is disabled."),
    ErrorCode.PASSWORD_CHANGE_REQUIRED: N_("Your password is temporary: choose your own password before you go on."),
    ErrorCode.BAD_CREDENTIALS: N_("Wrong username or password."),
    ErrorCode.LINK_REVOKED: N_("This link was withdrawn. Please ask the doctor for a new one."),
    ErrorCode.LINK_CLOSED: N_("This consultation has ended, so its link no longer works."),
    ErrorCode.LINK_LOCKED: N_(
        "This link is locked after too many wrong answers. Please contact your clinic for a new link."),
    ErrorCode.IDENTITY_MISMATCH: N_("The name or the last four characters of the national ID do not match our record."),
    ErrorCode.FORBIDDEN: N_("You are not allowed to do this."),
    ErrorCode.CROSS_SITE: N_("This form was sent from another site. Open this site's own page and try again."),
    ErrorCode.CONSENT_REQUIRED: N_("The patient has not agreed to the video consultation yet."),
    ErrorCode.IDENTITY_REQUIRED: N_("Please confirm who you are first."),
    ErrorCode.RECORDS_WITHHELD: N_("The patient has not agreed to sharing their records with your hospital."),
    ErrorCode.LICENCE_UNVERIFIED: N_("Your licence has not been verified by an administrator yet; until it is you "
                                     "cannot host consultations, be booked or sign reports."),
    ErrorCode.NOT_FOUND: N_("There is nothing here, or nothing you may see."),
    ErrorCode.METHOD_NOT_ALLOWED: N_("This page cannot be opened that way."),
    ErrorCode.CONFLICT: N_("This cannot be done in the present state. Reload the page to see it."),
    ErrorCode.LAST_ADMINISTRATOR: N_("This is the last active administrator: someone must stay to administer."),
    ErrorCode.ILLEGAL_TRANSITION: N_("This cannot be done to the referral in its present state."),
    ErrorCode.REFERRAL_CHANGED: N_("Someone else changed the referral a moment ago. Look at it again."),
    ErrorCode.SPECIALIST_UNVERIFIED: N_("This specialist's licence has not been verified by an administrator yet, "
                                        "so they cannot be booked. Choose another specialist."),
    ErrorCode.SLOT_TAKEN: N_("Someone else booked this time first. Choose another."),
    ErrorCode.ROOM_NOT_OPEN: N_("The room is not open yet"),
    ErrorCode.ROOM_CLOSED: N_("This consultation room has closed"),
    ErrorCode.NO_PATIENT: N_("This consultation has no patient."),
    ErrorCode.NO_CONSENT: N_("There is no consent of yours to withdraw."),
    ErrorCode.CONSENT_WITHDRAWN: N_("This consent was already withdrawn."),
    ErrorCode.CONSENT_TEXT_CHANGED: N_("The consent text has changed since this page was opened. Read it again."),
    ErrorCode.DUPLICATE_PATIENT: N_("A patient with this national ID is already registered."),
    ErrorCode.NO_REFERRAL: NOBODY_ELSE_TAKES_PART,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: N_("The same request is still being handled. Try again in a moment."),
    ErrorCode.TOO_LARGE: N_("The file is too large."),
    ErrorCode.UNSUPPORTED_TYPE: N_("Only PDF, PNG, JPEG, WebP and DICOM files can be attached."),
    ErrorCode.REPORT_EXISTS: N_("This referral already has a signed report: amend it instead."),
    ErrorCode.REPORT_SUPERSEDED: N_("A newer version of this report exists: amend the latest one."),
    ErrorCode.NO_PREVIEW: N_("This file has no preview here; open the file itself."),
    ErrorCode.DICOM_COMPRESSED: N_("This DICOM image is compressed in a way the viewer cannot show. Download the "
                                   "file to open it in your own viewer."),
    ErrorCode.RANGE_NOT_SATISFIABLE: N_("That part of the recording does not exist."),
    ErrorCode.VALIDATION_FAILED: N_("Please correct the fields marked below."),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: N_("The request could not be read. Go back and try again."),
    ErrorCode.TOO_MANY_REQUESTS: N_("Too many attempts. Please wait a while and try again."),
    ErrorCode.INTERNAL_ERROR: N_("Something went wrong on the server; it has been logged."),
    ErrorCode.BAD_SETTING: N_("Something went wrong on the server; it has been logged."),
    ErrorCode.UNAVAILABLE: N_("The service cannot do this right now. Please try again shortly."),
    ErrorCode.DATABASE_UNAVAILABLE: N_("The service cannot reach its database right now. Please try again in a "
                                       "few seconds."),
    ErrorCode.STORAGE_UNAVAILABLE: N_("This file is temporarily unavailable: its storage cannot be reached right "
                                      "now. Please try again in a little while."),
    ErrorCode.RECORDING_NOT_READY: N_("This recording is not finished yet."),
    ErrorCode.RECORDING_TAMPERED: N_("This recording failed its integrity check and cannot be played."),
    ErrorCode.REPORT_TAMPERED: N_("This report's stored file failed its integrity check; ask the consulting "
                                  "hospital for a copy."),
    ErrorCode.HTTP_ERROR: N_("The request could not be carried out."),
}
_ROWS = {row.code: row for row in ErrorCode}
# Codes whose own messages speak to a programmer (multipart/form-data, JSON): a page says its sentence instead.
TECHNICAL = {ErrorCode.BAD_REQUEST, ErrorCode.BAD_ID, ErrorCode.BAD_JSON, ErrorCode.BODY_TOO_LARGE,
             ErrorCode.BAD_UPLOAD, ErrorCode.BAD_MULTIPART, ErrorCode.BAD_NUMBER, ErrorCode.TOO_DEEP,
             ErrorCode.BAD_IDEMPOTENCY_KEY, ErrorCode.IDEMPOTENCY_KEY_REUSED}

# A referral action refused in its present state, the state named in the reader's words (%(state)s).
ILLEGAL: dict[ReferralAction, str] = {
    ReferralAction.SUBMIT: N_("This referral is %(state)s, so it cannot be submitted."),
    ReferralAction.ACCEPT: N_("This referral is %(state)s, so it cannot be accepted."),
    ReferralAction.DECLINE: N_("This referral is %(state)s, so it cannot be declined."),
    ReferralAction.REDIRECT: N_("This referral is %(state)s, so it cannot be redirected."),
    ReferralAction.SCHEDULE: N_("This referral is %(state)s, so it cannot be booked."),
    ReferralAction.START: N_("This referral is %(state)s, so its consultation cannot be started."),
    ReferralAction.COMPLETE: N_("This referral is %(state)s, so it cannot be completed."),
    ReferralAction.CANCEL: N_("This referral is %(state)s, so it cannot be cancelled."),
}


def by_code(code: str) -> str:
    """The sentence for an error code (untranslated: the caller's gettext says it)."""
    row = _ROWS.get(code)
    return BY_CODE[row] if row is not None else BY_CODE[ErrorCode.HTTP_ERROR]


def error_text(error: TelemedError, gettext: Gettext) -> str:
    """What a page says for ``error``, in the reader's language: its own message where the catalog has words
    for it, else (a message with values in it) what its code and details say."""
    technical = _ROWS.get(error.code) in TECHNICAL
    if not technical and knows(gettext, error.message):
        return gettext(error.message)
    if error.code == ErrorCode.ILLEGAL_TRANSITION.code and "state" in error.details and "action" in error.details:
        try:
            action = ReferralAction(error.details["action"])
        except ValueError:
            action = None
        if action in ILLEGAL:
            state = STATE_LABELS.get(error.details["state"], error.details["state"])
            return gettext(ILLEGAL[action]) % {"state": gettext(state)}
    return gettext(by_code(error.code))
