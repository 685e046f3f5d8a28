"""A patient confirms who they are before consent: their full name and the last four characters of their
national ID, against the invited patient's record. Wrong answers are counted on the invitation, which locks
at ``Settings.identity_attempts``; a right answer gives the browser a proof that the later steps ask for.

What is compared, and how:

* The name, after normalising what a phone keyboard varies: NFKC (full-width Latin letters, digits and
  the ideographic space become their ordinary forms), case, every kind of white space (``张 伟`` is
  ``张伟``), and the middle dots of transliterated names (``·``, ``•``, ``・``).
* The last four characters of the national ID, case-insensitively (the check character may be ``X``),
  against ``Patient.national_id_last4``. The issue asks for a match "against the keyed hash", but the
  hash is of the whole ID (server/patients/records.py): four characters cannot be checked against it
  without asking for all eighteen, which is more of the ID than this step should collect. The last four
  are kept in the clear for people to tell records apart, so they are what is compared.
* Both with ``hmac.compare_digest``, and both always (no early return), so the time an answer takes does
  not say which half was wrong; the answer never says either.
* A record with no national ID on file (a child, a foreign patient) is checked by its name alone; whatever
  is typed for the last four is then not compared. The page tells patients without an ID to leave it empty.

A right answer is not remembered on the invitation (another browser with the same link must answer too)
but in a proof: a signed token for the ``telemed-identity`` audience naming the invitation and the patient,
lasting as long as the link. Browsers keep it in an HttpOnly cookie per invitation; API clients may send it
as ``identity`` in the body instead (as the API takes a bearer token or the session cookie). A right answer
does not reset the count of wrong ones: the limit is for the link's whole life.

Nothing the patient typed goes into the audit trail or a log: a failure's entry says which attempt it was.
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import pydantic
import sqlalchemy as sa
from aiohttp import web
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Forbidden, NotFound, Unauthenticated
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..models import Patient, PatientInvitation, utcnow
from ..outputs import Out
from ..settings import Settings
from .invitations import LOCKED_MESSAGE, Visit

IDENTITY_AUDIENCE = "telemed-identity"
COOKIE_PREFIX = "telemed_identity_"
MISMATCH_MESSAGE = N_("The name or the last four characters of the national ID do not match our record.")
_DOTS = str.maketrans({"•": "·", "・": "·", "‧": "·", "∙": "·", "⋅": "·", "．": "·"})


def _typed(value: object) -> object:
    """What a phone keyboard typed, in ordinary characters (full-width digits and X become ASCII)."""
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


class IdentityAnswer(pydantic.BaseModel):
    """What the patient types on the identity page (or sends to ``POST /api/guest/identity``)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, max_length=100, description="the patient's full name, as registered")
    id_last4: str = pydantic.Field(
        default="", pattern=r"^([0-9]{3}[0-9Xx])?$",
        description="the last four characters of the patient's national ID (a digit or X last); empty if none")

    @pydantic.field_validator("name", "id_last4", mode="before")
    @classmethod
    def _ordinary(cls, value: object) -> object:
        return _typed(value)


def normalise_name(raw: str) -> str:
    """A name as compared: NFKC, case-folded, with no white space and one kind of middle dot."""
    return "".join(unicodedata.normalize("NFKC", raw).casefold().translate(_DOTS).split())


def matches(patient: Patient, answer: IdentityAnswer) -> bool:
    """Whether the answer names this patient: the name, and the last four of the ID where one is on file."""
    name_ok = hmac.compare_digest(normalise_name(patient.name).encode(), normalise_name(answer.name).encode())
    on_file = patient.national_id_last4.upper()
    last4_ok = hmac.compare_digest(on_file.encode(), answer.id_last4.upper().encode())
    return name_ok and (last4_ok or not on_file)  # both computed first: no early exit tells which was wrong


@dataclass(frozen=True)
class Confirmed:
    """A right answer: the proof to keep for this invitation, and until when it lasts."""

    invitation_id: int
    proof: str
    expires_at: datetime

    def shown(self) -> IdentityConfirmed:
        return IdentityConfirmed(identity=self.proof, expires_at=self.expires_at)


class IdentityConfirmed(Out):
    """What a right answer gets: the proof to send as ``identity`` (or leave to the cookie), and its expiry."""

    identity: str
    expires_at: datetime


def _proof(keys: KeyRing, issuer: str, visit: Visit, invitation: PatientInvitation) -> Confirmed:
    now = utcnow()
    ttl = max(60, int((invitation.expires_at - now).total_seconds()))
    token = (AccessToken(issuer=issuer, audience=IDENTITY_AUDIENCE, ttl=ttl)
             .with_identity(visit.identity).with_claims(inv=visit.invitation_id).to_jwt(keys))
    return Confirmed(visit.invitation_id, token, invitation.expires_at)


def locked() -> Unauthenticated:
    return Unauthenticated(LOCKED_MESSAGE, code="link-locked")


async def confirm(session: AsyncSession, visit: Visit, answer: IdentityAnswer, *, settings: Settings,
                  keys: KeyRing) -> Confirmed:
    """The link's holder says who they are. Right: the proof, audited. Wrong: 401 ``identity-mismatch``
    with ``attempts_left``, the failure counted on the invitation and audited; the failure that reaches
    ``settings.identity_attempts`` locks the link (401 ``link-locked``, audited), as does any try after."""
    invitation = await session.get(PatientInvitation, visit.invitation_id)
    if invitation is None:
        raise NotFound(N_("There is no such invitation."))
    if invitation.locked_at is not None:
        raise locked()
    subject, consultation_id = f"invitation:{invitation.id}", visit.consultation.id
    if matches(visit.patient, answer):
        audit.with_commit(session, audit.Entry(visit.identity, "invitation.identity_confirmed", consultation_id,
                                               subject))
        await session.commit()
        return _proof(keys, settings.jwt_issuer, visit, invitation)
    # Counted in the row, not read-modify-written here: two wrong answers at once each add one.
    unlocked = (col(PatientInvitation.id) == invitation.id, col(PatientInvitation.locked_at).is_(None))
    count = (await session.exec(sa.update(PatientInvitation).where(*unlocked)  # type: ignore[call-overload]
                                .values(failed_identity_attempts=col(PatientInvitation.failed_identity_attempts) + 1)
                                .returning(col(PatientInvitation.failed_identity_attempts)))).scalar_one_or_none()
    if count is None:  # another answer locked it meanwhile
        await session.rollback()
        raise locked()
    limit = settings.identity_attempts
    audit.with_commit(session, audit.Entry(visit.identity, "invitation.identity_failed", consultation_id, subject,
                                           {"attempt": count, "limit": limit}))
    if count >= limit:
        await session.exec(sa.update(PatientInvitation).where(*unlocked)  # type: ignore[call-overload]
                           .values(locked_at=utcnow()))
        audit.with_commit(session, audit.Entry(visit.identity, "invitation.locked", consultation_id, subject,
                                               {"attempts": count}))
        await session.commit()
        raise locked()
    await session.commit()
    raise Unauthenticated(MISMATCH_MESSAGE, code="identity-mismatch", attempts_left=limit - count)


def require(keys: KeyRing, issuer: str, visit: Visit, proof: str | None) -> None:
    """403 ``identity-required`` unless ``proof`` is this invitation's, for this patient, and still valid."""
    refused = Forbidden(N_("Please confirm who you are first."), code="identity-required")
    if not proof:
        raise refused
    try:
        claims = TokenVerifier(keys, issuer=issuer, audience=IDENTITY_AUDIENCE).verify(proof)
    except Unauthenticated:
        raise refused from None
    if claims.get("inv") != visit.invitation_id or claims.get("sub") != visit.identity:
        raise refused


def cookie_name(invitation_id: int) -> str:
    """One cookie per invitation: a browser that holds two links keeps both proofs."""
    return f"{COOKIE_PREFIX}{invitation_id}"


def proof_from(request: web.Request, invitation_id: int, sent: str | None = None) -> str | None:
    """The proof a request carries: ``sent`` in its body if any, else its browser's cookie."""
    return sent or request.cookies.get(cookie_name(invitation_id))


def remember(response: web.StreamResponse, confirmed: Confirmed, settings: Settings) -> None:
    """Keep the proof in the patient's browser for as long as the link lasts."""
    response.set_cookie(
        cookie_name(confirmed.invitation_id), confirmed.proof,
        max_age=max(60, int((confirmed.expires_at - utcnow()).total_seconds())),
        httponly=True,  # page scripts never need it
        secure=settings.cookie_secure,
        samesite="Lax",  # sent when the patient opens the link from a message, not on cross-site POSTs
        path="/",
    )
