"""Referral records: creating, listing, showing and moving them through server/referrals/flow.py.

Every change is one transaction: the referral row (guarded by its version, so two racing transitions
cannot both land), its event row and the notifications it causes are written together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import idempotency
from ..audit import trail as audit
from ..consent import records as consents
from ..consent import templates as consent_templates
from ..consent.records import How
from ..consultations.service import partner_hospital_ids
from ..errors import N_, Conflict, Forbidden, NotFound, ValidationFailed
from ..models import (
    Appointment,
    AppointmentStatus,
    Consent,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    ConsultationStatus,
    Partnership,
    PartnershipMember,
    Patient,
    Referral,
    ReferralEvent,
    ReferralState,
    Role,
    Specialty,
    TitleWanted,
    Urgency,
    User,
    utcnow,
)
from ..notices import Notice
from ..paging import LIKE_ESCAPE, Page, like_pattern, offset
from ..patients import disclosure
from ..permissions import (
    Principal,
    ReferralScope,
    can_edit_referral_request,
    can_refer,
    can_speak_for_patient,
    can_view_referral,
    require,
)
from ..reports import icd10
from .flow import (
    WAITING_FOR_RECEIVER,
    Actor,
    Redirection,
    ReferralAction,
    ReferralFacts,
    Request,
    decide,
    may,
)
from .inputs import ReferralActionBody, ReferralCreate, ReferralRequestEdit, ReferralSearch

CONSULTATION_FOLLOWS = {
    ReferralAction.START: ConsultationStatus.IN_PROGRESS,
    ReferralAction.COMPLETE: ConsultationStatus.COMPLETED,
    ReferralAction.CANCEL: ConsultationStatus.CANCELLED,
}
URGENCY_ORDER = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}
PAGE_SIZE = 20
Box = Literal["inbox", "others", "all"]  # waiting for the receiving side; every other one; both


@dataclass(frozen=True)
class NewReferral:
    patient_id: int
    specialty: str  # code
    urgency: Urgency
    reason: str
    summary: str
    target_hospital_id: int
    target_specialist_id: int | None
    submit: bool
    question: str = ""  # the consultation request's (inputs.ReferralRequestFields): needed to submit
    working_diagnosis: str = ""
    diagnosis_code: str = ""
    history: str = ""
    results: str = ""
    title_wanted: TitleWanted = TitleWanted.ANY
    # The patient's consent to sharing their records with the partner hospital, as the referring doctor
    # recorded it (the patient told them, in the room): needed to send the referral.
    sharing_consent: tuple[ConsentTemplate, How] | None = None


def actor(who: Principal) -> Actor:
    """The caller as the referral's rules see them: the principal itself, licence and all (signing, which
    completes a referral, needs a verified one)."""
    return who


async def live_appointment(session: AsyncSession, referral_id: int) -> Appointment | None:
    return (await session.exec(select(Appointment).where(Appointment.referral_id == referral_id,
                                                         Appointment.status == AppointmentStatus.BOOKED))).first()


def facts_of(referral: Referral, appointment: Appointment | None) -> ReferralFacts:
    return ReferralFacts(state=referral.state, referring_doctor_id=referral.referring_doctor_id,
                         target_hospital_id=referral.target_hospital_id,
                         target_specialist_id=referral.target_specialist_id,
                         assigned_specialist_id=appointment.specialist_id if appointment else None)


def scope_of(referral: Referral, appointment: Appointment | None) -> ReferralScope:
    return ReferralScope(referring_doctor_id=referral.referring_doctor_id,
                         target_hospital_id=referral.target_hospital_id,
                         target_specialist_id=referral.target_specialist_id,
                         booked_specialist_id=appointment.specialist_id if appointment else None,
                         sent=referral.submitted_at is not None)


def can_view(who: Principal, referral: Referral, appointment: Appointment | None) -> bool:
    return can_view_referral(who, scope_of(referral, appointment))


async def load_visible(session: AsyncSession, who: Principal, referral_id: int) -> tuple[Referral, Appointment | None]:
    referral = await session.get(Referral, referral_id)
    if referral is None:
        raise NotFound(f"There is no referral {referral_id}.")
    appointment = await live_appointment(session, referral_id)
    if not can_view(who, referral, appointment):
        raise Forbidden(N_("This referral is not yours to see."))
    return referral, appointment


async def booked_for(session: AsyncSession, who: Principal,
                     consultation_id: int) -> tuple[Referral, Appointment | None] | None:
    """The referral a consultation was booked for (booking gives the referral its consultation), if the
    caller may see that referral; None if the consultation was not booked for one, or the caller may not."""
    referral = (await session.exec(select(Referral).where(Referral.consultation_id == consultation_id)
                                   .order_by(col(Referral.id)))).first()
    if referral is None:
        return None
    assert referral.id is not None
    appointment = await live_appointment(session, referral.id)
    return (referral, appointment) if can_view(who, referral, appointment) else None


async def load_with_records(session: AsyncSession, who: Principal, referral_id: int) -> Referral:
    """A referral the caller sees together with its patient's records: the receiving side only while the
    patient's consent to sharing stands (403 ``records-withheld`` otherwise)."""
    referral, _ = await load_visible(session, who, referral_id)
    if not await records_shared_with(session, who, referral):
        raise Forbidden(N_("The patient has not consented to sharing their records with your hospital."),
                        code="records-withheld")
    return referral


async def refer(session: AsyncSession, who: Principal, body: ReferralCreate, *, locale: str,
                how: How, reply: idempotency.Reply[Referral] | None = None) -> Referral:
    """The one way in for a new referral, from the API and the form alike: with the patient's consent to
    sharing their records when the referring doctor records it (``how``), both audited in one transaction
    (with the request's idempotency key and answer, given a ``reply``)."""
    require(can_refer(who), N_("Only county doctors refer patients."))
    await idempotency.claim(session, reply)
    sharing = None
    if body.sharing_consent == "verbal":
        sharing = (await _sharing_text(session, body.sharing_template_id, locale), how)
    fields = body.model_dump(exclude={"sharing_consent", "sharing_template_id"})
    return await create(session, who, NewReferral(**fields, sharing_consent=sharing), reply=reply)


async def create(session: AsyncSession, who: Principal, new: NewReferral, *,
                 reply: idempotency.Reply[Referral] | None = None) -> Referral:
    """A county doctor's referral of one of their hospital's patients to a partner hospital (``refer``
    claims the idempotency key, if any, before it comes here)."""
    require(can_refer(who), N_("Only county doctors refer patients."))
    problems: dict[str, str] = {}
    patient = await session.get(Patient, new.patient_id)
    if patient is None or patient.hospital_id != who.hospital_id:
        problems["patient_id"] = N_("this patient is not registered at your hospital")
    specialty = (await session.exec(select(Specialty).where(Specialty.code == new.specialty))).first()
    if specialty is None:
        problems["specialty"] = N_("there is no such specialty")
    partnership = await shared_partnership(session, who.hospital_id, new.target_hospital_id)
    if partnership is None or new.target_hospital_id == who.hospital_id:
        problems["target_hospital_id"] = N_("not a partner hospital of yours")
    if new.target_specialist_id is not None:
        specialist = await session.get(User, new.target_specialist_id)
        if specialist is None or specialist.role is not Role.SPECIALIST or not specialist.is_active \
                or specialist.hospital_id != new.target_hospital_id:
            problems["target_specialist_id"] = N_("not a specialist of that hospital")
        elif specialty is not None and specialist.specialty_id != specialty.id:
            problems["target_specialist_id"] = N_("that specialist is not in the specialty asked for")
    code = await _diagnosis_code(session, new.diagnosis_code, problems)
    if new.submit and not new.question:
        problems["question"] = QUESTION_NEEDED
    if new.submit and new.sharing_consent is None:  # a new referral has no other consent on record
        problems["sharing_consent"] = SHARING_NEEDED
    if problems:
        raise ValidationFailed(problems)
    assert specialty is not None and specialty.id is not None and partnership is not None
    referral = Referral(patient_id=new.patient_id, referring_doctor_id=who.user_id,
                        referring_hospital_id=who.hospital_id, partnership_id=partnership, specialty_id=specialty.id,
                        target_hospital_id=new.target_hospital_id, target_specialist_id=new.target_specialist_id,
                        urgency=new.urgency, reason=new.reason, summary=new.summary, question=new.question,
                        working_diagnosis=new.working_diagnosis, diagnosis_code=code, history=new.history,
                        results=new.results, title_wanted=new.title_wanted)
    session.add(referral)
    await session.flush()
    assert referral.id is not None
    session.add(ReferralEvent(referral_id=referral.id, action="create", from_state="", to_state=ReferralState.DRAFT,
                              actor_id=who.user_id))
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "referral.created", subject=f"referral:{referral.id}",
                                           detail={"state": ReferralState.DRAFT.value}))
    if new.sharing_consent is not None:
        assert patient is not None
        await _add_sharing_consent(session, patient, referral.id, *new.sharing_consent)
    if new.submit:
        await require_complete(session, referral)
        await apply(session, who, referral, None, Request(ReferralAction.SUBMIT))
    await idempotency.commit(session, reply, referral)
    return referral


QUESTION_NEEDED = N_("the question for the specialist is needed to submit the referral")
CHANGED_MEANWHILE = N_("Someone else changed this referral a moment ago; reload it and try again.")


@dataclass(frozen=True)
class SharingSaid:
    """The patient's consent to sharing their records, said to the referring doctor who records it as they send a
    draft saved without it: on the current text in the doctor's language, or the one they read out
    (``template_id``, refused if no longer current)."""

    how: How
    locale: str
    template_id: int | None = None

    @classmethod
    def of(cls, body: ReferralActionBody, how: How, locale: str) -> SharingSaid | None:
        """What an action's body says of the consent (the API's and the page's alike): None if nothing."""
        return cls(how, locale, body.sharing_template_id) if body.sharing_consent == "verbal" else None


async def _sharing_text(session: AsyncSession, template_id: int | None, locale: str) -> ConsentTemplate:
    return await consent_templates.offered(session, ConsentPurpose.RECORD_SHARING, template_id, locale)


async def _add_sharing_consent(session: AsyncSession, patient: Patient, referral_id: int, template: ConsentTemplate,
                               how: How) -> None:
    """The patient's consent to sharing their records for this referral, and its audit entry, uncommitted; a
    conflict (nothing written) if the same consent was recorded meanwhile (two submits of one draft at once)."""
    assert patient.id is not None
    consent = consents.new_record(template, consents.Consenter(
        ConsentSubject.PATIENT, consents.patient_identity(patient.id), patient.name, patient_id=patient.id),
        consents.Scope(referral_id=referral_id), how)
    session.add(consent)
    try:
        await session.flush()
    except sa.exc.IntegrityError:  # its standing key, taken meanwhile
        await session.rollback()
        raise Conflict(CHANGED_MEANWHILE, code="referral-changed") from None
    audit.with_commit(session, lambda: consents.given_entry(consent, template))


async def _diagnosis_code(session: AsyncSession, raw: str, problems: dict[str, str]) -> str:
    """The working diagnosis's ICD-10 code as the list in use spells it, or "" for none; a code not in the
    list is a problem under ``diagnosis_code``."""
    if not raw:
        return ""
    found = await icd10.lookup(session, raw)
    if found is None:
        problems["diagnosis_code"] = N_("not a code of the ICD-10 list in use; pick one from the list")
        return ""
    return found.code


async def edit_request(session: AsyncSession, who: Principal, referral_id: int, body: ReferralRequestEdit) -> Referral:
    """The referring doctor rewrites a draft's consultation request (every field of it), committed and
    audited; the receiving side never saw a draft, so nothing else changes."""
    referral, appointment = await load_visible(session, who, referral_id)
    require(can_edit_referral_request(who, scope_of(referral, appointment), referral.state),
            N_("Only the referring doctor changes a referral's request, and only while it is a draft."))
    problems: dict[str, str] = {}
    code = await _diagnosis_code(session, body.diagnosis_code, problems)
    if problems:
        raise ValidationFailed(problems)
    values = {**body.model_dump(), "diagnosis_code": code, "updated_at": utcnow(), "version": referral.version + 1}
    updated = await session.exec(  # type: ignore[call-overload]
        sa.update(Referral).where(col(Referral.id) == referral_id, col(Referral.version) == referral.version)
        .values(**values))
    if updated.rowcount != 1:
        raise Conflict(CHANGED_MEANWHILE, code="referral-changed")
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "referral.request_edited",
                                           subject=f"referral:{referral_id}",
                                           detail={"state": referral.state.value}))
    await session.commit()
    await session.refresh(referral)
    return referral


async def require_complete(session: AsyncSession, referral: Referral) -> None:
    """What a referral needs before it is sent: the question for the specialist, and the patient's consent
    to sharing their records (each missing one named)."""
    problems: dict[str, str] = {}
    if not referral.question.strip():
        problems["question"] = QUESTION_NEEDED
    if await sharing_consent(session, referral) is None:
        problems["sharing_consent"] = SHARING_NEEDED
    if problems:
        raise ValidationFailed(problems)


async def sharing_consent(session: AsyncSession, referral: Referral) -> Consent | None:
    """The patient's standing consent to sharing their records for this referral, or None."""
    return await consents.standing(session, ConsentPurpose.RECORD_SHARING, referral_id=referral.id)


SHARING_NEEDED = N_("the patient's consent to sharing their records with the partner hospital is needed to send "
                    "the referral")


async def records_shared_with(session: AsyncSession, who: Principal, referral: Referral) -> bool:
    """Whether the caller may see the patient's records on this referral: the referring hospital always;
    the receiving side only while the patient's consent to sharing stands."""
    return await disclosure.shared_with(session, who, referral)


async def shared_partnership(session: AsyncSession, hospital_a: int, hospital_b: int) -> int | None:
    """A partnership both hospitals belong to (a lead counts as a member)."""
    for partnership in (await session.exec(select(Partnership))).all():
        members = set((await session.exec(select(PartnershipMember.hospital_id)
                                          .where(PartnershipMember.partnership_id == partnership.id))).all())
        members.add(partnership.lead_hospital_id)
        if hospital_a in members and hospital_b in members:
            return partnership.id
    return None


async def act(session: AsyncSession, who: Principal, referral_id: int, action: ReferralAction, *, reason: str = "",
              redirect_to: Redirection | None = None, sharing: SharingSaid | None = None) -> Referral:
    """Take ``action`` on a referral the caller can see, and commit it with its event and notifications; a
    submit may record the patient's consent to sharing in the same transaction (``sharing``). (A referral is
    completed by signing its report, server/reports/service.py: ``complete`` here answers 422.)"""
    referral, appointment = await load_visible(session, who, referral_id)
    if action is ReferralAction.SCHEDULE:
        raise ValidationFailed({"action": N_("a referral is scheduled by booking a slot for it")})
    if sharing is not None and action is not ReferralAction.SUBMIT:
        raise ValidationFailed({"sharing_consent": N_("recorded here only as the referral is submitted")})
    if action is ReferralAction.SUBMIT and may(actor(who), facts_of(referral, appointment), action):
        if sharing is not None and await sharing_consent(session, referral) is None:
            assert referral.id is not None
            patient = await session.get(Patient, referral.patient_id)
            assert patient is not None
            require(can_speak_for_patient(who, patient.hospital_id),
                    N_("Only a clinician at the patient's side records their consent to sharing their record."))
            template = await _sharing_text(session, sharing.template_id, sharing.locale)
            await _add_sharing_consent(session, patient, referral.id, template, sharing.how)
        await require_complete(session, referral)
    partners = await partner_hospital_ids(session, referral.target_hospital_id)
    request = Request(action, reason=reason, redirect_to=redirect_to, partner_hospital_ids=partners)
    if redirect_to is not None and redirect_to.specialist_id is not None:
        specialist = await session.get(User, redirect_to.specialist_id)
        if specialist is None or specialist.role is not Role.SPECIALIST \
                or specialist.hospital_id != redirect_to.hospital_id:
            raise ValidationFailed({"redirect_to.specialist_id": N_("not a specialist of that hospital")})
    await apply(session, who, referral, appointment, request)
    await session.commit()
    return referral


async def apply(session: AsyncSession, who: Principal, referral: Referral, appointment: Appointment | None,
                request: Request, *, changes: dict[str, Any] | None = None,
                notice: Notice | None = None, also_notify: int | None = None) -> None:
    """Decide, then write the new state (only if nobody moved the referral meanwhile), its event, its audit
    entry and the notifications (``notice``, to everyone on the referral and ``also_notify``), uncommitted."""
    assert referral.id is not None
    before = referral.state
    after = decide(actor(who), facts_of(referral, appointment), request)
    values: dict[str, Any] = {"state": after, "updated_at": utcnow(), "version": referral.version + 1,
                              **(changes or {})}
    action = request.action
    if action is ReferralAction.SUBMIT:
        values["submitted_at"] = utcnow()
    elif action is ReferralAction.DECLINE:
        values["decline_reason"] = request.reason.strip()
    elif action is ReferralAction.CANCEL:
        values["cancel_reason"] = request.reason.strip()
    elif action is ReferralAction.REDIRECT:
        assert request.redirect_to is not None
        values["target_hospital_id"] = request.redirect_to.hospital_id
        values["target_specialist_id"] = request.redirect_to.specialist_id
    updated = await session.exec(  # type: ignore[call-overload]
        sa.update(Referral).where(col(Referral.id) == referral.id, col(Referral.version) == referral.version)
        .values(**values))
    if updated.rowcount != 1:
        raise Conflict(CHANGED_MEANWHILE, code="referral-changed")
    if action is ReferralAction.CANCEL and appointment is not None:
        appointment.status, appointment.cancel_reason = AppointmentStatus.CANCELLED, request.reason.strip()
        session.add(appointment)
    if action in CONSULTATION_FOLLOWS and referral.consultation_id is not None:
        # the consultation booked for the referral moves with it: a finished one admits nobody new
        await session.exec(sa.update(Consultation).where(  # type: ignore[call-overload]
            col(Consultation.id) == referral.consultation_id).values(status=CONSULTATION_FOLLOWS[action]))
    session.add(ReferralEvent(referral_id=referral.id, action=action.value, from_state=before.value,
                              to_state=after.value, actor_id=who.user_id, note=request.reason.strip()))
    await session.refresh(referral)
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", f"referral.{action.value}",
                                           referral.consultation_id, f"referral:{referral.id}", {"state": after.value}))
    await _notify(session, who, referral, appointment, notice or Notice.referral_state(referral.id, after.value),
                  also_notify)


async def _notify(session: AsyncSession, who: Principal, referral: Referral, appointment: Appointment | None,
                  notice: Notice, also: int | None = None) -> None:
    """Tell everyone on the referral but the one who acted: the referrer, the receiving side, the specialist;
    of a referral never sent (a draft cancelled), nobody but its referrer: it was never the others'."""
    recipients = {referral.referring_doctor_id} | ({also} if also else set())
    if referral.submitted_at is not None:
        if referral.target_specialist_id:
            recipients.add(referral.target_specialist_id)
        if appointment is not None:
            recipients.add(appointment.specialist_id)
        coordinators = await session.exec(select(User.id).where(
            User.hospital_id == referral.target_hospital_id, User.role == Role.COORDINATOR,
            User.is_active == True))  # noqa: E712
        recipients |= {c for c in coordinators.all() if c is not None}
    recipients.discard(who.user_id)
    for user_id in sorted(recipients):
        session.add(notice.to(user_id))


def _visible(who: Principal) -> sa.ColumnElement[bool] | None:
    """Which referrals are the caller's to list, as a condition (None: none are): made by them, or, once sent
    (``can_view_referral``: a draft is its doctor's alone), asked of them or booked with them, or
    (coordinators) sent to their hospital."""
    sent = col(Referral.submitted_at).is_not(None)
    if who.role is Role.COORDINATOR:
        return sa.and_(col(Referral.target_hospital_id) == who.hospital_id, sent)
    if who.role is Role.COUNTY_DOCTOR:
        return col(Referral.referring_doctor_id) == who.user_id
    if who.role is Role.SPECIALIST:
        booked = select(Appointment.referral_id).where(Appointment.specialist_id == who.user_id,
                                                       Appointment.status == AppointmentStatus.BOOKED)
        return sa.and_(sa.or_(col(Referral.target_specialist_id) == who.user_id, col(Referral.id).in_(booked)), sent)
    return None


def _in_box(box: Box) -> list[sa.ColumnElement[bool]]:
    waiting = col(Referral.state).in_(list(WAITING_FOR_RECEIVER))
    return [waiting] if box == "inbox" else [sa.not_(waiting)] if box == "others" else []


def _order(box: Box) -> list[Any]:
    """The inbox most urgent, then longest waiting, first; any other list most recently changed first."""
    if box == "inbox":
        urgency = sa.case({u: n for u, n in URGENCY_ORDER.items()}, value=col(Referral.urgency))
        return [urgency, sa.func.coalesce(col(Referral.submitted_at), col(Referral.created_at)), col(Referral.id)]
    return [col(Referral.updated_at).desc(), col(Referral.id).desc()]


async def list_for(session: AsyncSession, who: Principal, *, inbox: bool = False) -> list[Referral]:
    """The caller's referrals (see ``_visible``), all of them. ``inbox``: only those waiting for the receiving
    side, most urgent then oldest first."""
    visible = _visible(who)
    if visible is None:
        return []
    box: Box = "inbox" if inbox else "all"
    return list((await session.exec(select(Referral).where(visible, *_in_box(box)).order_by(*_order(box)))).all())


async def find(session: AsyncSession, who: Principal, search: ReferralSearch, *, box: Box) -> Page[Referral]:
    """A page of the caller's referrals in ``box`` (``inbox`` pages by ``search.inbox_page``, the others by
    ``search.page``). ``others`` leaves out what the inbox lists, so a coordinator sees each referral once.
    A name matches only referrals whose patient records the caller may see: a withheld one is never found
    by the name it hides."""
    visible = _visible(who)
    page = search.inbox_page if box == "inbox" else search.page
    if visible is None:
        return Page([], page, PAGE_SIZE, 0)
    where = [visible, *_in_box(box)]
    if search.state is not None:
        where.append(col(Referral.state) == search.state)
    query = select(Referral)
    if search.name:
        query = query.join(Patient, col(Patient.id) == col(Referral.patient_id))
        where += [col(Patient.name).ilike(like_pattern(search.name), escape=LIKE_ESCAPE),
                  disclosure.shared_condition(who)]
    total = (await session.exec(query.with_only_columns(sa.func.count()).where(*where))).one()
    rows = (await session.exec(query.where(*where).order_by(*_order(box))
                               .offset(offset(page, PAGE_SIZE)).limit(PAGE_SIZE))).all()
    return Page(list(rows), page, PAGE_SIZE, total)
