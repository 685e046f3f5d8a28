"""FHIR R4 (4.0.1) JSON for what other hospital systems ask of us: a patient, the clinicians (Practitioner,
PractitionerRole) and hospitals (Organization), a referral as a ServiceRequest, its appointments, a consent, a
consultation as an Encounter of class virtual, and the specialist's opinion as a DiagnosticReport. Pure: the
caller loads the rows and authorizes.

Resource ids are our row ids; references are relative (``Patient/1``) and ``GET /fhir/Patient/1`` answers
them. Identifier systems and extension URLs live under this installation's own address (``Site``), so two
installations never collide, and ``/fhir/StructureDefinition/{name}`` defines each extension. R4 has no
Appointment.virtualService, so the video details ride in R5's element through the standard cross-version
extension.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models import (
    Appointment,
    AppointmentStatus,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentTemplate,
    Consultation,
    ConsultationReport,
    ConsultationStatus,
    Hospital,
    Patient,
    ProfessionalTitle,
    Referral,
    ReferralState,
    Role,
    Sex,
    Specialty,
    Urgency,
    User,
)

FHIR_VERSION = "4.0.1"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
VIRTUAL_SERVICE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService"


@dataclass(frozen=True)
class Extension:
    """One of our own extensions: its name (the last part of its URL), what it says, and its value type."""

    name: str
    title: str
    description: str
    context: str  # the element it extends
    value_type: str  # "code", "Reference"...


EXTENSIONS = {e.name: e for e in (
    Extension("consent-method", "How the consent was given",
              "clicked: by the person themself on a page; verbal: said to a doctor, who recorded it.", "Consent",
              "code"),
    Extension("consent-recorded-by", "Who recorded a verbal consent",
              "The clinician who recorded a consent given to them by word of mouth.", "Consent", "Reference"),
)}


@dataclass(frozen=True)
class Site:
    """This installation's own address (``TELEMED_PUBLIC_URL``, else the address the request came to)."""

    url: str  # no trailing slash

    @property
    def fhir(self) -> str:
        return f"{self.url}/fhir"

    def system(self, kind: str) -> str:
        """The identifier system of our own ids of one kind (``patient``, ``referral``...)."""
        return f"{self.fhir}/sid/{kind}"

    def extension(self, name: str) -> str:
        assert name in EXTENSIONS
        return f"{self.fhir}/StructureDefinition/{name}"

    def identifier(self, kind: str, number: int | None) -> list[dict[str, Any]]:
        return [{"use": "official" if kind == "patient" else "usual", "system": self.system(kind),
                 "value": str(number)}]


REQUEST_STATUS = {
    ReferralState.DRAFT: "draft", ReferralState.SUBMITTED: "active", ReferralState.ACCEPTED: "active",
    ReferralState.REDIRECTED: "active", ReferralState.SCHEDULED: "active", ReferralState.IN_CONSULTATION: "active",
    ReferralState.COMPLETED: "completed", ReferralState.DECLINED: "revoked", ReferralState.CANCELLED: "revoked",
}
PRIORITY = {Urgency.ROUTINE: "routine", Urgency.URGENT: "urgent", Urgency.EMERGENCY: "stat"}
ENCOUNTER_STATUS = {
    ConsultationStatus.SCHEDULED: "planned", ConsultationStatus.IN_PROGRESS: "in-progress",
    ConsultationStatus.COMPLETED: "finished", ConsultationStatus.CANCELLED: "cancelled",
}
CONSENT_SCOPE = {  # http://terminology.hl7.org/CodeSystem/consentscope
    ConsentPurpose.VIDEO: ("treatment", "Treatment"),
    ConsentPurpose.RECORDING: ("treatment", "Treatment"),
    ConsentPurpose.RECORD_SHARING: ("patient-privacy", "Privacy Consent"),
}
CONSENT_ACTION = {  # http://terminology.hl7.org/CodeSystem/consentaction
    ConsentPurpose.VIDEO: "use", ConsentPurpose.RECORDING: "collect", ConsentPurpose.RECORD_SHARING: "disclose",
}


def instant(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def practitioner(user: User) -> dict[str, Any]:
    return {"reference": f"Practitioner/{user.id}", "display": user.display_name}


def patient_ref(patient: Patient) -> dict[str, Any]:
    return {"reference": f"Patient/{patient.id}", "display": patient.name}


def organization(hospital: Hospital) -> dict[str, Any]:
    return {"reference": f"Organization/{hospital.id}", "display": hospital.name}


GENDER = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.OTHER: "other", Sex.UNKNOWN: "unknown"}


def patient(row: Patient, site: Site, *, own_hospital: bool) -> dict[str, Any]:
    """The record as the reader may see it (``records.describe``'s rule: the phone number stays at the patient's
    own hospital). The identifier to match on is our stable per-installation id (we hold no MRN); the national
    ID is never stored, only its keyed hash, which goes to the patient's own hospital only, as a hashed
    identifier (meaningless without this installation's key)."""
    identifiers = site.identifier("patient", row.id)
    if own_hospital and row.national_id_hash:
        identifiers.append({"use": "secondary", "system": site.system("national-id-hmac-sha256"),
                            "value": row.national_id_hash,
                            "type": {"text": "Keyed hash (HMAC-SHA256) of the national ID"}})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row.id),
        "identifier": identifiers,
        "active": True,
        "name": [{"text": row.name}],
        "gender": GENDER[row.sex],
        "managingOrganization": {"reference": f"Organization/{row.hospital_id}"},
    }
    if row.birth_year is not None:
        resource["birthDate"] = f"{row.birth_year:04d}"
    if own_hospital and row.phone:
        resource["telecom"] = [{"system": "phone", "value": row.phone}]
    return resource


# A clinician's professional title (职称), as a qualification's text in English and Chinese.
TITLE_TEXT = {
    ProfessionalTitle.RESIDENT: "Resident physician (住院医师)",
    ProfessionalTitle.ATTENDING: "Attending physician (主治医师)",
    ProfessionalTitle.ASSOCIATE_CHIEF: "Associate chief physician (副主任医师)",
    ProfessionalTitle.CHIEF: "Chief physician (主任医师)",
}


def practitioner_resource(user: User, site: Site) -> dict[str, Any]:
    """A clinician as the directory shows them: name, and once an administrator has verified it, their practising
    licence (an identifier of type MD, from when it was verified) and title (a qualification); no account
    details. An unverified licence is left out: the directory says only what was checked."""
    identifiers = site.identifier("practitioner", user.id)
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": str(user.id), "identifier": identifiers,
                                "active": user.is_active, "name": [{"text": user.display_name}]}
    if user.licence_verified_at is not None and user.licence_number:
        identifiers.append({"use": "official", "system": site.system("physician-practising-licence"),
                            "value": user.licence_number, "period": {"start": user.licence_verified_at.isoformat()},
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "MD", "display": "Medical License number"}],
                                     "text": "医师执业证书编码"}})
        if user.professional_title in TITLE_TEXT:
            resource["qualification"] = [{"code": {"text": TITLE_TEXT[user.professional_title]}}]
    return resource


ROLE_CODE = {  # http://terminology.hl7.org/CodeSystem/practitioner-role
    Role.COUNTY_DOCTOR: ("doctor", "Doctor"), Role.SPECIALIST: ("doctor", "Doctor"),
    Role.COORDINATOR: ("ict", "ICT professional"), Role.ADMIN: ("ict", "ICT professional"),
    Role.AUDITOR: ("ict", "ICT professional"),
}


def practitioner_role(user: User, hospital: Hospital, specialty: Specialty | None, site: Site) -> dict[str, Any]:
    """What a user does where: one role per account (its id is the user's), at their hospital."""
    code, display = ROLE_CODE[user.role]
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole", "id": str(user.id),
        "identifier": site.identifier("practitioner-role", user.id), "active": user.is_active,
        "practitioner": practitioner(user), "organization": organization(hospital),
        "code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": code,
                              "display": display}], "text": user.role.value}],
    }
    if specialty is not None:
        resource["specialty"] = [{"coding": [{"system": site.system("specialty"), "code": specialty.code,
                                              "display": specialty.name_en}], "text": specialty.name_en}]
    return resource


def organization_resource(hospital: Hospital, site: Site) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": str(hospital.id),
            "identifier": site.identifier("organization", hospital.id), "active": True,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                  "code": "prov", "display": "Healthcare Provider"}]}],
            "name": hospital.name, "address": [{"text": hospital.region}]}


@dataclass(frozen=True)
class ReferralRecord:
    referral: Referral
    patient: Patient
    specialty: Specialty
    referrer: User
    target: Hospital
    target_specialist: User | None


def service_request(record: ReferralRecord, site: Site) -> dict[str, Any]:
    r = record.referral
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(r.id),
        "identifier": site.identifier("referral", r.id),
        "status": REQUEST_STATUS[r.state],
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}],
        "priority": PRIORITY[r.urgency],
        "code": {"text": f"Specialist consultation: {record.specialty.name_en} / {record.specialty.name_zh}"},
        "subject": patient_ref(record.patient),
        "authoredOn": instant(r.submitted_at or r.created_at),
        "requester": practitioner(record.referrer),
        "performer": [organization(record.target)]
        + ([practitioner(record.target_specialist)] if record.target_specialist else []),
        "reasonCode": [{"text": r.reason}],
    }
    if r.working_diagnosis or r.diagnosis_code:  # the requesting doctor's working diagnosis, coded if they picked
        working: dict[str, Any] = {"text": r.working_diagnosis or r.diagnosis_code}
        if r.diagnosis_code:
            working["coding"] = [{"system": ICD10, "code": r.diagnosis_code}]
        resource["reasonCode"].append(working)
    if r.consultation_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{r.consultation_id}"}
    # The consultation request's free text (会诊申请单), each part labelled in both languages: R4's
    # ServiceRequest has no element of its own for the question put to the specialist, the history or results.
    notes = [f"{label}: {text}" if label else text for label, text in (
        ("", r.summary), ("Question for the specialist / 会诊目的及要求", r.question),
        ("Relevant history / 相关病史", r.history), ("Relevant results / 相关检查结果", r.results)) if text]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def appointment(row: Appointment, record: ReferralRecord, specialist: User, room_url: str,
                site: Site) -> dict[str, Any]:
    """One booking. A moved appointment is a new row: its predecessor stays, cancelled with the reason
    ``rescheduled: ...``, and both are readable (both based on the same ServiceRequest)."""
    status = {AppointmentStatus.BOOKED: "booked", AppointmentStatus.CANCELLED: "cancelled"}[row.status]
    if row.status is AppointmentStatus.BOOKED and record.referral.state is ReferralState.COMPLETED:
        status = "fulfilled"
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(row.id),
        "identifier": site.identifier("appointment", row.id),
        "status": status,
        "serviceCategory": [{"text": "Telemedicine"}],
        "serviceType": [{"text": record.specialty.name_en}],
        "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276",
                                        "code": "ROUTINE" if record.referral.urgency is Urgency.ROUTINE
                                        else "EMERGENCY"}]},
        "description": f"Remote consultation for referral {record.referral.id}",
        "start": instant(row.starts_at),
        "end": instant(row.ends_at),
        "minutesDuration": int((row.ends_at - row.starts_at).total_seconds() // 60),
        "created": instant(row.booked_at),
        "basedOn": [{"reference": f"ServiceRequest/{record.referral.id}"}],
        "participant": [
            {"actor": patient_ref(record.patient), "required": "required", "status": "accepted"},
            {"actor": practitioner(specialist), "required": "required", "status": "accepted"},
            {"actor": practitioner(record.referrer), "required": "required", "status": "accepted"},
        ],
        "extension": [{"url": VIRTUAL_SERVICE, "extension": [
            {"url": "channelType", "valueCoding": {"system": site.system("virtual-service"), "code": "webrtc",
                                                   "display": "Telemed video room (WebRTC)"}},
            {"url": "addressUrl", "valueUrl": room_url},
            {"url": "sessionKey", "valueString": f"consultation:{row.consultation_id}"},
            {"url": "maxParticipants", "valuePositiveInt": 8},
        ]}],
    }
    if row.status is AppointmentStatus.CANCELLED:
        resource["cancelationReason"] = {"text": row.cancel_reason or "cancelled"}
    return resource


def consent(row: Consent, template: ConsentTemplate, patient: Patient | None, recorded_by: User | None,
            participant: User | None, site: Site) -> dict[str, Any]:
    """``sourceAttachment`` is the exact template version agreed to, served as ``Binary/{template id}``; a
    clinician's own consent (``participant``) names them as its performer and the provision's actor."""
    scope_code, scope_display = CONSENT_SCOPE[row.purpose]
    period: dict[str, Any] = {"start": instant(row.given_at)}
    if row.withdrawn_at:
        period["end"] = instant(row.withdrawn_at)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": str(row.id),
        "identifier": site.identifier("consent", row.id),
        "status": "inactive" if row.withdrawn_at else "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope_code,
                              "display": scope_display}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "dateTime": instant(row.given_at),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN", "display": "opt-in"}]},
        "sourceAttachment": {"contentType": "text/markdown", "language": template.locale.replace("_", "-"),
                             "url": f"{site.fhir}/Binary/{template.id}",
                             "title": f"{template.title} (v{template.version})",
                             "creation": instant(template.published_at)},
        "provision": {"type": "permit", "period": period, "action": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": CONSENT_ACTION[row.purpose]}]}]},
        "extension": [{"url": site.extension("consent-method"), "valueCode": row.method.value}],
    }
    if patient is not None:
        resource["patient"] = patient_ref(patient)
        resource["performer"] = [patient_ref(patient)]
    if participant is not None:
        resource["performer"] = [practitioner(participant)]
        resource["provision"]["actor"] = [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRF",
            "display": "performer"}]}, "reference": practitioner(participant)}]
    if row.method is ConsentMethod.VERBAL and recorded_by is not None:
        resource["extension"].append({"url": site.extension("consent-recorded-by"),
                                      "valueReference": practitioner(recorded_by)})
        resource["verification"] = [{"verified": True, "verificationDate": instant(row.given_at),
                                     **({"verifiedWith": patient_ref(patient)} if patient else {})}]
    data = []
    if row.referral_id is not None:
        data.append({"meaning": "related", "reference": {"reference": f"ServiceRequest/{row.referral_id}"}})
    if row.consultation_id is not None:
        data.append({"meaning": "related", "reference": {"reference": f"Encounter/{row.consultation_id}"}})
    if data:
        resource["provision"]["data"] = data
    return resource


def encounter(consultation: Consultation, hospital: Hospital, patient: Patient | None, participants: list[User],
              referral: Referral | None, started: datetime | None, ended: datetime | None,
              *, title: str | None, site: Site) -> dict[str, Any]:
    """``patient``, ``referral`` and ``title`` as the reader may see them (None where withheld)."""
    period = {"start": instant(started or consultation.planned_start)}
    if ended is not None:
        period["end"] = instant(ended)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(consultation.id),
        "identifier": site.identifier("consultation", consultation.id),
        "status": ENCOUNTER_STATUS[consultation.status],
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [{"coding": [{"system": SNOMED, "code": "11429006", "display": "Consultation"}],
                  "text": title or "Consultation"}],
        "participant": [{"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                               "code": "PART", "display": "Participation"}]}],
                         "individual": practitioner(user)} for user in participants],
        "period": period,
        "serviceProvider": organization(hospital),
    }
    if patient is not None:
        resource["subject"] = patient_ref(patient)
    if referral is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{referral.id}"}]
        resource["reasonCode"] = [{"text": referral.reason}]
    return resource


def diagnostic_report(record: ReferralRecord, author: User, issued: datetime, site: Site,
                      report: ConsultationReport | None = None) -> dict[str, Any]:
    """The specialist's opinion on a completed referral: final (amended once a later version was signed),
    issued when the referral was completed or its latest report signed, its author the specialist (as
    PractitionerRole and Practitioner), the opinion and recommendations as its conclusion, the report's
    ICD-10 diagnosis as its conclusion code and the signed PDF as its presented form. Its id is the
    referral's (one report per referral, in versions)."""
    r = record.referral
    # the signed words where there is a signed report (the referral's opinion is its copy, or, for a referral
    # completed before reports were signed, the only record of them)
    findings, recommendations = (report.findings, report.recommendations) if report else (r.opinion,
                                                                                          r.recommendations)
    conclusion = findings + (f"\n\nRecommendations: {recommendations}" if recommendations else "")
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(r.id),
        "identifier": site.identifier("opinion", r.id),
        "basedOn": [{"reference": f"ServiceRequest/{r.id}"}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "OTH",
                                  "display": "Other"}], "text": "Specialist opinion"}],
        "code": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}],
                 "text": f"Specialist opinion: {record.specialty.name_en}"},
        "subject": patient_ref(record.patient),
        "effectiveDateTime": instant(issued),
        "issued": instant(issued),
        "performer": [{"reference": f"PractitionerRole/{author.id}", "display": author.display_name},
                      practitioner(author)],
        "resultsInterpreter": [practitioner(author)],
        "conclusion": conclusion,
    }
    if r.consultation_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{r.consultation_id}"}
    if report is not None:
        if report.version > 1:
            resource["status"] = "amended"
        resource["issued"] = instant(report.created_at)
        if report.diagnosis_code:
            resource["conclusionCode"] = [{"coding": [{"system": ICD10,
                                                       "code": report.diagnosis_code,
                                                       "display": report.diagnosis_text}]}]
        # The signed PDF, at an address that checks the reader again. Attachment.hash is SHA-1 by definition;
        # the PDF's SHA-256, which the audit chain holds, is what /api/reports/{id}/verification checks.
        resource["presentedForm"] = [{"contentType": "application/pdf", "language": report.locale,
                                      "url": f"{site.url}/api/reports/{report.id}/pdf",
                                      "title": f"Consultation report, version {report.version}",
                                      "creation": instant(report.created_at)}]
    return resource


def binary(template: ConsentTemplate) -> dict[str, Any]:
    """A consent template's exact text, as agreed to (templates are never changed once published)."""
    return {"resourceType": "Binary", "id": str(template.id), "contentType": "text/markdown",
            "data": base64.b64encode(template.body.encode()).decode()}


def structure_definition(extension: Extension, site: Site) -> dict[str, Any]:
    """A minimal definition of one of our extensions, at the URL the extension carries."""
    url = site.extension(extension.name)
    return {
        "resourceType": "StructureDefinition", "id": extension.name, "url": url, "name": extension.name.title()
        .replace("-", ""), "title": extension.title, "status": "active", "description": extension.description,
        "fhirVersion": FHIR_VERSION, "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": extension.context}], "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Extension", "path": "Extension", "short": extension.title, "definition": extension.description,
             "max": "1"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1,
             "type": [{"code": extension.value_type}]},
        ]},
    }
