"""A crafted history for the supervision tests: referrals with events at known instants, consultations held
with and without recordings, consents given and missing, and a second partnership with its own supervisor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.identity.passwords import hash_password
from server.models import (
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    ConsultationStatus,
    Hospital,
    Partnership,
    PartnershipMember,
    PartnershipSupervisor,
    Patient,
    Recording,
    RecordingStatus,
    Referral,
    ReferralEvent,
    ReferralState,
    Role,
    Urgency,
    User,
)

H = timedelta(hours=1)
# Free text that must never leave the statistics: the reasons, summaries and opinions below carry it.
SECRET_TEXT = "胸闷三天 SECRET-REASON"
SECRET_NATIONAL_ID = "110101195803071234"


async def craft(client: TestClient) -> dict[str, int]:
    """Four referrals (March: A, B, D received at the provincial hospital; April, in Shanghai's clock: C,
    declined), two consultations held in March at Qingshan (one with two recordings, one with everyone's
    consent), and partnership 2 (Baihe alone) overseen by ``other.supervisor``."""
    async with client.app[DATABASE].session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        hospitals = {h.name.split()[0]: h.id for h in (await session.exec(select(Hospital))).all()}
        provincial, qingshan = hospitals["江南省人民医院"], hospitals["青山县人民医院"]
        baihe = hospitals["白河县中医院"]
        patient = Patient(hospital_id=qingshan, name="钱秘密 Qian Secret", phone="13900001111",
                          national_id_hash="x" * 64, national_id_last4=SECRET_NATIONAL_ID[-4:])
        other = Partnership(name="白河医联体 Baihe Partnership", lead_hospital_id=baihe)
        session.add_all([patient, other])
        await session.flush()
        second = User(username="other.supervisor", display_name="Other Commission", role=Role.SUPERVISOR,
                      password_hash=hash_password("telemed-demo"), hospital_id=baihe)
        session.add_all([PartnershipMember(partnership_id=other.id, hospital_id=baihe), second])
        await session.flush()
        session.add(PartnershipSupervisor(partnership_id=other.id, user_id=second.id))
        templates = {t.purpose: t.id for t in (await session.exec(select(ConsentTemplate))).all()}

        def referral(submitted: datetime, events: dict[str, float]) -> Referral:
            row = Referral(patient_id=patient.id, referring_doctor_id=users["dr.li"].id, referring_hospital_id=qingshan,
                           partnership_id=1, specialty_id=1, target_hospital_id=provincial, urgency=Urgency.ROUTINE,
                           reason=SECRET_TEXT, summary=SECRET_TEXT, opinion=SECRET_TEXT, state=ReferralState.SUBMITTED,
                           submitted_at=submitted)
            row._events = events  # type: ignore[attr-defined]
            return row

        march = datetime(2026, 3, 10, 2, tzinfo=UTC)
        crafted = {
            "A": referral(march, {"submit": 0, "accept": 2, "schedule": 10, "complete": 50}),
            "B": referral(march + 240 * H, {"submit": 0, "accept": 4, "schedule": 30}),
            # 17:00 UTC on 31 March is 01:00 on 1 April in Shanghai: an April referral
            "C": referral(datetime(2026, 3, 31, 17, tzinfo=UTC), {"submit": 0, "decline": 3}),
            "D": referral(march - 120 * H, {"submit": 0, "redirect": 1, "accept": 6}),
        }
        session.add_all(crafted.values())
        await session.flush()
        for row in crafted.values():
            for action, hours in row._events.items():  # type: ignore[attr-defined]
                session.add(ReferralEvent(referral_id=row.id, action=action, from_state="", to_state="",
                                          actor_id=users["dr.li"].id, at=row.submitted_at + hours * H,
                                          note=SECRET_TEXT))
        session.add(Consent(purpose=ConsentPurpose.RECORD_SHARING, template_id=templates[ConsentPurpose.RECORD_SHARING],
                            subject=ConsentSubject.PATIENT, identity=f"patient:{patient.id}", patient_id=patient.id,
                            name=patient.name, referral_id=crafted["A"].id, method=ConsentMethod.VERBAL))
        held = [Consultation(title=SECRET_TEXT, hospital_id=qingshan, patient_id=patient.id,
                             created_by=users["dr.li"].id, planned_start=datetime(2026, 3, day, 1, tzinfo=UTC),
                             status=status)
                for day, status in ((15, ConsultationStatus.COMPLETED), (16, ConsultationStatus.COMPLETED),
                                    (17, ConsultationStatus.SCHEDULED))]
        session.add_all(held)
        await session.flush()
        consents = [Consent(purpose=ConsentPurpose.RECORDING, template_id=templates[ConsentPurpose.RECORDING],
                            subject=subject, identity=identity, name=patient.name, consultation_id=held[0].id,
                            method=ConsentMethod.CLICKED)
                    for subject, identity in ((ConsentSubject.PATIENT, f"patient:{patient.id}"),
                                              (ConsentSubject.PARTICIPANT, f"user:{users['dr.li'].id}"))]
        session.add_all(consents)
        await session.flush()

        def people(*identities: str) -> str:
            return json.dumps([{"participant_id": i, "identity": i, "name": patient.name, "role": "x"}
                               for i in identities], ensure_ascii=False)

        everyone = people(f"patient:{patient.id}", f"user:{users['dr.li'].id}")
        session.add_all([
            Recording(consultation_id=held[0].id, file="a.webm", status=RecordingStatus.READY, started_by="user:1",
                      participants=everyone, consent_ids=json.dumps([c.id for c in consents])),
            Recording(consultation_id=held[0].id, file="b.webm", status=RecordingStatus.READY, started_by="user:1",
                      participants=people(f"user:{users['dr.li'].id}", f"user:{users['dr.wang'].id}"),
                      consent_ids=json.dumps([consents[1].id])),
            Recording(consultation_id=held[1].id, file="c.webm", status=RecordingStatus.FAILED, started_by="user:1",
                      participants=everyone, consent_ids="[]"),
        ])
        await session.commit()
        return {"patient": patient.id or 0, "provincial": provincial, "qingshan": qingshan, "baihe": baihe,
                "other": other.id or 0, **{k: r.id or 0 for k, r in crafted.items()}}
