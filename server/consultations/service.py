"""Consultation records: loading them with what the permission rules need, listing, creating."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import zones
from ..audit import trail as audit
from ..consent import templates as consent_templates
from ..consent.rules import Consenter, How, Scope, given_entry, new_record, patient_identity
from ..errors import N_, NotFound, ValidationFailed
from ..models import (
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    Consultation,
    ConsultationParticipant,
    ConsultationStatus,
    Hospital,
    Partnership,
    PartnershipMember,
    Patient,
    Referral,
    Role,
    User,
    utcnow,
)
from ..outputs import Instant, Named, Out
from ..paging import LIKE_ESCAPE, Page, PageShown, like_pattern, offset
from ..patients import disclosure
from ..permissions import (
    ConsultationScope,
    Principal,
    can_add_participant,
    can_create_consultation,
    can_list_consultations,
    can_speak_for_patient,
    joins_what_they_plan,
    require,
)
from ..settings import DEFAULT_TIMEZONE
from .inputs import ConsultationSearch, NewConsultation

PAGE_SIZE = 20


class ParticipantShown(Out):
    id: int
    display_name: str
    role: Role
    hospital_id: int


class ConsultationShown(Out):
    """A consultation: ``title`` null and ``patient`` left out where the patient's records are withheld from
    the caller (``records_withheld``); ``patient`` is left out too for a consultation without one."""

    id: int
    title: str | None
    records_withheld: bool
    status: ConsultationStatus
    planned_start: Instant
    planned_end: Instant | None
    hospital: Named
    participants: list[ParticipantShown]
    patient: Named | None = None

    @pydantic.model_serializer(mode="wrap")
    def _patient_if_any(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        shown: dict[str, Any] = handler(self)
        if shown.get("patient") is None:
            shown.pop("patient", None)
        return shown


class ConsultationPage(PageShown):
    consultations: list[ConsultationShown]


@dataclass(frozen=True)
class ConsultationView:
    """A consultation with its participants and hospital, ready to show or to check permissions on."""

    consultation: Consultation
    hospital: Hospital
    participants: tuple[User, ...]
    patient: Patient | None
    # The patient's record is not shared with the caller's hospital (``disclosed``): booked for a referral whose
    # patient has not (or no longer) consented to sharing their records with it, or set up without one and no
    # consent given for it. No patient, and no title (it names the patient, or was taken from the reason).
    withheld: bool = False

    @property
    def title(self) -> str | None:
        return None if self.withheld else self.consultation.title

    @property
    def scope(self) -> ConsultationScope:
        assert self.consultation.id is not None
        return ConsultationScope(
            consultation_id=self.consultation.id,
            hospital_id=self.consultation.hospital_id,
            participant_ids=frozenset(u.id for u in self.participants if u.id is not None),
            participant_hospital_ids=frozenset(u.hospital_id for u in self.participants),
        )

    def shown(self) -> ConsultationShown:
        c, patient = self.consultation, self.patient
        assert c.id is not None and self.hospital.id is not None
        return ConsultationShown(
            id=c.id, title=self.title, records_withheld=self.withheld, status=c.status,
            planned_start=c.planned_start, planned_end=c.planned_end,
            hospital=Named(id=self.hospital.id, name=self.hospital.name),
            participants=[ParticipantShown(id=u.id, display_name=u.display_name, role=u.role,
                                           hospital_id=u.hospital_id) for u in self.participants if u.id is not None],
            patient=Named(id=patient.id, name=patient.name) if patient is not None and patient.id is not None else None)


async def load(session: AsyncSession, consultation_id: int) -> ConsultationView:
    consultation = await session.get(Consultation, consultation_id)
    if consultation is None:
        raise NotFound(f"There is no consultation {consultation_id}.")
    participants = (
        await session.exec(
            select(User)
            .join(ConsultationParticipant, col(ConsultationParticipant.user_id) == col(User.id))
            .where(ConsultationParticipant.consultation_id == consultation_id)
            .order_by(col(User.id))
        )
    ).all()
    hospital = await session.get(Hospital, consultation.hospital_id)
    assert hospital is not None
    patient = await session.get(Patient, consultation.patient_id) if consultation.patient_id else None
    return ConsultationView(consultation, hospital, tuple(participants), patient)


async def disclosed(session: AsyncSession, who: Principal,
                    views: list[ConsultationView]) -> list[ConsultationView]:
    """The views as the caller may see them: every view of a consultation goes through here (or ``visible``)."""
    ids = [v.consultation.id for v in views]
    booked = (await session.exec(select(Referral).where(col(Referral.consultation_id).in_(ids)))).all()
    direct = {v.consultation.id: v.consultation for v in views} | {r.consultation_id: None for r in booked}
    shared, shown = await disclosure.shared_records(session, who, booked, [c for c in direct.values() if c is not None])
    withheld = {r.consultation_id for r in booked if r.id not in shared} \
        | {i for i, c in direct.items() if c is not None and i not in shown}
    return [replace(v, patient=None, withheld=True) if v.consultation.id in withheld else v for v in views]


async def visible(session: AsyncSession, who: Principal, consultation_id: int,
                  rule: Callable[[Principal, ConsultationScope], bool]) -> ConsultationView:
    """The consultation, if ``rule`` lets the caller at it (403 or 404 otherwise), as they may see it."""
    view = await load(session, consultation_id)
    require(rule(who, view.scope), N_("You are not a participant of this consultation."))
    return (await disclosed(session, who, [view]))[0]


async def list_for(session: AsyncSession, who: Principal) -> list[ConsultationView]:
    """The consultations the caller takes part in, soonest first."""
    ids = (
        await session.exec(
            select(Consultation.id)
            .join(ConsultationParticipant, col(ConsultationParticipant.consultation_id) == col(Consultation.id))
            .where(ConsultationParticipant.user_id == who.user_id)
            .order_by(col(Consultation.planned_start))
        )
    ).all()
    return await disclosed(session, who, [await load(session, consultation_id) for consultation_id in ids
                                          if consultation_id is not None])


def _visible(who: Principal) -> sa.ColumnElement[bool]:
    """``can_view_consultation`` as a condition on the consultation table, so a list can be searched and paged
    in the database: the caller's own consultations, and for a coordinator those of their hospital or in
    which one of its clinicians takes part. (tests/server/consultations/test_search.py holds the two equal.)"""
    takes_part = sa.exists().where(col(ConsultationParticipant.consultation_id) == col(Consultation.id),
                                   col(ConsultationParticipant.user_id) == who.user_id)
    if who.role is not Role.COORDINATOR:
        return takes_part
    colleague_takes_part = sa.exists().where(
        col(ConsultationParticipant.consultation_id) == col(Consultation.id),
        col(ConsultationParticipant.user_id) == col(User.id), col(User.hospital_id) == who.hospital_id)
    return sa.or_(takes_part, col(Consultation.hospital_id) == who.hospital_id, colleague_takes_part)


def _withheld(who: Principal) -> sa.ColumnElement[bool]:
    """``disclosed``'s rule as a condition: booked for a referral whose records the caller may not see, or
    set up without one and its patient not shared with the caller's hospital."""
    booked = sa.exists().where(col(Referral.consultation_id) == col(Consultation.id))
    unshared = sa.exists().where(col(Referral.consultation_id) == col(Consultation.id),
                                 sa.not_(disclosure.shared_condition(who)))
    return sa.or_(unshared, sa.and_(sa.not_(booked), sa.not_(disclosure.consultation_shared_condition(who))))


async def find(session: AsyncSession, who: Principal, search: ConsultationSearch, *,
               fallback: str = DEFAULT_TIMEZONE) -> Page[ConsultationView]:
    """A page of the consultations the caller may see (``can_view_consultation``), latest start first,
    searched by a part of the patient's name or the title (never finding one whose records are withheld from
    the caller by what they hide), by status, and by days on the clock of the caller's hospital."""
    require(can_list_consultations(who), N_("Only clinicians and coordinators list consultations."))
    where = [_visible(who)]
    if search.q:
        pattern = like_pattern(search.q)
        named = sa.exists().where(col(Patient.id) == col(Consultation.patient_id),
                                  col(Patient.name).ilike(pattern, escape=LIKE_ESCAPE))
        where.append(sa.and_(sa.not_(_withheld(who)),
                             sa.or_(col(Consultation.title).ilike(pattern, escape=LIKE_ESCAPE), named)))
    if search.status is not None:
        where.append(col(Consultation.status) == search.status)
    if search.since is not None or search.until is not None:
        zone = ZoneInfo(await zones.reader_zone(session, who, fallback))  # the days the page shows
        if search.since is not None:
            where.append(col(Consultation.planned_start) >= datetime.combine(search.since, time(), tzinfo=zone))
        if search.until is not None:
            day_after = datetime.combine(search.until + timedelta(days=1), time(), tzinfo=zone)
            where.append(col(Consultation.planned_start) < day_after)
    total = (await session.exec(select(sa.func.count()).select_from(Consultation).where(*where))).one()
    ids = (await session.exec(select(Consultation.id).where(*where)
                              .order_by(col(Consultation.planned_start).desc(), col(Consultation.id).desc())
                              .offset(offset(search.page, PAGE_SIZE)).limit(PAGE_SIZE))).all()
    views = await disclosed(session, who, [await load(session, i) for i in ids if i is not None])
    return Page(views, search.page, PAGE_SIZE, total)


# Why a consent to sharing the patient's record has nothing to cover (409 ``no-referral``).
NOBODY_ELSE_TAKES_PART = N_("Nobody of another hospital takes part in this consultation: no records are shared.")


async def others_take_part(session: AsyncSession, consultation: Consultation) -> bool:
    """Whether a clinician of another hospital than the consultation's takes part in it: then its patient's
    record reaches that hospital only with the patient's consent to sharing (``disclose``)."""
    found = await session.exec(select(User.id).join(
        ConsultationParticipant, col(ConsultationParticipant.user_id) == col(User.id)).where(
        ConsultationParticipant.consultation_id == consultation.id, User.hospital_id != consultation.hospital_id)
        .limit(1))
    return found.first() is not None


async def partner_hospital_ids(session: AsyncSession, hospital_id: int) -> frozenset[int]:
    """Every hospital that shares a medical partnership with this one (leads count as members)."""
    member_of = select(PartnershipMember.partnership_id).where(PartnershipMember.hospital_id == hospital_id)
    led = select(Partnership.id).where(Partnership.lead_hospital_id == hospital_id)
    partnerships = set((await session.exec(member_of)).all()) | set((await session.exec(led)).all())
    if not partnerships:
        return frozenset()
    members = await session.exec(
        select(PartnershipMember.hospital_id).where(col(PartnershipMember.partnership_id).in_(partnerships))
    )
    leads = await session.exec(select(Partnership.lead_hospital_id).where(col(Partnership.id).in_(partnerships)))
    return frozenset(members.all()) | frozenset(leads.all())


async def create(session: AsyncSession, who: Principal, body: NewConsultation, *,
                 now: datetime | None = None, locale: str = "zh-CN", how: How | None = None) -> Consultation:
    """Set up a consultation at the caller's hospital, with the caller (if a clinician) and the named
    clinicians taking part, audited in the same transaction; with the patient's consent to sharing their
    record with the other hospitals taking part when the doctor records it (``sharing_consent``, ``how``),
    in the same transaction too.

    Every invitee must be an active clinician of the caller's hospital or a partner hospital; the patient
    must be registered at the caller's hospital; the start must be in the future; a consent needs a
    patient. Nothing is written unless all of that holds, and a 422 names each field that does not.
    """
    require(can_create_consultation(who), N_("Only doctors, specialists and coordinators create consultations."))
    problems: dict[str, str] = {}
    if body.planned_start <= (now or utcnow()):
        problems["planned_start"] = N_("The start must be in the future.")
    partners = await partner_hospital_ids(session, who.hospital_id)
    invitees = (await session.exec(select(User).where(col(User.id).in_(body.participant_ids)))).all()
    found = {u.id: u for u in invitees}
    for user_id in body.participant_ids:
        user = found.get(user_id)
        if user is None or not user.is_active \
                or not can_add_participant(who, user.role, user.hospital_id, partners):
            problems["participant_ids"] = N_("Choose active clinicians of your hospital or of a partner hospital.")
    patient = await session.get(Patient, body.patient_id) if body.patient_id is not None else None
    if body.patient_id is not None and (patient is None or patient.hospital_id != who.hospital_id):
        problems["patient_id"] = N_("Choose a patient registered at your hospital.")
    if body.sharing_consent is not None and body.patient_id is None:
        problems["sharing_consent"] = N_("Only a patient consents to sharing their record: choose the patient.")
    elif body.sharing_consent is not None and all(u.hospital_id == who.hospital_id for u in invitees):
        problems["sharing_consent"] = NOBODY_ELSE_TAKES_PART
    if problems:
        raise ValidationFailed(problems)
    sharing = None
    if body.sharing_consent == "verbal" and patient is not None and patient.id is not None:
        require(can_speak_for_patient(who, patient.hospital_id),
                N_("Only a clinician at the patient's side records their consent to sharing their record."))
        try:
            template = await consent_templates.offered(session, ConsentPurpose.RECORD_SHARING,
                                                       body.sharing_template_id, locale)
        except NotFound:
            raise ValidationFailed({"sharing_template_id": N_("Choose a consent text that exists.")}) from None
        patient_consents = Consenter(ConsentSubject.PATIENT, patient_identity(patient.id), patient.name,
                                     patient_id=patient.id)
        sharing = (template, patient_consents, how or How(ConsentMethod.VERBAL, who.user_id))

    planned_end = body.planned_start + timedelta(minutes=body.duration_minutes) if body.duration_minutes else None
    consultation = Consultation(
        title=body.title, hospital_id=who.hospital_id, patient_id=body.patient_id,
        planned_start=body.planned_start, planned_end=planned_end, created_by=who.user_id,
    )
    session.add(consultation)
    await session.flush()
    assert consultation.id is not None
    members = set(body.participant_ids)
    if joins_what_they_plan(who):
        members.add(who.user_id)
    for user_id in sorted(members):
        session.add(ConsultationParticipant(consultation_id=consultation.id, user_id=user_id))
    audit.with_commit(session, audit.Entry(
        f"user:{who.user_id}", "consultation.created", consultation.id, f"consultation:{consultation.id}",
        {"participants": sorted(members), "patient": body.patient_id,
         "planned_start": body.planned_start.isoformat()}))
    if sharing is not None:
        template, consenter, verbal = sharing
        consent = new_record(template, consenter, Scope(consultation_id=consultation.id), verbal)
        session.add(consent)
        audit.with_commit(session, lambda: given_entry(consent, template))
    await session.commit()
    await session.refresh(consultation)
    return consultation
