"""A referral's life, as a pure state machine: which action is open to whom, from which state. No I/O.

A county doctor drafts and submits a referral to a hospital of the partnership (optionally naming a
specialist). That hospital's coordinators, or the specialist named, accept, decline (with a reason)
or redirect it to another hospital or specialist of the partnership, whose turn it then is. An
accepted referral is scheduled by booking a slot, goes into consultation when the call starts, and is
completed by the specialist's signed consultation report (server/reports/), which goes back to the referring
doctor: there is no completing without one. Until the
consultation starts the referring doctor may cancel (with a reason); the receiving coordinators may
too, once they have accepted it.

``decide`` answers with the new state or raises: ``Forbidden`` (403) when the caller may never take
that action on this referral, ``IllegalTransition`` (409) when they may, but not from its present state.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import N_, Conflict, ErrorCode, Forbidden, ValidationFailed
from ..models import ReferralAction, ReferralState
from ..permissions import Principal, ReferralScope, may_act_on_referral

S, A = ReferralState, ReferralAction

# From which states each action may be taken, and where it leads.
TRANSITIONS: dict[ReferralAction, tuple[frozenset[ReferralState], ReferralState]] = {
    A.SUBMIT: (frozenset({S.DRAFT}), S.SUBMITTED),
    A.ACCEPT: (frozenset({S.SUBMITTED, S.REDIRECTED}), S.ACCEPTED),
    A.DECLINE: (frozenset({S.SUBMITTED, S.REDIRECTED, S.ACCEPTED}), S.DECLINED),
    A.REDIRECT: (frozenset({S.SUBMITTED, S.REDIRECTED, S.ACCEPTED}), S.REDIRECTED),
    A.SCHEDULE: (frozenset({S.ACCEPTED}), S.SCHEDULED),
    A.START: (frozenset({S.SCHEDULED}), S.IN_CONSULTATION),
    A.COMPLETE: (frozenset({S.SCHEDULED, S.IN_CONSULTATION}), S.COMPLETED),
    A.CANCEL: (frozenset({S.DRAFT, S.SUBMITTED, S.REDIRECTED, S.ACCEPTED, S.SCHEDULED}), S.CANCELLED),
}
NEEDS_REASON = frozenset({A.DECLINE, A.CANCEL, A.REDIRECT})
WAITING_FOR_RECEIVER = frozenset({S.SUBMITTED, S.REDIRECTED})  # a coordinator's inbox


Actor = Principal  # who acts on a referral, as the permission rules see them


@dataclass(frozen=True)
class ReferralFacts:
    """What the rules need to know about one referral."""

    state: ReferralState
    referring_doctor_id: int
    target_hospital_id: int
    target_specialist_id: int | None = None
    assigned_specialist_id: int | None = None  # the specialist of the booked appointment


@dataclass(frozen=True)
class Redirection:
    hospital_id: int
    specialist_id: int | None = None


@dataclass(frozen=True)
class Request:
    action: ReferralAction
    reason: str = ""
    report_signed: bool = False  # only signing the report (server/reports/service.py) completes a referral
    redirect_to: Redirection | None = None
    partner_hospital_ids: frozenset[int] = frozenset()  # where a redirect may go


def may(actor: Actor, facts: ReferralFacts, action: ReferralAction) -> bool:
    """Whether the caller's role and hospital allow ``action`` on this referral at all (any state): the
    rule is ``permissions.may_act_on_referral``."""
    scope = ReferralScope(referring_doctor_id=facts.referring_doctor_id, target_hospital_id=facts.target_hospital_id,
                          target_specialist_id=facts.target_specialist_id,
                          booked_specialist_id=facts.assigned_specialist_id,
                          sent=facts.state is not ReferralState.DRAFT)  # (no action's rule looks at it)
    return may_act_on_referral(actor, scope, facts.state, action)


_REFUSED = {
    A.SUBMIT: N_("Only the referring doctor submits a referral."),
    A.ACCEPT: N_("Only the receiving hospital's coordinators, or the specialist asked for, accept a referral."),
    A.DECLINE: N_("Only the receiving hospital's coordinators, or the specialist asked for, decline a referral."),
    A.REDIRECT: N_("Only the receiving hospital's coordinators, or the specialist asked for, redirect a referral."),
    A.SCHEDULE: N_("Only the receiving hospital's coordinators book a referral's appointment."),
    A.START: N_("Only the referring doctor and the booked specialist start the consultation."),
    A.COMPLETE: N_("Only the booked specialist completes a referral, by signing its report."),
    A.CANCEL: N_("Only the referring doctor cancels a referral (the receiving coordinators once they accepted it)."),
}


class IllegalTransition(Conflict):
    kind = ErrorCode.ILLEGAL_TRANSITION


def decide(actor: Actor, facts: ReferralFacts, request: Request) -> ReferralState:
    """The state ``request`` leads to, if ``actor`` may make it now."""
    action = request.action
    if not may(actor, facts, action):
        raise Forbidden(_REFUSED[action])
    sources, target = TRANSITIONS[action]
    if facts.state not in sources:
        raise IllegalTransition(f"A referral that is {facts.state.value} cannot be {_past(action)}.",
                                state=facts.state.value, action=action.value)
    if action in NEEDS_REASON and not request.reason.strip():
        raise ValidationFailed({"reason": N_("give a reason, for the referring doctor's record")})
    if action is A.COMPLETE and not request.report_signed:
        raise ValidationFailed({"report": N_("a referral is completed by signing its consultation report")})
    if action is A.REDIRECT:
        to = request.redirect_to
        if to is None:
            raise ValidationFailed({"redirect_to": N_("name the hospital (and optionally the specialist) to send it "
                                                      "to")})
        if to.hospital_id not in request.partner_hospital_ids:
            raise ValidationFailed({"redirect_to.hospital_id": N_("not a hospital of this referral's partnership")})
        if to.hospital_id == facts.target_hospital_id and to.specialist_id in (None, facts.target_specialist_id):
            raise ValidationFailed({"redirect_to": N_("that is where the referral already is")})
    return target


def _past(action: ReferralAction) -> str:
    return {A.SUBMIT: "submitted", A.ACCEPT: "accepted", A.DECLINE: "declined", A.REDIRECT: "redirected",
            A.SCHEDULE: "scheduled", A.START: "started", A.COMPLETE: "completed", A.CANCEL: "cancelled"}[action]


def open_actions(actor: Actor, facts: ReferralFacts) -> list[ReferralAction]:
    """What the caller may do next, for the page's buttons."""
    return [a for a, (sources, _) in TRANSITIONS.items() if facts.state in sources and may(actor, facts, a)]
