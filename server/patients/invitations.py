"""Patient invitations: a signed link that lets one patient into one consultation, with no account.

The link is a JWT for the ``telemed-invitation`` audience naming the invitation, the patient and the
consultation. Its signature and expiry are checked first; then its row, which a clinician can revoke
before it expires. Every use of the link checks both, so a revoked link stops working at once.

Creating, listing and revoking invitations are the operations here: participating clinicians only
(``permissions.can_join_consultation``), each change audited in its own transaction, and a revocation
told to the room so that a patient in it by that link leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.events import Expelling
from signaling.grants import GUEST, RoomClaims, room_id_for
from signaling.messages import DeviceCheck

from .. import idempotency
from ..audit import trail as audit
from ..consent import records as consents
from ..consent import templates as consent_templates
from ..consent.records import Consenter, ConsentShown, Scope, patient_identity
from ..consent.templates import TemplateShown
from ..consultations import service as consultations
from ..consultations.recordings import consent_on_record
from ..consultations.room_notifier import RoomNotifier
from ..consultations.room_window import RoomWindow
from ..errors import N_, Conflict, Forbidden, NotFound, Unauthenticated
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..models import (
    ConsentPurpose,
    ConsentSubject,
    Consultation,
    ConsultationStatus,
    Hospital,
    Patient,
    PatientInvitation,
    Referral,
    User,
    utcnow,
)
from ..outputs import Instant, Out
from ..permissions import Principal, can_join_consultation
from ..settings import Settings

INVITATION_AUDIENCE = "telemed-invitation"
LOCKED_MESSAGE = N_("This link is locked after too many wrong answers. Please contact your clinic for a new link.")


@dataclass(frozen=True)
class Visit:
    """What a valid invitation link lets its holder be: this patient, in this consultation."""

    invitation_id: int
    consultation: Consultation
    patient: Patient

    @property
    def identity(self) -> str:
        assert self.patient.id is not None
        return patient_identity(self.patient.id)

    @property
    def name(self) -> str:
        return self.patient.name

    @property
    def consenter(self) -> Consenter:
        return Consenter(ConsentSubject.PATIENT, self.identity, self.patient.name, patient_id=self.patient.id)


def invitation_token(keys: KeyRing, issuer: str, invitation: PatientInvitation) -> str:
    assert invitation.id is not None
    ttl = int((invitation.expires_at - invitation.created_at).total_seconds())
    return (
        AccessToken(issuer=issuer, audience=INVITATION_AUDIENCE, ttl=ttl)
        .with_identity(patient_identity(invitation.patient_id))
        .with_claims(inv=invitation.id, consultation=invitation.consultation_id)
        .to_jwt(keys, now=invitation.created_at.timestamp())
    )


async def open_visit(session: AsyncSession, keys: KeyRing, issuer: str, token: str) -> Visit:
    """The visit a link opens; Unauthenticated if it is forged, expired, revoked, locked or its consultation
    is over. Who holds it is not checked here: ``identity_check.require`` asks for that where it matters."""
    claims = TokenVerifier(keys, issuer=issuer, audience=INVITATION_AUDIENCE).verify(token)
    invitation_id, consultation_id = claims.get("inv"), claims.get("consultation")
    if not isinstance(invitation_id, int) or not isinstance(consultation_id, int):
        raise Unauthenticated("The invitation link is incomplete.", code="token-invalid")
    invitation = await session.get(PatientInvitation, invitation_id)
    if invitation is None or invitation.consultation_id != consultation_id \
            or patient_identity(invitation.patient_id) != claims["sub"]:
        raise Unauthenticated("The invitation link is not valid.", code="token-invalid")
    if invitation.revoked_at is not None:
        raise Unauthenticated(N_("This invitation was withdrawn. Please ask the doctor for a new one."),
                              code="link-revoked")
    if invitation.locked_at is not None:  # too many wrong answers to the identity check (identity_check.py)
        raise Unauthenticated(LOCKED_MESSAGE, code="link-locked")
    consultation = await session.get(Consultation, consultation_id)
    patient = await session.get(Patient, invitation.patient_id)
    if consultation is None or patient is None or consultation.patient_id != patient.id:
        raise Unauthenticated("The invitation link is not valid.", code="token-invalid")
    if consultation.status in (ConsultationStatus.COMPLETED, ConsultationStatus.CANCELLED):
        raise Unauthenticated(N_("This consultation has ended; the link no longer works."), code="link-closed")
    return Visit(invitation_id, consultation, patient)


def expiry(now: datetime, room_closes: datetime | None, default_hours: int) -> datetime:
    """When a new invitation expires: when its room stops admitting, if that is known and later than now."""
    fallback = now + timedelta(hours=default_hours)
    if room_closes is None or room_closes <= now:
        return fallback
    return min(room_closes, now + timedelta(days=31))


async def create(session: AsyncSession, who: Principal, consultation_id: int, *, settings: Settings,
                 keys: KeyRing, reply: idempotency.Reply[tuple[PatientInvitation, str]] | None = None,
                 ) -> tuple[PatientInvitation, str]:
    """A participating clinician invites the consultation's patient: the invitation, audited with it, and
    its link's token. The link expires when the room stops admitting (``expiry``). Given a ``reply``, the
    request's idempotency key and answer (the link among it) are stored with the invitation."""
    await idempotency.claim(session, reply)
    consultation = (await consultations.visible(session, who, consultation_id, can_join_consultation)).consultation
    if consultation.patient_id is None:
        raise Conflict(N_("This consultation has no patient to invite."), code="no-patient")
    now = utcnow().replace(microsecond=0)
    invitation = PatientInvitation(consultation_id=consultation_id, patient_id=consultation.patient_id,
                                   created_by=who.user_id, created_at=now,
                                   expires_at=expiry(now, RoomWindow.of(consultation, settings).closes,
                                                     settings.invitation_hours))
    session.add(invitation)
    audit.with_commit(session, lambda: audit.Entry(
        f"user:{who.user_id}", "invitation.created", consultation_id, f"invitation:{invitation.id}",
        {"patient": invitation.patient_id, "expires_at": invitation.expires_at.isoformat()}))
    await session.flush()
    made = invitation, invitation_token(keys, settings.jwt_issuer, invitation)
    # Nothing is read back after the commit: a database lost just after it cannot turn a done invitation
    # into an error (the session keeps what it wrote).
    await idempotency.commit(session, reply, made)
    return made


async def list_for(session: AsyncSession, who: Principal, consultation_id: int) -> list[PatientInvitation]:
    """A consultation's invitations, oldest first, to its participating clinicians."""
    await consultations.visible(session, who, consultation_id, can_join_consultation)
    return list((await session.exec(select(PatientInvitation).where(
        PatientInvitation.consultation_id == consultation_id).order_by(col(PatientInvitation.id)))).all())


async def revoke(session: AsyncSession, who: Principal, invitation_id: int, rooms: RoomNotifier) -> PatientInvitation:
    """Revoke a link at once, audited: it opens nothing more, and a patient in the room by it (or waiting)
    leaves. Revoking it again changes nothing but tells the room again."""
    invitation = await session.get(PatientInvitation, invitation_id)
    if invitation is None:
        raise NotFound(N_("There is no such invitation."))
    await consultations.visible(session, who, invitation.consultation_id, can_join_consultation)
    if invitation.revoked_at is None:
        invitation.revoked_at, invitation.revoked_by = utcnow(), who.user_id
        session.add(invitation)
        audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "invitation.revoked",
                                               invitation.consultation_id, f"invitation:{invitation.id}"))
        await session.commit()
        await session.refresh(invitation)
    await rooms.tell(invitation.consultation_id, Expelling(
        identity=patient_identity(invitation.patient_id), reason="invitation-revoked", invitation=invitation.id))
    return invitation


@dataclass(frozen=True)
class Shareable:
    """A link still to send: the invitation, its link's token, and who sent it from which hospital."""

    invitation: PatientInvitation
    token: str
    inviter: User
    inviter_hospital: Hospital


async def shareable(session: AsyncSession, who: Principal, consultation_id: int, *, settings: Settings,
                    keys: KeyRing) -> list[Shareable]:
    """The consultation's invitations still working (not revoked, locked or expired), newest first, with their
    links, to its participating clinicians: the same links ``create`` handed out, to send again."""
    now = utcnow()
    active = [i for i in await list_for(session, who, consultation_id)
              if i.revoked_at is None and i.locked_at is None and i.expires_at > now]
    found = []
    for invitation in reversed(active):
        inviter = await session.get(User, invitation.created_by)
        assert inviter is not None
        hospital = await session.get(Hospital, inviter.hospital_id)
        assert hospital is not None
        found.append(Shareable(invitation, invitation_token(keys, settings.jwt_issuer, invitation), inviter, hospital))
    return found


async def locked_for(session: AsyncSession, who: Principal, consultation_id: int) -> list[PatientInvitation]:
    """The consultation's links locked by wrong answers to the identity check and not yet expired or
    withdrawn, newest first: the clinician sees them, to send the patient a new link."""
    now = utcnow()
    return [i for i in reversed(await list_for(session, who, consultation_id))
            if i.locked_at is not None and i.revoked_at is None and i.expires_at > now]


class InvitationShown(Out):
    """A patient's link as the clinicians see it: ``active`` while it still opens (not revoked, not locked by
    wrong answers to its identity check, not expired)."""

    id: int
    consultation_id: int
    patient_id: int
    created_by: int
    created_at: Instant
    expires_at: Instant
    revoked_at: Instant | None
    failed_identity_attempts: int
    locked_at: Instant | None
    active: bool


class InvitationCreated(InvitationShown):
    """A new link, with its address (``/visit/<token>``): shown this once, never stored."""

    url: str


class InvitationList(Out):
    invitations: list[InvitationShown]


class ConsentAsked(Out):
    """One purpose a patient is asked about: its current text, whether it must be agreed to before the visit,
    and their consent if it stands."""

    purpose: ConsentPurpose
    template: TemplateShown
    required: bool
    consent: ConsentShown | None


class ConsentsAsked(Out):
    consents: list[ConsentAsked]


def shown(invitation: PatientInvitation) -> InvitationShown:
    assert invitation.id is not None
    return InvitationShown(
        id=invitation.id, consultation_id=invitation.consultation_id, patient_id=invitation.patient_id,
        created_by=invitation.created_by, created_at=invitation.created_at, expires_at=invitation.expires_at,
        revoked_at=invitation.revoked_at, failed_identity_attempts=invitation.failed_identity_attempts,
        locked_at=invitation.locked_at,
        active=invitation.revoked_at is None and invitation.locked_at is None and invitation.expires_at > utcnow())


async def scope_of(session: AsyncSession, visit: Visit, purpose: ConsentPurpose) -> Scope:
    """What a patient's consent for this purpose covers: the consultation, or for record sharing the
    referral the consultation was booked for, or the consultation itself when clinicians of another hospital
    take part without a referral (409 ``no-referral`` if neither: nothing is shared)."""
    if purpose is not ConsentPurpose.RECORD_SHARING:
        return Scope(consultation_id=visit.consultation.id)
    referral = (await session.exec(select(Referral).where(
        Referral.consultation_id == visit.consultation.id))).first()
    if referral is not None:
        return Scope(consultation_id=visit.consultation.id, referral_id=referral.id)
    if not await consultations.others_take_part(session, visit.consultation):
        raise Conflict(consultations.NOBODY_ELSE_TAKES_PART, code="no-referral")
    return Scope(consultation_id=visit.consultation.id)


async def consents_asked(session: AsyncSession, visit: Visit, locale: str) -> list[ConsentAsked]:
    """Each purpose the patient is asked about: its current text and whether their consent stands (record
    sharing only where the consultation was booked for a referral, or clinicians of another hospital take
    part)."""
    referral = (await session.exec(select(Referral).where(
        Referral.consultation_id == visit.consultation.id))).first()
    shared = referral is not None or await consultations.others_take_part(session, visit.consultation)
    answers = []
    for purpose in ConsentPurpose:
        if purpose is ConsentPurpose.RECORD_SHARING and not shared:
            continue
        template = await consent_templates.current(session, purpose, locale)
        by_referral = purpose is ConsentPurpose.RECORD_SHARING and referral is not None
        found = await consents.standing_in(session, purpose, visit.identity, Scope(
            consultation_id=visit.consultation.id, referral_id=referral.id if by_referral and referral else None))
        answers.append(ConsentAsked(purpose=purpose, template=consent_templates.shown(template),
                                    required=purpose is ConsentPurpose.VIDEO,
                                    consent=consents.shown(found) if found else None))
    return answers


async def room_claims(session: AsyncSession, visit: Visit, device_check: DeviceCheck | None, *,
                      settings: Settings) -> RoomClaims:
    """The patient's pass into the waiting room: only while the room is open, and only with their consent
    to the video visit standing. The device check's findings travel with it to the doctor's lobby list."""
    consultation_id = visit.consultation.id
    assert consultation_id is not None
    RoomWindow.of(visit.consultation, settings).check(utcnow())
    video = await consents.standing(session, ConsentPurpose.VIDEO, identity=visit.identity,
                                    consultation_id=consultation_id)
    if video is None:
        raise Forbidden(N_("Please read and agree to the video consultation consent first."), code="consent-required")
    recording = await consent_on_record(session, consultation_id, visit.identity)
    return RoomClaims(identity=visit.identity, room=room_id_for(consultation_id), name=visit.name, role="patient",
                      user_id=None, grants=GUEST, consent_id=recording, patient=visit.identity,
                      patient_consent_id=recording, device_check=device_check, invitation=visit.invitation_id)
