"""What the pages' forms need around the shared input models: a field's error in the reader's language,
next to the field, and a time typed on the hospital's clock made into the aware time the models take.

The models and services name each wrong field in English (the API's 422). A page shows the same refusal
beside the field, translated: messages the server wrote are marked ``N_`` and translate directly; pydantic's
are said by their error type (which ``server.http.refusal`` keeps), each matched here to a sentence of ours.
A field is named by its label, never by its code name (``sharing_consent``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.errors import N_, TelemedError
from server.i18n import knows
from server.models import ProfessionalTitle

from .refusals import error_text

Gettext = Callable[[str], str]

# Each field of the shared input models, as the forms label it: a summary of what is wrong names the field the
# way the page does (a page can name one differently: ``field_lines(..., labels=)``).
FIELD_LABELS = {
    # accounts, hospitals, specialties, partnerships (server/admin/inputs.py)
    "username": N_("Username"), "display_name": N_("Full name"), "role": N_("Role"), "hospital_id": N_("Hospital"),
    "department_id": N_("Department"), "specialty_id": N_("Specialty"), "password": N_("Password"),
    "name": N_("Name"), "level": N_("Level"), "region": N_("Region"), "timezone": N_("Time zone"),
    "code": N_("Code"), "name_zh": N_("Chinese name"), "name_en": N_("English name"),
    "slot_minutes": N_("Appointment length (minutes)"), "lead_hospital_id": N_("Lead hospital"),
    "member_ids": N_("Member hospitals"), "q": N_("Search"), "status": N_("Status"), "page": N_("Page"),
    # referrals and their actions (server/referrals/inputs.py, flow.py)
    "patient_id": N_("Patient"), "specialty": N_("Specialty wanted"), "urgency": N_("Urgency"),
    "reason": N_("Reason"), "summary": N_("Clinical summary"), "target_hospital_id": N_("Partner hospital"),
    "target_specialist_id": N_("Specialist (optional)"), "question": N_("Question for the specialist"),
    "working_diagnosis": N_("Working diagnosis"), "diagnosis_code": N_("ICD-10 code"),
    "history": N_("Relevant history"), "results": N_("Relevant results"),
    "title_wanted": N_("Professional title wanted"),
    "sharing_consent": N_("Consent to sharing the patient's records"), "action": N_("Action"),
    "template_id": N_("Consent text"), "sharing_template_id": N_("Consent text"),
    "redirect_to": N_("Redirect to hospital"), "redirect_to.hospital_id": N_("Redirect to hospital"),
    "redirect_to.specialist_id": N_("Specialist (optional)"), "opinion": N_("Opinion"),
    "recommendations": N_("Recommendations"), "state": N_("State"), "file": N_("File"),
    # booking, consultations, clinic hours
    "specialist_id": N_("Specialist"), "starts_at": N_("Time"), "title": N_("Title"),
    "planned_start": N_("Planned start"), "duration_minutes": N_("Duration"), "participant_ids": N_("Specialists"),
    "hours": N_("Clinic hours"), "first_day": N_("First day"), "last_day": N_("Last day"), "note": N_("Note"),
    # patients
    "sex": N_("Sex"), "birth_year": N_("Year of birth"), "phone": N_("Phone"), "national_id": N_("National ID"),
    # a patient's identity check (server/patients/identity_check.py)
    "id_last4": N_("Last four characters of your national ID"),
    # clinicians' licences
    "licence_number": N_("Licence number"), "professional_title": N_("Professional title"),
}
# A clinician's professional title (职称), wherever it is shown or chosen.
TITLE_LABELS: dict[str, str] = {
    ProfessionalTitle.NONE: N_("No title"), ProfessionalTitle.RESIDENT: N_("Resident physician"),
    ProfessionalTitle.ATTENDING: N_("Attending physician"),
    ProfessionalTitle.ASSOCIATE_CHIEF: N_("Associate chief physician"),
    ProfessionalTitle.CHIEF: N_("Chief physician"),
}

# pydantic's error types (server/http.refusal keeps them) and what a person is told instead; %(name)s are the
# error's context (min_length...). A type not here is said as UNACCEPTED.
_BY_TYPE: dict[str, str] = {
    "missing": N_("Please fill this in."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "string_pattern_mismatch": N_("This is not in the expected form."),
    "greater_than_equal": N_("At least %(ge)s."),
    "greater_than": N_("More than %(gt)s."),
    "less_than_equal": N_("At most %(le)s."),
    "less_than": N_("Less than %(lt)s."),
    "multiple_of": N_("A multiple of %(multiple_of)s."),
    "int_parsing": N_("Enter a whole number."), "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."), "float_parsing": N_("Enter a number."),
    "datetime_parsing": N_("Enter a date and a time."), "datetime_type": N_("Enter a date and a time."),
    "datetime_from_date_parsing": N_("Enter a date and a time."), "timezone_aware": N_("Enter a date and a time."),
    "date_parsing": N_("Enter a date."), "date_type": N_("Enter a date."),
    "date_from_datetime_parsing": N_("Enter a date."), "date_from_datetime_inexact": N_("Enter a date."),
    "time_parsing": N_("Enter a time."), "time_type": N_("Enter a time."),
    "too_long": N_("Choose at most %(max_length)s."),
    "enum": N_("Choose one of the options."), "literal_error": N_("Choose one of the options."),
    "bool_parsing": N_("Choose one of the options."), "bool_type": N_("Choose one of the options."),
    "extra_forbidden": N_("This form sent something unexpected."),
}
UNACCEPTED = N_("This value is not accepted.")

# pydantic's messages by their English shape, for a refusal that kept no types (from an older caller).
_PYDANTIC: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Field required$"), N_("Please fill this in.")),
    (re.compile(r"^String should have at least 1 character"), N_("Please fill this in.")),
    (re.compile(r"^String should have at least (?P<n>\d+) character"), N_("At least %(n)s characters.")),
    (re.compile(r"^String should have at most (?P<n>\d+) character"), N_("At most %(n)s characters.")),
    (re.compile(r"^Input should be greater than or equal to (?P<n>\S+)$"), N_("At least %(n)s.")),
    (re.compile(r"^Input should be less than or equal to (?P<n>\S+)$"), N_("At most %(n)s.")),
    (re.compile(r"^Input should be "), N_("Choose one of the options.")),
]
_VALUE_ERROR = re.compile(r"^Value error, (?P<message>.*)$", re.DOTALL)


def _ours(message: str, gettext: Gettext) -> str:
    """A reason of ours (marked N_ where raised) in the reader's words; one the catalog lacks is UNACCEPTED."""
    return gettext(message) if knows(gettext, message) else gettext(UNACCEPTED)


def say(message: str, gettext: Gettext, kind: tuple[str, dict[str, Any]] | None = None) -> str:
    """One field's refusal in the reader's language: by pydantic's error type when it kept one, else the
    reason of ours it is."""
    if kind is not None:
        name, context = kind
        if name in ("value_error", "assertion_error") and "error" in context:
            return _ours(str(context["error"]), gettext)
        if name in ("string_too_short", "too_short"):
            if context.get("min_length", 1) == 1:
                return gettext(N_("Please fill this in.")) if name == "string_too_short" \
                    else gettext(N_("Choose at least one."))
            return gettext(N_("At least %(min_length)s characters.")) % context if name == "string_too_short" \
                else gettext(N_("Choose at least %(min_length)s.")) % context
        if name in _BY_TYPE:
            try:
                return gettext(_BY_TYPE[name]) % context
            except (KeyError, TypeError, ValueError):
                return gettext(UNACCEPTED)
        return gettext(UNACCEPTED)
    if found := _VALUE_ERROR.match(message):
        return _ours(found["message"], gettext)
    for pattern, ours in _PYDANTIC:
        if found := pattern.match(message):
            return gettext(ours) % found.groupdict() if found.groupdict() else gettext(ours)
    return _ours(message, gettext)


def _reasons(error: TelemedError, gettext: Gettext) -> dict[str, str]:
    kinds = getattr(error, "kinds", {})
    return {name: say(str(message), gettext, kinds.get(name))
            for name, message in (error.details.get("fields") or {}).items()}


def field_errors(error: TelemedError, gettext: Gettext) -> dict[str, str]:
    """Each wrong field of a refusal, translated, under its dotted name and each name above it
    (``participant_ids.0`` is also ``participant_ids``), so a template finds it by the input's name."""
    found: dict[str, str] = {}
    for name, text in _reasons(error, gettext).items():
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):
            found.setdefault(".".join(parts[:depth]), text)
    return found


def label(name: str, gettext: Gettext, labels: dict[str, str] | None = None) -> str:
    """A field's label in the reader's words: the page's own, else the shared table's (``hours.2`` is a row of
    ``hours``), else a plain word rather than its code name."""
    for candidate in (name, re.sub(r"\.\d+$", "", name), name.split(".")[0]):
        if labels and candidate in labels:
            return gettext(labels[candidate])
        if candidate in FIELD_LABELS:
            return gettext(FIELD_LABELS[candidate])
    return gettext(N_("A field"))


def field_lines(error: TelemedError, gettext: Gettext, labels: dict[str, str] | None = None) -> list[str]:
    """Each wrong field as "its label: why", for a page that shows them together rather than beside each field."""
    colon = gettext(N_("%(field)s: %(reason)s"))
    return [colon % {"field": label(name, gettext, labels), "reason": reason}
            for name, reason in _reasons(error, gettext).items()]


def summary(error: TelemedError, gettext: Gettext) -> str:
    """What to say above a form: the error's own message, or for a 422 that fields below need checking."""
    if error.details.get("fields"):
        return gettext(N_("Please correct the fields marked below."))
    return error_text(error, gettext)


def refusal_text(error: TelemedError, gettext: Gettext, labels: dict[str, str] | None = None) -> str:
    """A refusal as one paragraph: each wrong field with its label, or the error's message."""
    if error.details.get("fields"):
        return gettext(N_("; ")).join(field_lines(error, gettext, labels))
    return error_text(error, gettext)


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
