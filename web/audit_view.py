"""The audit trail in words, for the auditor's page: who acted (a name, role and hospital, not ``user:4``), what
they did (a phrase in the reader's language, not ``referral.accept``), to what, and the details as labelled
values instead of JSON; every time on the reader's clock. The names a page needs are read in one query
(``server.audit.review.names``), patients' masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.audit.review import COUNTED, ID, REFERENCES, Names, detail_of, identity_of
from server.errors import N_
from server.models import AuditEvent, Role
from server.notices import STATE_LABELS

from .forms import TITLE_LABELS

Gettext = Callable[[str], str]

# Every action the server writes (tests/web/test_audit_view.py finds them in server/ and holds this table to them).
ACTIONS: dict[str, str] = {
    "auth.login": N_("Logged in"),
    "auth.login_failed": N_("Failed to log in"),
    "account.created": N_("Account created"),
    "account.updated": N_("Account changed"),
    "account.disabled": N_("Account disabled"),
    "account.enabled": N_("Account re-enabled"),
    "account.password_reset": N_("Password reset"),
    "account.licence_changed": N_("Practising licence entered or changed"),
    "account.licence_verified": N_("Practising licence verified"),
    "account.password_changed": N_("Password changed by its owner"),
    "hospital.created": N_("Hospital added"),
    "hospital.updated": N_("Hospital changed"),
    "department.created": N_("Department added"),
    "department.updated": N_("Department changed"),
    "specialty.created": N_("Specialty added"),
    "specialty.updated": N_("Specialty changed"),
    "partnership.created": N_("Partnership created"),
    "partnership.updated": N_("Partnership changed"),
    "partnership.member_added": N_("Hospital added to a partnership"),
    "partnership.member_removed": N_("Hospital removed from a partnership"),
    "partnership.supervisor_added": N_("Supervisor linked to a partnership"),
    "partnership.supervisor_removed": N_("Supervisor unlinked from a partnership"),
    "patient.registered": N_("Patient registered"),
    "patient.searched": N_("Patients looked up by national ID"),
    "patient.viewed": N_("Patient's record viewed"),
    "referral.created": N_("Referral drafted"),
    "referral.request_edited": N_("Draft referral's request rewritten"),
    "referral.submit": N_("Referral submitted"),
    "referral.accept": N_("Referral accepted"),
    "referral.decline": N_("Referral declined"),
    "referral.redirect": N_("Referral redirected"),
    "referral.schedule": N_("Referral scheduled"),
    "referral.start": N_("Referral's consultation started"),
    "referral.complete": N_("Referral completed"),
    "referral.cancel": N_("Referral cancelled"),
    "attachment.added": N_("Attachment added"),
    "attachment.downloaded": N_("Attachment downloaded"),
    "attachment.previewed": N_("Attachment previewed"),
    "report.signed": N_("Consultation report signed"),
    "report.amended": N_("Consultation report amended"),
    "report.acknowledged": N_("Receipt of the report acknowledged"),
    "report.downloaded": N_("Consultation report downloaded"),
    "icd10.loaded": N_("ICD-10 code list loaded"),
    "appointment.booked": N_("Appointment booked"),
    "appointment.moved": N_("Appointment moved"),
    "availability.set": N_("Clinic hours set"),
    "availability.exception": N_("Clinic day changed"),
    "availability.time_off": N_("Time off added"),
    "availability.exception_removed": N_("Clinic day change removed"),
    "calendar.rotated": N_("Calendar link renewed"),
    "consultation.created": N_("Consultation set up"),
    "consultation.joined": N_("Joined the consultation room"),
    "invitation.created": N_("Patient invited"),
    "invitation.revoked": N_("Patient's invitation withdrawn"),
    "invitation.identity_confirmed": N_("Patient confirmed who they are"),
    "invitation.identity_failed": N_("Wrong answer to the patient's identity check"),
    "invitation.locked": N_("Invitation locked after too many wrong identity answers"),
    "consent.given": N_("Consent given"),
    "consent.withdrawn": N_("Consent withdrawn"),
    "recording.started": N_("Recording started"),
    "recording.finished": N_("Recording finished"),
    "recording.discarded": N_("Recording discarded"),
    "recording.recovered": N_("Recording recovered after a server stopped"),
    "recording.viewed": N_("Recording played"),
    "recording.downloaded": N_("Recording downloaded"),
    "fhir.exported": N_("Record exported as FHIR"),
    "fhir.read": N_("Record read through the FHIR API"),
    "audit.exported": N_("Audit trail exported"),
    "hold.placed": N_("Legal hold placed"),
    "hold.released": N_("Legal hold released"),
    "retention.purged": N_("Deleted at the end of its retention period"),
}
# The families the action filter offers whole (``consent.`` matches every consent action).
FAMILIES: dict[str, str] = {
    "auth.": N_("Logins"), "account.": N_("Accounts"), "hospital.": N_("Hospitals"),
    "department.": N_("Departments"), "specialty.": N_("Specialties"), "partnership.": N_("Partnerships"),
    "patient.": N_("Patients"), "referral.": N_("Referrals"), "attachment.": N_("Attachments"),
    "appointment.": N_("Appointments"), "availability.": N_("Clinic hours"), "calendar.": N_("Calendar"),
    "consultation.": N_("Consultations"), "invitation.": N_("Invitations"), "consent.": N_("Consents"),
    "recording.": N_("Recordings"), "fhir.": N_("FHIR API"), "audit.": N_("Audit trail"),
    "hold.": N_("Legal holds"), "retention.": N_("Retention"), "report.": N_("Consultation reports"),
    "icd10.": N_("Code lists"),
}
ROLE_LABELS: dict[str, str] = {
    Role.COUNTY_DOCTOR: N_("County doctor"), Role.SPECIALIST: N_("Specialist"), Role.COORDINATOR: N_("Coordinator"),
    Role.ADMIN: N_("Administrator"), Role.AUDITOR: N_("Auditor"), Role.SUPERVISOR: N_("Supervisor"),
    "patient": N_("Patient"),
}
# Actors that are no one's account.
OTHER_ACTORS = {
    "system": N_("The system"), "shell": N_("Administrator at the server's shell"),
    "anonymous": N_("Someone not logged in"), "": N_("Unknown"),
}
# What a subject's or a detail's ``kind:id`` names, when it is not a person or a named thing.
NUMBERED = {
    "referral": N_("Referral %(id)s"), "consent": N_("Consent %(id)s"), "invitation": N_("Invitation %(id)s"),
    "recording": N_("Recording %(id)s"), "consultation": N_("Consultation %(id)s"),
    "participant": N_("Room seat %(id)s"), "username": N_("Username %(id)s"), "attachment": N_("Attachment %(id)s"),
    "appointment": N_("Appointment %(id)s"), "template": N_("Consent text %(id)s"),
    "report": N_("Report %(id)s"),
}
DETAIL_LABELS = {
    "address": N_("IP address"), "appointment": N_("Appointment"), "starts_at": N_("Starts"),
    "periods": N_("Weekly periods"), "day": N_("Day"), "available": N_("Available"), "first_day": N_("First day"),
    "last_day": N_("Last day"), "days": N_("Days"), "username": N_("Username"), "role": N_("Role"),
    "hospital_id": N_("Hospital"), "generated_password": N_("Password generated"), "changes": N_("Changes"),
    "generated": N_("Password generated"), "name": N_("Name"), "lead_hospital_id": N_("Lead hospital"),
    "member_ids": N_("Members"), "by": N_("Looked up by"), "found": N_("Found"), "via": N_("Seen on"),
    "patient": N_("Patient"), "expires_at": N_("Expires"), "state": N_("State"), "attachment": N_("Attachment"),
    "frame": N_("Frame"), "temporary": N_("Replaced a temporary password"),
    "type": N_("File type"), "size": N_("Size"), "sha256": N_("SHA-256"), "participants": N_("Participants"),
    "planned_start": N_("Planned start"), "consents": N_("Consents"), "status": N_("Status"),
    "range": N_("Bytes sent"), "viewing": N_("Viewing"), "invitation": N_("Invitation"), "purpose": N_("Purpose"),
    "attempt": N_("Wrong answer number"), "limit": N_("Wrong answers allowed"), "attempts": N_("Wrong answers"),
    "template": N_("Consent text"), "version": N_("Version"), "method": N_("How"), "for": N_("On behalf of"),
    "referral": N_("Referral"), "format": N_("Format"), "filter": N_("Filter"), "entries": N_("Entries"),
    "specialty_id": N_("Specialty"), "department_id": N_("Department"), "level": N_("Level"),
    "region": N_("Region"), "timezone": N_("Time zone"), "code": N_("Code"), "name_zh": N_("Chinese name"),
    "name_en": N_("English name"), "slot_minutes": N_("Minutes per appointment"), "display_name": N_("Full name"),
    "actor": N_("Who"), "action": N_("Action"), "consultation_id": N_("Consultation"), "subject": N_("Subject"),
    "since": N_("From"), "until": N_("Until"),
    "hold": N_("Legal hold"), "reason": N_("Reason"), "kind": N_("Kind"), "id": N_("Number"),
    "patient_id": N_("Patient"), "anchor": N_("Kept from"), "expired_at": N_("Kept until"),
    "period_days": N_("Days kept"), "file": N_("File"), "key": N_("Encryption key"),
    "locale": N_("Language"), "renditions": N_("Other languages"), "signer": N_("Signed with"),
    "diagnosis": N_("Diagnosis"), "supersedes": N_("Replaces version"), "codes": N_("Codes"),
    "reports": N_("Report versions read"),
    "licence_number": N_("Licence number"), "professional_title": N_("Professional title"),
    "verification_cleared": N_("Earlier verification cleared"), "user_id": N_("Account"),
}
TIMES = {"starts_at", "expires_at", "planned_start", "since", "until", "anchor", "expired_at"}
WORDS: dict[str, dict[str, str]] = {
    "purpose": {"video": N_("Taking part by video"), "recording": N_("Being recorded"),
                "record_sharing": N_("Sharing records with the partner hospital")},
    "method": {"clicked": N_("Agreed on a page"), "verbal": N_("Said to a doctor, who recorded it")},
    "state": STATE_LABELS,
    "status": {"recording": N_("Still recording"), "ready": N_("Ready"),
               "interrupted": N_("Cut short by a server restart; what was saved plays"),
               "failed": N_("Failed; nothing was saved")},
    "role": {str(k): v for k, v in ROLE_LABELS.items()},
    "level": {"county": N_("County hospital"), "secondary": N_("Secondary hospital"),
              "tertiary": N_("Tertiary hospital")},
    "by": {"national_id": N_("National ID")},
    "professional_title": TITLE_LABELS,
    "via": {"chart": N_("the patient's chart"), "api": N_("the API")},
    # what a retention purge deleted, why, and what became of its key (server/retention/purge.py)
    "kind": {"recording": N_("Recording"), "attachment": N_("Attachment"), "report": N_("Consultation report")},
    "reason": {"retention period ended": N_("Its retention period ended")},
    "key": {"own key deleted": N_("Its own key deleted: no copy can be read any more"),
            "deployment key (backups stay readable)": N_("Sealed under the deployment's key: backups stay readable")},
    # how a consultation request was read (server/referrals/request.py); an export's format stays as written
    "format": {"request-page": N_("Its page"), "request-pdf": N_("PDF"), "request-json": N_("JSON (API)")},
    "locale": {"zh-CN": N_("Simplified Chinese"), "en": N_("English")},
}


@dataclass(frozen=True)
class Actor:
    """Who acted, in words; ``identity`` is what the page's filter takes to show only their entries."""

    name: str
    role: str  # translated
    hospital: str
    identity: str


@dataclass(frozen=True)
class Shown:
    """One entry as the page shows it."""

    id: int
    at: str  # ISO, for <time datetime>
    when: str  # on the reader's clock
    action: str
    action_label: str
    actor: Actor
    subject: str
    subject_href: str | None
    consultation_id: int | None
    details: list[tuple[str, str]]
    raw: str  # the entry as the export has it, for the expert


class Speaker:
    """Puts entries into words for one page: its names, the reader's clock and language."""

    def __init__(self, names: Names, zone: str, gettext: Gettext, locale: str) -> None:
        self.names, self.zone, self._, self.locale = names, zone, gettext, locale

    def action(self, action: str) -> str:
        return self._(ACTIONS[action]) if action in ACTIONS else action

    def named(self, kind: str, ident: Any) -> str:
        """A ``kind`` (user, patient, hospital, referral…) and id in words; the raw pair if nothing names it."""
        _ = self._
        number = ident if isinstance(ident, int) else int(ident) if isinstance(ident, str) and ID.match(ident) else None
        found = self.names.get(kind, number) if number is not None else None
        if found is not None and kind == "patient":
            return _("Patient %(id)s (%(name)s)") % {"id": number, "name": found.name}
        if found is not None and kind == "specialty":
            return found.other_name if self.locale == "en" and found.other_name else found.name
        if found is not None:
            return found.name
        if kind in NUMBERED:
            return _(NUMBERED[kind]) % {"id": ident}
        return f"{kind}:{ident}"

    def identity(self, raw: str) -> str:
        """``user:4``, ``patient:1``, ``referral:3``, ``Patient/1`` (FHIR) in words."""
        if raw in OTHER_ACTORS:
            return self._(OTHER_ACTORS[raw])
        if found := identity_of(raw):
            return self.named(*found)
        if "/" in raw:  # a FHIR resource, Patient/1
            kind, _, ident = raw.partition("/")
            if kind == "Patient":
                return self.named("patient", ident)
        return raw

    def actor(self, raw: str) -> Actor:
        _ = self._
        if raw in OTHER_ACTORS:
            return Actor(_(OTHER_ACTORS[raw]), "", "", raw)
        found = identity_of(raw)
        named = self.names.get(found[0], int(found[1])) if found and ID.match(found[1]) else None
        if named is None:
            return Actor(self.identity(raw), "", "", raw)
        role = _(ROLE_LABELS[named.role]) if named.role in ROLE_LABELS else ""
        shown = self.named(found[0], int(found[1])) if found else named.name
        return Actor(shown, role, named.hospital, raw)

    def value(self, key: str, value: Any) -> str:
        """One detail's value in words."""
        _ = self._
        if value is None or value == "" or value == []:
            return "—"
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if key == "changes" and isinstance(value, dict):
            return "; ".join(f"{self.label(name)}: {self.value(name, pair[0])} → {self.value(name, pair[1])}"
                             if isinstance(pair, list) and len(pair) == 2 else f"{self.label(name)}: {pair}"
                             for name, pair in value.items())
        if key == "filter" and isinstance(value, dict):
            return "; ".join(f"{self.label(name)}: {self.value(name, v)}" for name, v in value.items())
        if key == "action" and isinstance(value, str):
            return _(FAMILIES[value]) if value in FAMILIES else self.action(value)
        if key in WORDS and isinstance(value, str) and value in WORDS[key]:
            return _(WORDS[key][value])
        kind = REFERENCES.get(key)
        if kind and not (key in COUNTED and not isinstance(value, list)):
            items = value if isinstance(value, list) else [value]
            return ", ".join(self.identity(v) if kind == "identity" and isinstance(v, str) else self.named(kind, v)
                             for v in items)
        if key in TIMES and isinstance(value, str):
            try:
                local = datetime.fromisoformat(value).astimezone(ZoneInfo(self.zone))
            except ValueError:
                return value
            return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
        if key == "size" and isinstance(value, int):
            return _("%(n)s KB") % {"n": f"{value / 1024:,.1f}"}
        if key == "range" and isinstance(value, list) and len(value) == 2:
            return f"{value[0]}–{value[1]}"
        if key == "format" and isinstance(value, str):
            return value.upper()
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False, sort_keys=True)
        return str(value)

    def label(self, key: str) -> str:
        return self._(DETAIL_LABELS[key]) if key in DETAIL_LABELS else key

    def details(self, detail: dict[str, Any]) -> list[tuple[str, str]]:
        return [(self.label(key), self.value(key, value)) for key, value in detail.items()]

    def when(self, moment: datetime) -> str:
        return f"{moment.astimezone(ZoneInfo(self.zone)):%Y-%m-%d %H:%M:%S}"

    def entry(self, event: AuditEvent) -> Shown:
        detail = detail_of(event)
        subject = event.subject
        kind, _, ident = subject.partition(":")
        href = f"/recordings/{ident}" if kind == "recording" and ID.match(ident) else None
        assert event.id is not None
        return Shown(
            id=event.id, at=event.at.isoformat(), when=self.when(event.at), action=event.action,
            action_label=self.action(event.action), actor=self.actor(event.actor),
            subject=self.identity(subject) if subject else "", subject_href=href,
            consultation_id=event.consultation_id, details=self.details(detail),
            raw=json.dumps({"actor": event.actor, "action": event.action, "subject": event.subject,
                            "consultation_id": event.consultation_id, "detail": detail},
                           ensure_ascii=False, indent=1))


def action_choices(gettext: Gettext) -> list[tuple[str, list[tuple[str, str]]]]:
    """The action filter's options: per family (in the table's order), the whole family and each action."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for action, label in ACTIONS.items():
        family = action.split(".")[0] + "."
        whole = gettext(N_("%(family)s: all")) % {"family": gettext(FAMILIES[family])}
        grouped.setdefault(family, [(family, whole)]).append((action, gettext(label)))
    return [(gettext(FAMILIES[family]), options) for family, options in grouped.items()]
