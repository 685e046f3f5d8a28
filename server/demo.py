"""Demo data: a medical partnership with a provincial hospital, two county hospitals, clinicians and a consultation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .audit import trail as audit
from .consent import templates as consent_templates
from .consent.rules import Consenter, How, Scope, given_entry, new_record, patient_identity
from .db import Database
from .identity.passwords import hash_password
from .models import (
    Availability,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    Consultation,
    ConsultationParticipant,
    ConsultationStatus,
    Department,
    Hospital,
    HospitalLevel,
    Partnership,
    PartnershipMember,
    PartnershipSupervisor,
    Patient,
    ProfessionalTitle,
    Referral,
    Role,
    Sex,
    Specialty,
    User,
    utcnow,
)
from .permissions import Principal
from .referrals import service as referrals
from .referrals.inputs import ReferralCreate

DEMO_PASSWORD = "telemed-demo"  # noqa: S105  (printed at start: it guards demo data only)
LEAD_HOSPITAL = "江南省人民医院 Jiangnan Provincial People's Hospital"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    display_name: str


DEMO_USERS = (
    # username, display name, role, hospital key, department key
    ("dr.li", "李明 Li Ming", Role.COUNTY_DOCTOR, "qingshan", "qs-internal"),
    ("dr.wang", "王芳 Wang Fang", Role.SPECIALIST, "provincial", "cardiology"),
    ("dr.chen", "陈刚 Chen Gang", Role.COUNTY_DOCTOR, "baihe", None),
    ("coord.zhao", "赵丽 Zhao Li", Role.COORDINATOR, "provincial", None),
    ("admin", "系统管理员 Administrator", Role.ADMIN, "provincial", None),
    ("auditor", "审计员 Auditor", Role.AUDITOR, "provincial", None),
    ("dr.zhou", "周杰 Zhou Jie", Role.SPECIALIST, "provincial", "cardiology"),
    ("dr.he", "何静 He Jing", Role.SPECIALIST, "provincial", "neurology"),
    ("supervisor", "省卫健委 Provincial Health Commission", Role.SUPERVISOR, "provincial", None),
)


# The clinicians' practising licences (医师执业证书编码, 15 digits) and titles, verified by the demo's administrator
# at seeding so the walk-through works; ``telemed user licence`` or the console shows an unverified one.
DEMO_LICENCES = {
    "dr.li": ("141330000101234", ProfessionalTitle.ATTENDING),
    "dr.wang": ("110320000205678", ProfessionalTitle.CHIEF),
    "dr.chen": ("141330000309012", ProfessionalTitle.RESIDENT),
    "dr.zhou": ("110320000403456", ProfessionalTitle.ASSOCIATE_CHIEF),
    "dr.he": ("110320000507890", ProfessionalTitle.ATTENDING),
}


def demo_logins() -> list[DemoLogin]:
    return [DemoLogin(username, role, name) for username, name, role, _, _ in DEMO_USERS]


DEMO_TITLE = "胸痛随访会诊 Chest pain follow-up"


def demo_start() -> datetime:
    """When the demo consultation is planned: a few minutes from now, so its room is open now (it opens
    TELEMED_ROOM_OPENS_MINUTES_BEFORE the start) and stays open for the walk-through."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)


async def seed_demo(database: Database) -> bool:
    """Add the demo partnership unless it is already there, and plan the demo consultation for now, so
    README's walk-through works on any day the demo is started. Returns True if it seeded anything."""
    await consent_templates.publish(database)  # the demo patient's consent to sharing names its text
    async with database.session() as session:
        if (await session.exec(select(Hospital).where(Hospital.name == LEAD_HOSPITAL))).first():
            demo = (await session.exec(select(Consultation).where(Consultation.title == DEMO_TITLE)
                                       .order_by(col(Consultation.id)))).first()
            if demo is not None:
                demo.planned_start, demo.planned_end = demo_start(), None
                if demo.status in (ConsultationStatus.COMPLETED, ConsultationStatus.CANCELLED):
                    demo.status = ConsultationStatus.SCHEDULED
                session.add(demo)
                await _share_demo_consultation(session, demo)  # (a demo seeded before consultations took one)
                await session.commit()
            return False
        specialties = {
            code: Specialty(code=code, name_zh=zh, name_en=en)
            for code, zh, en in [
                ("cardiology", "心血管内科", "Cardiology"),
                ("neurology", "神经内科", "Neurology"),
                ("endocrinology", "内分泌科", "Endocrinology"),
                ("radiology", "放射科", "Radiology"),
            ]
        }
        hospitals = {
            "provincial": Hospital(name=LEAD_HOSPITAL, level=HospitalLevel.TERTIARY, region="江南省 Jiangnan"),
            "qingshan": Hospital(name="青山县人民医院 Qingshan County People's Hospital",
                                 level=HospitalLevel.COUNTY, region="江南省青山县 Qingshan County"),
            "baihe": Hospital(name="白河县中医院 Baihe County TCM Hospital", level=HospitalLevel.COUNTY,
                              region="江南省白河县 Baihe County"),
        }
        session.add_all([*specialties.values(), *hospitals.values()])
        await session.flush()

        partnership = Partnership(name="江南省人民医院医联体 Jiangnan Provincial Partnership",
                                  lead_hospital_id=hospitals["provincial"].id)
        session.add(partnership)
        await session.flush()
        session.add_all([PartnershipMember(partnership_id=partnership.id, hospital_id=h.id)
                         for h in hospitals.values()])

        departments = {
            "cardiology": Department(hospital_id=hospitals["provincial"].id, name="心血管内科 Cardiology",
                                     specialty_id=specialties["cardiology"].id),
            "neurology": Department(hospital_id=hospitals["provincial"].id, name="神经内科 Neurology",
                                    specialty_id=specialties["neurology"].id),
            "qs-internal": Department(hospital_id=hospitals["qingshan"].id, name="内科 Internal Medicine"),
        }
        session.add_all(departments.values())
        await session.flush()

        password_hash = hash_password(DEMO_PASSWORD)
        users = {}
        for username, name, role, hospital, department in DEMO_USERS:
            dept = departments.get(department) if department else None
            users[username] = User(
                username=username, display_name=name, role=role, password_hash=password_hash,
                hospital_id=hospitals[hospital].id, department_id=dept.id if dept else None,
                specialty_id=dept.specialty_id if dept else None,
            )
        session.add_all(users.values())
        await session.flush()
        for username, (number, title) in DEMO_LICENCES.items():
            users[username].licence_number, users[username].professional_title = number, title
            users[username].licence_verified_at, users[username].licence_verified_by = utcnow(), users["admin"].id
        session.add(PartnershipSupervisor(partnership_id=partnership.id, user_id=users["supervisor"].id))
        patient = Patient(hospital_id=hospitals["qingshan"].id, name="张伟 Zhang Wei", sex=Sex.MALE,
                          birth_year=1958)
        session.add(patient)
        await session.flush()

        consultation = Consultation(
            title=DEMO_TITLE, hospital_id=hospitals["qingshan"].id, patient_id=patient.id, planned_start=demo_start(),
            created_by=users["dr.li"].id,
        )
        session.add(consultation)
        # Specialists' clinic hours, in their hospital's zone: mornings and afternoons, Monday to Saturday.
        for name in ("dr.wang", "dr.zhou", "dr.he"):
            session.add_all([Availability(specialist_id=users[name].id, weekday=day, start_minute=start, end_minute=end)
                             for day in range(6) for start, end in ((8 * 60, 12 * 60), (14 * 60, 18 * 60))])
        await session.flush()
        session.add_all([
            ConsultationParticipant(consultation_id=consultation.id, user_id=users[name].id)
            for name in ("dr.li", "dr.wang")
        ])
        await _share_demo_consultation(session, consultation)
        await session.commit()
    return True


async def _share_demo_consultation(session: AsyncSession, consultation: Consultation) -> None:
    """The demo patient agreed, to dr.li who set it up, to their record being shared with dr.wang's hospital for
    the demo consultation, so dr.wang sees who it is for: the consent, unless one was ever recorded (a withdrawal
    made in the demo stands, and the trail is not given a consent dr.li never recorded)."""
    assert consultation.id is not None and consultation.patient_id is not None
    if (await session.exec(select(Consent.id).where(
            Consent.consultation_id == consultation.id, Consent.purpose == ConsentPurpose.RECORD_SHARING))).first():
        return
    patient = await session.get(Patient, consultation.patient_id)
    assert patient is not None and patient.id is not None
    sharing = await consent_templates.current(session, ConsentPurpose.RECORD_SHARING, "zh-CN")
    consent = new_record(sharing, Consenter(ConsentSubject.PATIENT, patient_identity(patient.id), patient.name,
                                            patient_id=patient.id), Scope(consultation_id=consultation.id),
                         How(ConsentMethod.VERBAL, consultation.created_by))
    session.add(consent)
    audit.with_commit(session, lambda: given_entry(consent, sharing))  # on the trail, as every consent given


# The demo's referrals from dr.li at Qingshan to the provincial hospital, each with its consultation request
# (会诊申请单) written as a county doctor would: one sent, with the patient's consent to sharing, and one draft.
DEMO_REFERRALS = (
    {"specialty": "cardiology", "urgency": "urgent", "specialist": "dr.wang", "submit": True,
     "reason": "活动后胸痛反复发作三天",
     "question": "请协助明确胸痛原因：是否为不稳定型心绞痛？是否需要转上级医院行冠脉造影，还是可在县医院继续药物治疗？",
     "working_diagnosis": "不稳定型心绞痛？高血压病2级（很高危）", "diagnosis_code": "I20.0",
     "history": "高血压病史10年，规律服用氨氯地平5 mg 每日一次，血压控制欠佳（150/95 mmHg左右）。吸烟40年，每日20支。"
                "父亲60岁时患急性心肌梗死。否认糖尿病史。",
     "results": "心电图（12月3日）：窦性心律，V4–V6导联ST段压低0.1 mV。\n肌钙蛋白I：0.02 ng/mL（正常范围）。\n"
                "血脂：LDL-C 4.1 mmol/L。\n心脏超声：左室射血分数58%，未见节段性室壁运动异常。",
     "summary": "68岁男性，3天前活动后出现胸骨后压榨样疼痛，持续约5分钟，休息后缓解，共发作4次。"
                "查体：血压152/96 mmHg，心率78次/分，心肺听诊未见明显异常。",
     "title_wanted": "associate_chief"},
    {"specialty": "neurology", "urgency": "routine", "specialist": None, "submit": False,
     "reason": "反复头晕一个月", "question": "", "working_diagnosis": "后循环缺血？", "diagnosis_code": "",
     "history": "头晕多在转头时出现，无耳鸣及听力下降。高血压病史10年。",
     "results": "头颅CT（11月28日）：未见明显异常。颈椎X线：C5–C6椎间隙变窄。", "summary": "",
     "title_wanted": "chief"},
)


async def seed_demo_referrals(database: Database) -> bool:
    """Add the demo's referrals (through the referral service, audited, as a doctor would) unless the demo
    patient already has some. Returns True if it added them."""
    await consent_templates.publish(database)
    async with database.session() as session:
        patient = (await session.exec(select(Patient).where(Patient.name == "张伟 Zhang Wei"))).first()
        lead = (await session.exec(select(Hospital).where(Hospital.name == LEAD_HOSPITAL))).first()
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        if patient is None or lead is None or "dr.li" not in users or (await session.exec(
                select(Referral).where(Referral.patient_id == patient.id))).first() is not None:
            return False
        doctor = users["dr.li"]
    assert doctor.id is not None
    who = Principal(doctor.id, doctor.role, doctor.hospital_id)
    for demo in DEMO_REFERRALS:
        specialist = users[demo["specialist"]].id if demo["specialist"] else None
        body = ReferralCreate.model_validate({
            **{k: v for k, v in demo.items() if k != "specialist"}, "patient_id": patient.id,
            "target_hospital_id": lead.id, "target_specialist_id": specialist,
            "sharing_consent": "verbal" if demo["submit"] else None})
        async with database.session() as session:
            await referrals.refer(session, who, body, locale="zh-CN", how=How(ConsentMethod.VERBAL, doctor.id))
    return True
