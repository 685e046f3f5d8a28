"""FHIR R4 (4.0.1) JSON for what other hospital systems ask of us: a referral as a ServiceRequest, its
appointment as an Appointment (with the video details), a consent as a Consent, and a finished
consultation as an Encounter of class virtual. Pure: the caller loads the rows and authorizes.

Resource ids are ours (``referral-3``); references point within this server's FHIR space
(``Patient/1``, ``Practitioner/2``, ``Organization/1``). R4 has no Appointment.virtualService, so the
video details ride in R5's element through the standard cross-version extension.
"""

from __future__ import annotations

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
    ConsultationStatus,
    Hospital,
    Patient,
    Referral,
    ReferralState,
    Specialty,
    Urgency,
    User,
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
IDENTIFIER_SYSTEM = "urn:telemed:"  # + kind: our own ids, as identifiers other systems can match
VIRTUAL_SERVICE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Appointment.virtualService"
CONSENT_METHOD = "urn:telemed:fhir:consent-method"
CONSENT_RECORDED_BY = "urn:telemed:fhir:consent-recorded-by"

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


def _identifier(kind: str, number: int | None) -> list[dict[str, Any]]:
    return [{"system": f"{IDENTIFIER_SYSTEM}{kind}", "value": str(number)}]


@dataclass(frozen=True)
class ReferralRecord:
    referral: Referral
    patient: Patient
    specialty: Specialty
    referrer: User
    target: Hospital
    target_specialist: User | None


def service_request(record: ReferralRecord) -> dict[str, Any]:
    r = record.referral
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": f"referral-{r.id}",
        "identifier": _identifier("referral", r.id),
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
    notes = [text for text in (r.summary, r.opinion and f"Opinion: {r.opinion}",
                               r.recommendations and f"Recommendations: {r.recommendations}") if text]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def appointment(row: Appointment, record: ReferralRecord, specialist: User, room_url: str) -> dict[str, Any]:
    status = {AppointmentStatus.BOOKED: "booked", AppointmentStatus.CANCELLED: "cancelled"}[row.status]
    if row.status is AppointmentStatus.BOOKED and record.referral.state is ReferralState.COMPLETED:
        status = "fulfilled"
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": f"appointment-{row.id}",
        "identifier": _identifier("appointment", row.id),
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
        "basedOn": [{"reference": f"ServiceRequest/referral-{record.referral.id}"}],
        "participant": [
            {"actor": patient_ref(record.patient), "required": "required", "status": "accepted"},
            {"actor": practitioner(specialist), "required": "required", "status": "accepted"},
            {"actor": practitioner(record.referrer), "required": "required", "status": "accepted"},
        ],
        "extension": [{"url": VIRTUAL_SERVICE, "extension": [
            {"url": "channelType", "valueCoding": {"system": "urn:telemed:virtual-service", "code": "webrtc",
                                                   "display": "Telemed video room (WebRTC)"}},
            {"url": "addressUrl", "valueUrl": room_url},
            {"url": "sessionKey", "valueString": f"consultation:{row.consultation_id}"},
            {"url": "maxParticipants", "valuePositiveInt": 8},
        ]}],
    }
    if row.status is AppointmentStatus.CANCELLED and row.cancel_reason:
        resource["cancelationReason"] = {"text": row.cancel_reason}
    return resource


def consent(row: Consent, template: ConsentTemplate, patient: Patient | None, recorded_by: User | None,
            text_url: str) -> dict[str, Any]:
    scope_code, scope_display = CONSENT_SCOPE[row.purpose]
    period: dict[str, Any] = {"start": instant(row.given_at)}
    if row.withdrawn_at:
        period["end"] = instant(row.withdrawn_at)
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": f"consent-{row.id}",
        "identifier": _identifier("consent", row.id),
        "status": "inactive" if row.withdrawn_at else "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": scope_code,
                              "display": scope_display}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "dateTime": instant(row.given_at),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN", "display": "opt-in"}]},
        "sourceAttachment": {"contentType": "text/markdown", "language": template.locale.replace("_", "-"),
                             "url": text_url, "title": f"{template.title} (v{template.version})"},
        "provision": {"type": "permit", "period": period, "action": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": CONSENT_ACTION[row.purpose]}]}]},
        "extension": [{"url": CONSENT_METHOD, "valueCode": row.method.value}],
    }
    if patient is not None:
        resource["patient"] = patient_ref(patient)
        resource["performer"] = [patient_ref(patient)]
    if row.method is ConsentMethod.VERBAL and recorded_by is not None:
        resource["extension"].append({"url": CONSENT_RECORDED_BY, "valueReference": practitioner(recorded_by)})
        resource["verification"] = [{"verified": True, "verificationDate": instant(row.given_at),
                                     **({"verifiedWith": patient_ref(patient)} if patient else {})}]
    data = []
    if row.referral_id is not None:
        data.append({"meaning": "related", "reference": {"reference": f"ServiceRequest/referral-{row.referral_id}"}})
    if row.consultation_id is not None:
        data.append({"meaning": "related", "reference": {"reference": f"Encounter/consultation-{row.consultation_id}"}})
    if data:
        resource["provision"]["data"] = data
    return resource


def encounter(consultation: Consultation, hospital: Hospital, patient: Patient | None, participants: list[User],
              referral: Referral | None, started: datetime | None, ended: datetime | None,
              *, title: str | None) -> dict[str, Any]:
    """``patient``, ``referral`` and ``title`` as the reader may see them (None where withheld)."""
    period = {"start": instant(started or consultation.planned_start)}
    if ended is not None:
        period["end"] = instant(ended)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": f"consultation-{consultation.id}",
        "identifier": _identifier("consultation", consultation.id),
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
        resource["basedOn"] = [{"reference": f"ServiceRequest/referral-{referral.id}"}]
        resource["reasonCode"] = [{"text": referral.reason}]
    return resource
