"""Who may do what: pure rules over roles, hospitals and consultation membership. No I/O."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Forbidden
from .models import Role

CLINICAL_ROLES = frozenset({Role.COUNTY_DOCTOR, Role.SPECIALIST})
# Coordinators organise consultations for their hospital; they do not sit in on the video.
ORGANISING_ROLES = CLINICAL_ROLES | {Role.COORDINATOR}


@dataclass(frozen=True)
class Principal:
    """The caller, as the rules see it."""

    user_id: int
    role: Role
    hospital_id: int


@dataclass(frozen=True)
class ConsultationScope:
    """What the rules need to know about one consultation."""

    consultation_id: int
    hospital_id: int
    participant_ids: frozenset[int]
    participant_hospital_ids: frozenset[int]


def can_view_consultation(who: Principal, scope: ConsultationScope) -> bool:
    """Participants, and coordinators of a hospital taking part, may see the consultation's record."""
    if who.user_id in scope.participant_ids:
        return True
    return who.role is Role.COORDINATOR and (
        who.hospital_id == scope.hospital_id or who.hospital_id in scope.participant_hospital_ids
    )


def can_join_consultation(who: Principal, scope: ConsultationScope) -> bool:
    """Only clinicians who are participants take a room token this way (patients come by invitation link)."""
    return who.user_id in scope.participant_ids and who.role in CLINICAL_ROLES


def can_access_recordings(who: Principal, scope: ConsultationScope) -> bool:
    """A consultation's recordings: its participants, and auditors (every access is in the audit trail)."""
    return who.user_id in scope.participant_ids or who.role is Role.AUDITOR


def can_create_consultation(who: Principal) -> bool:
    return who.role in ORGANISING_ROLES


def can_add_participant(who: Principal, invitee_role: Role, invitee_hospital_id: int,
                        partner_hospital_ids: frozenset[int]) -> bool:
    """A clinician from the caller's own hospital or one of its partnerships' hospitals."""
    return invitee_role in CLINICAL_ROLES and (
        invitee_hospital_id == who.hospital_id or invitee_hospital_id in partner_hospital_ids
    )


def has_calendar_feed(role: Role) -> bool:
    """Those with appointments: clinicians, and coordinators (every appointment they book)."""
    return role in ORGANISING_ROLES


def can_refer(who: Principal) -> bool:
    """County doctors refer their hospital's patients to a partner hospital."""
    return who.role is Role.COUNTY_DOCTOR


def can_manage_users(who: Principal) -> bool:
    return who.role is Role.ADMIN


def require(allowed: bool, message: str) -> None:
    """Turn a rule's answer into a 403 with a message that says what was refused."""
    if not allowed:
        raise Forbidden(message)
