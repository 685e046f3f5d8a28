"""Demo data: a medical partnership with a provincial hospital, two county hospitals, clinicians and a consultation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from .db import Database
from .identity.passwords import hash_password
from .models import (
    Availability,
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
    Role,
    Sex,
    Specialty,
    User,
    utcnow,
)

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
# at seeding so the walk-through works; ``telemed users licence`` or the console shows an unverified one.
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
    async with database.session() as session:
        if (await session.exec(select(Hospital).where(Hospital.name == LEAD_HOSPITAL))).first():
            demo = (await session.exec(select(Consultation).where(Consultation.title == DEMO_TITLE)
                                       .order_by(col(Consultation.id)))).first()
            if demo is not None:
                demo.planned_start, demo.planned_end = demo_start(), None
                if demo.status in (ConsultationStatus.COMPLETED, ConsultationStatus.CANCELLED):
                    demo.status = ConsultationStatus.SCHEDULED
                session.add(demo)
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
        await session.commit()
    return True
