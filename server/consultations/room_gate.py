"""The server's side of signaling's ``Gate``: room tokens are verified with this deployment's keys, and a
patient is let into the room (and admitted from its lobby) only while their invitation and their consent
to the video visit stand, a clinician only while they are one of the consultation's participants, their
account is active and the session their room token came from stands, however fresh the token; and a
clinician is shown the chat said before they came only while the patient's records are not withheld from
their hospital."""

from __future__ import annotations

import logging

from signaling.errors import ConsentWithdrawn, InvalidToken, InvitationRevoked, NoLongerParticipant, SessionEnded
from signaling.grants import Granted, RoomClaims

from ..audit import trail as audit
from ..consent.records import standing
from ..db import Database, unreachable
from ..errors import NotFound, TelemedError, Unauthenticated
from ..identity.tokens import KeyRing
from ..models import ConsentPurpose, PatientInvitation, User
from ..permissions import can_join_consultation, principal_of
from .room_tokens import clinician_grants, verify_room_token
from .service import load, visible

log = logging.getLogger(__name__)


class RoomGate:
    """One consultation's gate, for one signaling connection."""

    def __init__(self, database: Database, keys: KeyRing, issuer: str, consultation_id: int, *,
                 batcher: audit.Batcher | None = None) -> None:
        self.database, self.keys, self.issuer, self.consultation_id = database, keys, issuer, consultation_id
        self.batcher = batcher

    def verify(self, token: str) -> RoomClaims:
        try:
            return verify_room_token(self.keys, self.issuer, token)
        except Unauthenticated as exc:
            raise InvalidToken(exc.message) from None

    async def seated(self, claims: RoomClaims, participant_id: str) -> None:
        """Who was in the consultation, for the record: each join admitted to the room (not reconnects).
        With a batcher (the app's), queued, not awaited: a crowd joining at once is written in a few
        transactions, not one each."""
        entry = audit.Entry(claims.identity, "consultation.joined", self.consultation_id,
                            f"participant:{participant_id}", {"role": claims.role, "invitation": claims.invitation})
        if self.batcher is not None:
            self.batcher.add(entry)
        else:
            await audit.record(self.database, actor=entry.actor, action=entry.action,
                               consultation_id=entry.consultation_id, subject=entry.subject, detail=entry.detail)

    async def check(self, identity: str, invitation: int | None, generation: int | None = None) -> Granted | None:
        if invitation is None:
            return await self._still_participant(identity, generation)
        async with self.database.session() as session:
            link = await session.get(PatientInvitation, invitation)
            if link is None or link.revoked_at is not None or link.consultation_id != self.consultation_id:
                raise InvitationRevoked("Your invitation to this consultation was withdrawn.")
            video = await standing(session, ConsentPurpose.VIDEO, identity=identity,
                                   consultation_id=self.consultation_id)
        if video is None:
            raise ConsentWithdrawn("You withdrew your consent to the video consultation.")
        return None

    async def shows_history(self, identity: str) -> bool:
        """A clinician of another hospital than the patient's is not shown the chat said before they came while
        the patient's records are withheld from that hospital (``ConsultationView.withheld``), nor anyone while
        the database cannot say (a patient sees the chat from their admission on whatever this answers)."""
        kind, _, number = identity.partition(":")
        if kind != "user" or not number.isascii() or not number.isdigit():
            return True
        try:
            async with self.database.session() as session:
                user = await session.get(User, int(number))
                if user is None:
                    return False
                view = await visible(session, principal_of(user), self.consultation_id, can_join_consultation)
        except TelemedError:
            return False
        except Exception as exc:
            if not unreachable(exc):
                raise
            log.warning("room gate: database unreachable; %s is not shown the chat said before they came", identity)
            return False
        return not view.withheld

    async def _still_participant(self, identity: str, generation: int | None) -> Granted | None:
        """A clinician's room token is only issued to participants and lasts minutes; one taken off the
        consultation since (an appointment moved to another specialist), disabled or made other than a clinician
        is not let in with it, nor with a token of an earlier session generation (``generation``, the token's)
        than the account's: its password was reset or changed since. Admitting from the lobby asks without a
        generation: then a password an administrator set and the user has not replaced yet says the same (while
        it stands, no room token can be issued to them: ``identity/auth.py`` sends them to change it first).
        What they may do is the account's now, not the token's (a licence verified, or no longer, since it was
        issued)."""
        kind, _, number = identity.partition(":")
        if kind != "user" or not number.isascii() or not number.isdigit():
            return None
        try:
            async with self.database.session() as session:
                user = await session.get(User, int(number))
                scope = (await load(session, self.consultation_id)).scope if user is not None else None
        except NotFound:
            scope = None  # (the consultation is gone)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # A database outage must not cost a clinician their call (a resume after their node died): their
            # token was issued to a participant minutes ago, and a removal sends them away as it happens.
            log.warning("room gate: database unreachable; %s let in on their room token", identity)
            return None
        if user is None or scope is None or not user.is_active or not can_join_consultation(principal_of(user), scope):
            raise NoLongerParticipant("You are no longer a participant of this consultation.")
        if user.must_change_password or generation not in (None, user.session_generation):
            raise SessionEnded("Your session has ended: your password was reset or changed. Please log in again.")
        return Granted(clinician_grants(principal_of(user)), user.grants_revision)
