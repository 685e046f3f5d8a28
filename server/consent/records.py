"""Consent records: who consented to what, for which consultation or referral, how, when and from where.

Each purpose (video, recording, record sharing) is its own consent. A consent stands from when it is
given until it is withdrawn; withdrawing stamps the row and takes effect at once (a recording stops
within the second, the partner hospital can no longer open the records). Giving again writes a new row,
so what each recording or each sharing relied on stays on record.
"""

from __future__ import annotations

from dataclasses import dataclass

import pydantic
import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.events import Consenting, Expelling

from .. import idempotency
from ..audit import trail as audit
from ..consultations import service as consultations
from ..consultations.room_notifier import RoomNotifier
from ..db import Database
from ..errors import N_, BadRequest, Conflict, Forbidden, NotFound, TelemedError
from ..models import Consent, ConsentMethod, ConsentPurpose, ConsentSubject, ConsentTemplate, Referral, utcnow
from ..outputs import Instant, Out
from ..parsing import Id
from ..permissions import Principal, can_join_consultation, can_speak_for_patient, can_withdraw_consent, require
from . import templates as consent_templates
from .rules import Consenter, How, Scope, given_entry, new_record, patient_identity


class VerbalConsent(pydantic.BaseModel):
    """A patient's consent said to a participating clinician, who records it."""

    model_config = pydantic.ConfigDict(extra="forbid")

    purpose: ConsentPurpose
    template_id: Id | None = None  # the text read to the patient; the current one if left out


async def standing(session: AsyncSession, purpose: ConsentPurpose, *, identity: str | None = None,
                   consultation_id: int | None = None, referral_id: int | None = None) -> Consent | None:
    """The consent in force for this purpose and scope, or None."""
    query = select(Consent).where(Consent.purpose == purpose, col(Consent.withdrawn_at).is_(None))
    if identity is not None:
        query = query.where(Consent.identity == identity)
    if consultation_id is not None:
        query = query.where(Consent.consultation_id == consultation_id)
    if referral_id is not None:
        query = query.where(Consent.referral_id == referral_id)
    return (await session.exec(query.order_by(col(Consent.id).desc()).limit(1))).first()


async def standing_in(session: AsyncSession, purpose: ConsentPurpose, identity: str, scope: Scope) -> Consent | None:
    """The person's consent in force for this purpose in ``scope``: a referral's (sharing) whichever of its
    consultations it was given in, else the consultation's."""
    return await standing(session, purpose, identity=identity,
                          consultation_id=None if scope.referral_id else scope.consultation_id,
                          referral_id=scope.referral_id)


async def _end(session: AsyncSession, consent_id: int, by: str) -> bool:
    """Stamp the record withdrawn now by ``by``, if it still stands when written; whether it did. Of two at
    once, the second stamps nothing, and the trail says it once."""
    stamped = (await session.exec(sa.update(Consent).where(  # type: ignore[call-overload]
        Consent.id == consent_id, col(Consent.withdrawn_at).is_(None))
        .values(withdrawn_at=utcnow(), withdrawn_by=by, standing_key=None).returning(col(Consent.id)))).first()
    return stamped is not None


Given = tuple[Consent, ConsentTemplate]


async def give(database: Database, rooms: RoomNotifier | None, template: ConsentTemplate, consenter: Consenter,
               scope: Scope, how: How, *, reply: idempotency.Reply[Given] | None = None) -> Consent:
    """Write the consent (unless the same one already stands) with its audit entry, and tell the room. Given
    a ``reply``, the request's idempotency key and answer are stored with the consent.

    Of two gives of the same consent at once (the patient's click and their doctor's button) the database
    lets one stand (``Consent.standing_key``); the other is then made again, and finds it standing."""
    given = await _give_once(database, template, consenter, scope, how, reply)
    if given is None:
        given = await _give_once(database, template, consenter, scope, how, reply)
    if given is None:  # beaten twice: a third give of it at the same moment
        raise Conflict(GIVEN_MEANWHILE, code="conflict")
    consent, new = given
    if (new and consent.purpose is ConsentPurpose.RECORDING and rooms is not None
            and consent.consultation_id is not None):
        await rooms.tell(consent.consultation_id, Consenting(identity=consent.identity, consent_id=consent.id))
    return consent


GIVEN_MEANWHILE = N_("This consent was changed by someone else a moment ago; try again.")


async def _give_once(database: Database, template: ConsentTemplate, consenter: Consenter, scope: Scope, how: How,
                     reply: idempotency.Reply[Given] | None) -> tuple[Consent, bool] | None:
    """``give``'s transaction: the consent standing after it and whether it is new; None, with nothing written,
    if another request wrote the same consent meanwhile."""
    consent = new_record(template, consenter, scope, how)
    async with database.session() as session:
        await idempotency.claim(session, reply)
        # (one standing at a time: the same consent given again is not a second one)
        already = await standing_in(session, template.purpose, consenter.identity, scope)
        if already is not None and already.template_id == template.id:
            await idempotency.commit(session, reply, (already, template))  # the key, if any
            return already, False  # giving it twice is not two consents
        if already is not None:  # the same consent to a newer text replaces the older one (not audited as a
            # withdrawal: the consent goes on, and its consent.given names the newer text)
            await _end(session, already.id, consenter.identity)
        session.add(consent)
        try:
            await session.flush()
        except sa.exc.IntegrityError:  # its standing key, taken by the same consent given meanwhile
            await session.rollback()
            return None
        audit.with_commit(session, lambda: given_entry(consent, template))
        # Nothing is read back after the commit: a database lost just after it cannot turn a consent that
        # was given into an error (the session keeps what it wrote).
        await idempotency.commit(session, reply, (consent, template))
    return consent, True


async def withdraw(database: Database, rooms: RoomNotifier | None, consent_id: int, by: str, *,
                   reply: idempotency.Reply[Consent] | None = None) -> Consent:
    """End a consent now, with its audit entry. Withdrawing one already withdrawn answers 409 and changes
    nothing. Given a ``reply``, the request's idempotency key and answer are stored with the withdrawal."""
    async with database.session() as session:
        await idempotency.claim(session, reply)
        consent = await session.get(Consent, consent_id)
        assert consent is not None, "callers load and authorize the consent first"
        if consent.withdrawn_at is not None:
            raise Conflict(N_("This consent was already withdrawn."), code="consent-withdrawn")
        # Of two withdrawals at once (the patient's click and their doctor's button), one is told it came second.
        # (No other record of the same consent stands beside it: ``Consent.standing_key`` is unique.)
        if not await _end(session, consent_id, by):
            await session.rollback()
            raise Conflict(N_("This consent was already withdrawn."), code="consent-withdrawn")
        audit.with_commit(session, audit.Entry(
            by, "consent.withdrawn", consent.consultation_id, f"consent:{consent.id}",
            {"purpose": consent.purpose.value, "for": consent.identity, "referral": consent.referral_id}))
        await idempotency.commit(session, reply, consent)  # (the update set them on ``consent`` too)
    if rooms is not None and consent.consultation_id is not None:
        if consent.purpose is ConsentPurpose.RECORDING:  # a recording stops within the second
            await rooms.tell(consent.consultation_id, Consenting(identity=consent.identity, consent_id=None))
        elif consent.purpose is ConsentPurpose.VIDEO:  # the patient leaves the call at once
            await rooms.tell(consent.consultation_id, Expelling(identity=consent.identity, reason="consent-withdrawn"))
    return consent


async def give_clicked(database: Database, rooms: RoomNotifier | None, purpose: ConsentPurpose,
                       consenter: Consenter, scope: Scope, template_id: int | None, *, locale: str,
                       how: How, reply: idempotency.Reply[Given] | None = None) -> Given:
    """The person gives their own consent by clicking, to the text they were shown (the current one in
    ``locale`` if none is named): for the API, the room's checkbox and the patient's consent page alike."""
    async with database.session() as session:
        template = await consent_templates.offered(session, purpose, template_id, locale)
    return await give(database, rooms, template, consenter, scope, how, reply=reply), template


async def withdraw_own(database: Database, rooms: RoomNotifier | None, purpose: ConsentPurpose,
                       consenter: Consenter, scope: Scope, *,
                       reply: idempotency.Reply[Consent] | None = None) -> Consent | None:
    """The person withdraws their own standing consent for this purpose and scope; None if none stood."""
    async with database.session() as session:
        found = await standing_in(session, purpose, consenter.identity, scope)
    if found is None or found.id is None:
        return None
    return await withdraw(database, rooms, found.id, consenter.identity, reply=reply)


async def record_verbal(database: Database, rooms: RoomNotifier | None, who: Principal, consultation_id: int,
                        body: VerbalConsent, *, locale: str, how: How,
                        reply: idempotency.Reply[Given] | None = None) -> Given:
    """A participating clinician records the patient's verbal consent (the patient is with them, without a
    device of their own), for the video visit or for recording; and, a clinician of the patient's own
    hospital, to sharing their record with the other hospitals taking part in a consultation set up without a
    referral (a referral's is recorded on the referral). ``how`` names the clinician."""
    async with database.session() as session:
        view = await consultations.visible(session, who, consultation_id, can_join_consultation)
        if body.purpose is ConsentPurpose.RECORD_SHARING and (refused := await _sharing_refused(session, who, view)):
            raise refused
    patient = view.patient
    if patient is None or patient.id is None:
        raise Conflict(NO_PATIENT, code="no-patient")
    async with database.session() as session:
        template = await consent_templates.offered(session, body.purpose, body.template_id, locale)
    consent = await give(
        database, rooms, template,
        Consenter(ConsentSubject.PATIENT, patient_identity(patient.id), patient.name, patient_id=patient.id),
        Scope(consultation_id=consultation_id), how, reply=reply)
    return consent, template


NO_PATIENT = N_("This consultation has no patient to consent.")


async def _sharing_refused(session: AsyncSession, who: Principal,
                           view: consultations.ConsultationView) -> TelemedError | None:
    """Why the caller may not record the patient's consent to sharing in this consultation, or its withdrawal,
    if they may not: a consultation booked for a referral (its referral holds it), a caller not of the
    patient's hospital, or nobody of another hospital taking part to share with."""
    if (await session.exec(select(Referral.id).where(Referral.consultation_id == view.consultation.id))).first():
        return BadRequest(N_("Consent to sharing records is recorded on the referral."), code="wrong-scope")
    if not can_speak_for_patient(who, view.consultation.hospital_id):
        return Forbidden(N_("Only the patient's own hospital records their consent to sharing their record."))
    if not await consultations.others_take_part(session, view.consultation):
        return Conflict(consultations.NOBODY_ELSE_TAKES_PART, code="no-referral")
    if view.patient is None or view.patient.id is None:
        return Conflict(NO_PATIENT, code="no-patient")
    return None


@dataclass(frozen=True)
class Sharing:
    """The patient's consent to sharing their record with the other hospitals taking part in a consultation
    set up without a referral, for a clinician of the patient's hospital to record or withdraw on their word:
    the one standing, if any, and the text to read the patient first."""

    consent: Consent | None
    text: ConsentTemplate


async def sharing_in(session: AsyncSession, who: Principal, view: consultations.ConsultationView, *,
                     locale: str) -> Sharing | None:
    """The patient's consent to sharing as the caller may record it (``record_verbal``) or its withdrawal
    (``withdraw_sharing_in``), in the consultation of ``view`` (``consultations.visible``'s, for the caller);
    None where there is none for them to record: a consultation booked for a referral (its referral holds it),
    without a patient or another hospital taking part, or a caller not of the patient's hospital."""
    refused, consent = await _sharing_standing(session, who, view)
    if refused is not None:
        return None
    return Sharing(consent, await consent_templates.current(session, ConsentPurpose.RECORD_SHARING, locale))


async def withdraw_sharing_in(database: Database, rooms: RoomNotifier | None, who: Principal,
                              consultation_id: int) -> Consent:
    """A clinician of the patient's hospital taking part records, on the patient's word, that they withdraw
    their consent to sharing in this consultation (as ``sharing_in`` lets them record it); 409
    ``consent-withdrawn`` if none stands (withdrawn meanwhile)."""
    async with database.session() as session:
        view = await consultations.visible(session, who, consultation_id, can_join_consultation)
        refused, consent = await _sharing_standing(session, who, view)
    if refused is not None:
        raise refused
    if consent is None or consent.id is None:
        raise Conflict(N_("This consent was already withdrawn."), code="consent-withdrawn")
    return await withdraw(database, rooms, consent.id, f"user:{who.user_id}")


async def _sharing_standing(session: AsyncSession, who: Principal, view: consultations.ConsultationView
                            ) -> tuple[TelemedError | None, Consent | None]:
    """Why the caller may not record sharing here (``_sharing_refused``), or the consent standing (or None)."""
    if (refused := await _sharing_refused(session, who, view)) is not None:
        return refused, None
    assert view.patient is not None and view.patient.id is not None and view.consultation.id is not None
    return None, await standing_in(session, ConsentPurpose.RECORD_SHARING, patient_identity(view.patient.id),
                                   Scope(consultation_id=view.consultation.id))


async def withdraw_as(database: Database, rooms: RoomNotifier | None, who: Principal,
                      consent_id: int) -> ConsentShown:
    """The caller withdraws a consent now: clinicians their own; a patient's on the patient's word, by the
    referring doctor (record sharing of a referral), a clinician of the patient's own hospital taking part
    (record sharing of a consultation set up without one) or by a clinician who may join the consultation
    (video, recording). The withdrawn consent as the caller may see it (``unnamed`` where the patient is
    withheld from them)."""
    withheld = False
    async with database.session() as session:
        consent = await session.get(Consent, consent_id)
        if consent is None:
            raise NotFound(N_("There is no such consent."))
        referral = await session.get(Referral, consent.referral_id) if consent.referral_id else None
        participant = consent.user_id if consent.subject is ConsentSubject.PARTICIPANT else None
        if participant is None and referral is None:
            assert consent.consultation_id is not None
            view = await consultations.visible(session, who, consent.consultation_id, can_join_consultation)
            withheld = view.withheld
            if consent.purpose is ConsentPurpose.RECORD_SHARING:
                require(can_speak_for_patient(who, view.consultation.hospital_id),
                        N_("Only the patient's own hospital records their consent to sharing their record."))
        template = await session.get(ConsentTemplate, consent.template_id)
    require(can_withdraw_consent(who, participant_consent_of=participant,
                                 referring_doctor_id=referral.referring_doctor_id if referral else None,
                                 in_consultation=True),
            N_("Only the person who consented, or the doctor recording their word, withdraws it."))
    assert consent.id is not None
    return seen(await withdraw(database, rooms, consent.id, f"user:{who.user_id}"), template, withheld=withheld)


async def list_for_consultation(session: AsyncSession, who: Principal, consultation_id: int) -> list[ConsentShown]:
    """Every consent given in a consultation, standing or withdrawn, with its text, for its clinicians; on
    another hospital than the patient's, without the patient's consent to sharing their records, the
    patient's own consents say what and when, not who or from where (``unnamed``)."""
    view = await consultations.visible(session, who, consultation_id, can_join_consultation)
    rows = (await session.exec(select(Consent, ConsentTemplate).join(ConsentTemplate).where(
        Consent.consultation_id == consultation_id).order_by(col(Consent.id)))).all()
    return [seen(c, t, withheld=view.withheld) for c, t in rows]


class ConsentShown(Out):
    """A consent as kept: for what (``purpose``), by whom (``subject``, ``identity``, ``name``), how
    (``method``; ``recorded_by`` the doctor of a verbal one), to which text (``template_id``, with its
    ``version`` and ``locale`` where known), when and from where; ``withdrawn_at`` and ``withdrawn_by`` (an
    identity) once withdrawn."""

    id: int
    purpose: ConsentPurpose
    subject: ConsentSubject
    identity: str
    name: str
    consultation_id: int | None
    referral_id: int | None
    method: ConsentMethod
    recorded_by: int | None
    template_id: int | None
    version: int | None
    locale: str | None
    given_at: Instant
    ip: str | None
    user_agent: str | None
    withdrawn_at: Instant | None
    withdrawn_by: str | None


class ConsentList(Out):
    consents: list[ConsentShown]


def shown(consent: Consent, template: ConsentTemplate | None = None) -> ConsentShown:
    assert consent.id is not None
    return ConsentShown(
        id=consent.id, purpose=consent.purpose, subject=consent.subject, identity=consent.identity,
        name=consent.name, consultation_id=consent.consultation_id, referral_id=consent.referral_id,
        method=consent.method, recorded_by=consent.recorded_by, template_id=consent.template_id,
        version=template.version if template else None, locale=template.locale if template else None,
        given_at=consent.given_at, ip=consent.ip, user_agent=consent.user_agent, withdrawn_at=consent.withdrawn_at,
        withdrawn_by=consent.withdrawn_by or None)


def seen(consent: Consent, template: ConsentTemplate | None, *, withheld: bool) -> ConsentShown:
    """``shown``, or for a patient's consent ``unnamed`` where the patient is withheld from the reader."""
    return unnamed(shown(consent, template)) if withheld and consent.subject is ConsentSubject.PATIENT \
        else shown(consent, template)


def unnamed(consent: ConsentShown) -> ConsentShown:
    """A patient's consent with nothing that says who they are: no name, no ``patient:<id>``, no address or
    browser (and the withdrawal's author, the same patient or their doctor, unsaid)."""
    return consent.model_copy(update={"identity": "patient", "name": "", "ip": None, "user_agent": None,
                                      "withdrawn_by": None})


def describe(consent: Consent, template: ConsentTemplate | None = None) -> dict:
    """``shown`` as JSON, for answers still built as dicts around it."""
    return shown(consent, template).model_dump(mode="json")
