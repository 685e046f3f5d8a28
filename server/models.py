"""Domain tables: hospitals, medical partnerships, departments, specialties, users, patients, consultations."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Named constraints, so later migrations can drop or alter them by name on every database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores UTC, always hands back an aware datetime (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous across hospitals' time zones; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum_cls: type[enum.Enum]) -> sa.Enum:
    # A VARCHAR, not a native PostgreSQL ENUM: adding a value later needs no ALTER TYPE migration.
    return sa.Enum(enum_cls, native_enum=False, length=24, values_callable=lambda e: [m.value for m in e],
                   validate_strings=True)


class HospitalLevel(enum.StrEnum):
    COUNTY = "county"
    SECONDARY = "secondary"
    TERTIARY = "tertiary"


class Role(enum.StrEnum):
    COUNTY_DOCTOR = "county_doctor"
    SPECIALIST = "specialist"
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    AUDITOR = "auditor"
    SUPERVISOR = "supervisor"  # a regional health commission's: statistics of the partnerships it oversees


class ConsultationStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ReferralAction(enum.StrEnum):
    SUBMIT = "submit"
    ACCEPT = "accept"
    DECLINE = "decline"
    REDIRECT = "redirect"
    SCHEDULE = "schedule"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"


class ReferralState(enum.StrEnum):
    """Where a referral stands; server/referrals/flow.py says how it moves."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REDIRECTED = "redirected"
    SCHEDULED = "scheduled"
    IN_CONSULTATION = "in_consultation"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Urgency(enum.StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class TitleWanted(enum.StrEnum):
    """The professional title a consultation request asks for (专业技术职称): any specialist, or at least this."""

    ANY = "any"
    ATTENDING = "attending"  # 主治医师
    ASSOCIATE_CHIEF = "associate_chief"  # 副主任医师
    CHIEF = "chief"  # 主任医师


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class ConsentPurpose(enum.StrEnum):
    """Each purpose is its own consent: health data is sensitive personal information (PIPL art. 29)."""

    VIDEO = "video"  # taking part in a video consultation
    RECORDING = "recording"  # being recorded in it
    RECORD_SHARING = "record_sharing"  # the patient's records going to the partner hospital


class ConsentMethod(enum.StrEnum):
    CLICKED = "clicked"  # by the person themself, on a page
    VERBAL = "verbal"  # said to a doctor, who recorded it on the person's behalf and is named


class ConsentSubject(enum.StrEnum):
    PATIENT = "patient"
    PARTICIPANT = "participant"  # a clinician or other participant, about themself


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class ProfessionalTitle(enum.StrEnum):
    """A clinician's professional title (职称), as their licence records it; ``none`` for other accounts."""

    NONE = "none"
    RESIDENT = "resident"  # 住院医师
    ATTENDING = "attending"  # 主治医师
    ASSOCIATE_CHIEF = "associate_chief"  # 副主任医师
    CHIEF = "chief"  # 主任医师


class Hospital(SQLModel, table=True):
    __tablename__ = "hospital"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    level: HospitalLevel = Field(sa_type=_enum(HospitalLevel))
    region: str = Field(max_length=200)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)


class Partnership(SQLModel, table=True):
    """A medical partnership (医联体): a lead hospital and the member hospitals it supports."""

    __tablename__ = "partnership"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    lead_hospital_id: int = Field(foreign_key="hospital.id", index=True)


class PartnershipMember(SQLModel, table=True):
    __tablename__ = "partnership_member"

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", primary_key=True)


class PartnershipSupervisor(SQLModel, table=True):
    """A supervisor account (a regional health commission's) overseeing a partnership: it sees that
    partnership's statistics (server/supervision/), never a patient."""

    __tablename__ = "partnership_supervisor"

    partnership_id: int = Field(foreign_key="partnership.id", primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", primary_key=True, index=True)


class Specialty(SQLModel, table=True):
    __tablename__ = "specialty"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    # length of one appointment with a specialist of this specialty
    slot_minutes: int = Field(default=30, sa_column_kwargs={"server_default": "30"})


class Department(SQLModel, table=True):
    __tablename__ = "department"
    __table_args__ = (sa.UniqueConstraint("hospital_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    name: str = Field(max_length=200)
    specialty_id: int | None = Field(default=None, foreign_key="specialty.id")


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=255)
    role: Role = Field(sa_type=_enum(Role))
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    specialty_id: int | None = Field(default=None, foreign_key="specialty.id")
    locale: str | None = Field(default=None, max_length=16)
    calendar_nonce: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})  # rotates feeds
    is_active: bool = Field(default=True)
    # Bumped when the account is disabled or its password reset: a token carries the generation it was issued
    # in, and one from an earlier generation no longer works (server/identity/auth.py).
    session_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Set by an administrator's create or reset (the password is temporary, known to them): until the user
    # sets their own, every page leads to the change-password page and the API answers 403.
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # A clinician's practising licence (医师执业证书编码) and title, as an administrator entered them; until an
    # administrator verifies them (who and when, kept here and in the audit trail) the clinician cannot host a
    # consultation, be booked or sign a report (server/permissions.py). Changing either clears the verification.
    licence_number: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    professional_title: ProfessionalTitle = Field(default=ProfessionalTitle.NONE, sa_type=_enum(ProfessionalTitle),
                                                  sa_column_kwargs={"server_default": ProfessionalTitle.NONE.value})
    licence_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    licence_verified_by: int | None = Field(default=None, foreign_key="user_account.id")
    # Counts the changes to what the account lets its clinician do in a consultation's room (host or not:
    # role, licence verified), raised in the same UPDATE as the change: a room told of two changes in the
    # other order, or of one late, keeps the later (signaling ``Regranting.revision``).
    grants_revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def licence_verified(self) -> bool:
        return self.licence_verified_at is not None


class Patient(SQLModel, table=True):
    """A patient's record. Patients are not user accounts: they join visits through invitations."""

    __tablename__ = "patient"

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    name: str = Field(max_length=100)
    sex: Sex = Field(default=Sex.UNKNOWN, sa_type=_enum(Sex))
    birth_year: int | None = Field(default=None)
    phone: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    # The national ID is never stored: a keyed hash to match it (server/patients/records.py), and its last four
    # characters for people to tell two records apart.
    national_id_hash: str | None = Field(default=None, max_length=64, index=True)
    national_id_last4: str = Field(default="", max_length=4, sa_column_kwargs={"server_default": ""})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consultation(SQLModel, table=True):
    __tablename__ = "consultation"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    planned_start: datetime = Field(sa_type=UTCDateTime)
    planned_end: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the booked slot's end, if booked
    status: ConsultationStatus = Field(default=ConsultationStatus.SCHEDULED, sa_type=_enum(ConsultationStatus))
    created_by: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsultationParticipant(SQLModel, table=True):
    __tablename__ = "consultation_participant"

    consultation_id: int = Field(foreign_key="consultation.id", primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", primary_key=True, index=True)


class RevokedToken(SQLModel, table=True):
    """Access tokens ended by logout before their expiry; rows are pruned once the token would have expired."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ChatLine(SQLModel, table=True):
    """A line of a consultation's chat, kept with the consultation in the order everyone saw it."""

    __tablename__ = "chat_line"
    __table_args__ = (sa.UniqueConstraint("consultation_id", "session", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    session: str = Field(max_length=64)  # one run of the room, from its first joiner to its emptying
    seq: int  # position in that run's log: the order every participant saw
    participant_id: str = Field(max_length=64)
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    name: str = Field(max_length=100)
    text: str = Field(max_length=2000)
    sent_at: datetime = Field(sa_type=UTCDateTime)


class ConsentTemplate(SQLModel, table=True):
    """The text a consent was given to: one per purpose, version and language, never changed once published
    (server/consent/templates.py publishes the files under server/consent/texts)."""

    __tablename__ = "consent_template"
    __table_args__ = (sa.UniqueConstraint("purpose", "version", "locale"),)

    id: int | None = Field(default=None, primary_key=True)
    purpose: ConsentPurpose = Field(sa_type=_enum(ConsentPurpose))
    version: int
    locale: str = Field(max_length=16)
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    sha256: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """One consent for one purpose, given by one person, kept for good: withdrawing stamps it, and giving
    again makes a new row, so what any recording or sharing relied on stays on record."""

    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    purpose: ConsentPurpose = Field(sa_type=_enum(ConsentPurpose), index=True)
    template_id: int = Field(foreign_key="consent_template.id")
    subject: ConsentSubject = Field(sa_type=_enum(ConsentSubject))
    identity: str = Field(max_length=80)  # user:<id>, guest:<id> or patient:<id>, as in room tokens
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    name: str = Field(max_length=100)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    referral_id: int | None = Field(default=None, foreign_key="referral.id", index=True)
    method: ConsentMethod = Field(sa_type=_enum(ConsentMethod))
    recorded_by: int | None = Field(default=None, foreign_key="user_account.id")  # the doctor, for a verbal one
    given_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_by: str = Field(default="", max_length=80)  # identity
    # While the record stands, what makes it this consent (rules.standing_key: purpose, person, scope); None
    # once withdrawn. Unique, so two gives at once cannot leave the same consent standing twice.
    standing_key: str | None = Field(default=None, max_length=160, unique=True, index=True)


class PatientInvitation(SQLModel, table=True):
    """A link for one patient into one consultation. The link is signed and expires; this row lets a
    clinician revoke it before then, and says who sent it."""

    __tablename__ = "patient_invitation"

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    patient_id: int = Field(foreign_key="patient.id")
    created_by: int = Field(foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: int | None = Field(default=None, foreign_key="user_account.id")
    # Wrong answers to the identity check before consent (server/patients/identity_check.py), counted in the
    # row by ``UPDATE ... SET n = n + 1`` so that concurrent tries cannot lose one; at the limit the link locks.
    failed_identity_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DataKey(SQLModel, table=True):
    """One file's own AES-256 key, sealed under the deployment's recording key. Deleting the row makes the
    file unreadable for good, and every copy of it in a backup too ("crypto-shredding")."""

    __tablename__ = "data_key"

    id: int | None = Field(default=None, primary_key=True)
    wrapped: str = Field(max_length=200)  # hex: nonce, then the sealed key and its tag
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LegalHold(SQLModel, table=True):
    """Keeps a patient's or a consultation's files past their retention until it is released."""

    __tablename__ = "legal_hold"
    __table_args__ = (sa.CheckConstraint("(patient_id IS NULL) <> (consultation_id IS NULL)", name="one_subject"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id", index=True)
    reason: str = Field(max_length=500)
    placed_by: int = Field(foreign_key="user_account.id")
    placed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    released_by: int | None = Field(default=None, foreign_key="user_account.id")
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    release_reason: str | None = Field(default=None, max_length=500)


class JobLease(SQLModel, table=True):
    """Which node runs a scheduled job now, until when: one node at a time, whatever the database."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class Attachment(SQLModel, table=True):
    """A test result or image sent with a referral, sealed on disk beside the recordings."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    file: str = Field(max_length=200)  # under the recordings directory
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by: int = Field(foreign_key="user_account.id")
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The file's own key (None: sealed under the deployment's recording key, as before per-file keys).
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # its retention ran out: file gone


class RecordingStatus(enum.StrEnum):
    RECORDING = "recording"
    READY = "ready"
    INTERRUPTED = "interrupted"  # the server stopped mid-recording; what was flushed was kept
    FAILED = "failed"


class Recording(SQLModel, table=True):
    """One recorded segment of a consultation: a sealed WebM file with everyone's tracks."""

    __tablename__ = "recording"

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True)
    file: str = Field(max_length=200)  # under the recordings directory
    status: RecordingStatus = Field(default=RecordingStatus.RECORDING, sa_type=_enum(RecordingStatus))
    started_by: str = Field(max_length=80)  # identity
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration: float | None = None
    size: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    tracks: str = Field(default="[]", sa_type=sa.Text)  # JSON: participant, kind, codec
    participants: str = Field(default="[]", sa_type=sa.Text)  # JSON: identity, name, role
    consent_ids: str = Field(default="[]", sa_type=sa.Text)  # JSON: the recording Consent rows relied on
    # The file's own key (None: sealed under the deployment's recording key, as before per-file keys).
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # its retention ran out: file gone
    # The node run (the hub's node id) writing it while it is recording, or finishing it after that node was
    # lost; None for recordings made before nodes were named here.
    node: str | None = Field(default=None, max_length=120)


class AuditEvent(SQLModel, table=True):
    """One entry of the audit trail. Each entry's hash covers the previous one's, so altering or removing
    an entry breaks the chain from there on (server/audit/trail.py checks it)."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=80)  # identity
    action: str = Field(max_length=60)
    consultation_id: int | None = Field(default=None, index=True)
    subject: str = Field(default="", max_length=120)
    detail: str = Field(default="{}", sa_type=sa.Text)
    prev_hash: str = Field(max_length=64, unique=True)  # unique: two writers racing cannot both extend the chain
    hash: str = Field(max_length=64)


class Referral(SQLModel, table=True):
    """A county doctor's request for a specialist's opinion on a patient, across the partnership."""

    __tablename__ = "referral"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    referring_doctor_id: int = Field(foreign_key="user_account.id", index=True)
    referring_hospital_id: int = Field(foreign_key="hospital.id")
    partnership_id: int = Field(foreign_key="partnership.id")
    specialty_id: int = Field(foreign_key="specialty.id")
    target_hospital_id: int = Field(foreign_key="hospital.id", index=True)
    target_specialist_id: int | None = Field(default=None, foreign_key="user_account.id")
    urgency: Urgency = Field(sa_type=_enum(Urgency))
    reason: str = Field(max_length=500)
    summary: str = Field(default="", sa_type=sa.Text)
    # The consultation request (会诊申请单): what the specialist is asked, and what the asker knows so far.
    # Server defaults keep rows from before the request form valid (empty, and any title).
    question: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    working_diagnosis: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})
    diagnosis_code: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})  # ICD-10, if any
    history: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    results: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    title_wanted: TitleWanted = Field(default=TitleWanted.ANY, sa_type=_enum(TitleWanted),
                                      sa_column_kwargs={"server_default": "any"})
    state: ReferralState = Field(default=ReferralState.DRAFT, sa_type=_enum(ReferralState), index=True)
    decline_reason: str = Field(default="", max_length=1000)
    cancel_reason: str = Field(default="", max_length=1000)
    opinion: str = Field(default="", sa_type=sa.Text)  # the specialist's, back to the referring doctor
    recommendations: str = Field(default="", sa_type=sa.Text)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = Field(default=0)  # bumped by every transition: two racing transitions cannot both land


class ReferralEvent(SQLModel, table=True):
    """One transition of a referral: who moved it, from where to where, when, and why."""

    __tablename__ = "referral_event"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    action: str = Field(max_length=24)
    from_state: str = Field(max_length=24)
    to_state: str = Field(max_length=24)
    actor_id: int = Field(foreign_key="user_account.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    note: str = Field(default="", max_length=1000)


class Availability(SQLModel, table=True):
    """A specialist's weekly recurring hours, in their hospital's time zone."""

    __tablename__ = "availability"

    id: int | None = Field(default=None, primary_key=True)
    specialist_id: int = Field(foreign_key="user_account.id", index=True)
    weekday: int  # 0 Monday ... 6 Sunday
    start_minute: int  # minutes after local midnight
    end_minute: int


class AvailabilityException(SQLModel, table=True):
    """A one-off change on one local day: time off (available false) or extra hours (available true)."""

    __tablename__ = "availability_exception"

    id: int | None = Field(default=None, primary_key=True)
    specialist_id: int = Field(foreign_key="user_account.id", index=True)
    day: date
    start_minute: int = 0
    end_minute: int = 24 * 60
    available: bool = False
    note: str = Field(default="", max_length=200)


class Appointment(SQLModel, table=True):
    """A booked slot with a specialist for a referral. At most one live booking per specialist and start:
    the partial unique index makes double booking impossible, however many requests race."""

    __tablename__ = "appointment"
    __table_args__ = (
        sa.Index("uq_appointment_booked_slot", "specialist_id", "starts_at", unique=True,
                 sqlite_where=sa.text("status = 'booked'"), postgresql_where=sa.text("status = 'booked'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    specialist_id: int = Field(foreign_key="user_account.id")
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    status: AppointmentStatus = Field(default=AppointmentStatus.BOOKED, sa_type=_enum(AppointmentStatus))
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id")
    booked_by: int = Field(foreign_key="user_account.id")
    booked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancel_reason: str = Field(default="", max_length=1000)
    reminded: bool = False


class Notification(SQLModel, table=True):
    """A line on a user's dashboard: a referral moved, an appointment was booked, moved or is near."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    kind: str = Field(default="", max_length=40)  # a key of server.notices.KINDS; "" in rows from before kinds
    params: str = Field(default="{}", max_length=2000)  # the kind's facts, as JSON
    text: str = Field(max_length=500)  # in English with UTC times, for rows without a kind
    link: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyKey(SQLModel, table=True):
    """A key a caller sent with a creating request, what the request was, and the answer it got: written in
    the same transaction as what the request created, kept 24 hours (server/idempotency.py)."""

    __tablename__ = "idempotency_key"

    owner: str = Field(primary_key=True, max_length=40)  # whose keys: user:<id>, or invitation:<id> for a patient
    key: str = Field(primary_key=True, max_length=128)
    fingerprint: str = Field(max_length=64)  # SHA-256 of the method, the path and the body
    status: int = 0  # the answer's, put by the operation's commit
    body: str = Field(default="", sa_type=sa.Text)  # the answer's JSON, as sent
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ConsultationReport(SQLModel, table=True):
    """One signed version of the specialist's consultation report (会诊报告) on a referral. An amendment is a
    new row that ``supersedes`` the one before; no version is ever changed or removed. The signed PDF is
    sealed on disk (``file``, under the recordings directory, like attachments); its SHA-256 is here and in
    the audit trail, so a copy can be checked against what was issued. When the records' retention ends the
    purge deletes the PDFs and their key; the row (what was found, diagnosed and recommended, and the hash)
    stays, like the audit trail."""

    __tablename__ = "consultation_report"
    __table_args__ = (sa.UniqueConstraint("referral_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", index=True)
    consultation_id: int | None = Field(default=None, foreign_key="consultation.id")
    version: int = Field(default=1)
    author_id: int = Field(foreign_key="user_account.id")  # the specialist who signed it
    findings: str = Field(sa_type=sa.Text)
    diagnosis_code: str = Field(max_length=16)
    diagnosis_text: str = Field(max_length=300)
    recommendations: str = Field(default="", sa_type=sa.Text)
    locale: str = Field(max_length=16)  # the language the PDF was rendered in
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    file: str = Field(max_length=200)  # the signed PDF, sealed, under the recordings directory
    pdf_sha256: str = Field(max_length=64, index=True)
    # The key this version's PDFs (record copy and renditions) are sealed under; deleted with them by the purge
    # when the records' retention ends (server/retention), so a backup of the files cannot be read either.
    data_key_id: int | None = Field(default=None, foreign_key="data_key.id")
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signer_subject: str = Field(max_length=300)  # the signing certificate's subject, as the PDF's signature says
    acknowledged_by: int | None = Field(default=None, foreign_key="user_account.id")
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    supersedes_id: int | None = Field(default=None, foreign_key="consultation_report.id")


class ReportRendition(SQLModel, table=True):
    """A report version in another language than its record copy (``ConsultationReport.file``, in the requesting
    hospital's language): the same facts, rendered and signed at the same time, for a reader of that language."""

    __tablename__ = "consultation_report_rendition"
    __table_args__ = (sa.UniqueConstraint("report_id", "locale"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="consultation_report.id", index=True)
    locale: str = Field(max_length=16)
    file: str = Field(max_length=200)
    pdf_sha256: str = Field(max_length=64, index=True)


class Icd10Code(SQLModel, table=True):
    """One diagnosis of the ICD-10 code list a report's diagnosis is picked from: the packaged WHO list, or
    the hospital's own (`telemed icd10 load`, e.g. the national edition GB/T 14396)."""

    __tablename__ = "icd10_code"

    code: str = Field(primary_key=True, max_length=16)
    title_en: str = Field(default="", max_length=300)
    title_zh: str = Field(default="", max_length=300)
