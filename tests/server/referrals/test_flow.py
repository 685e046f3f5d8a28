"""The referral state machine, table-driven: every action from every state, by each kind of caller."""

from __future__ import annotations

import dataclasses

import pytest

from server.errors import Forbidden, ValidationFailed
from server.models import ReferralState, Role
from server.referrals.flow import (
    Actor,
    IllegalTransition,
    Redirection,
    ReferralAction,
    ReferralFacts,
    Request,
    decide,
    open_actions,
)

S, A = ReferralState, ReferralAction
COUNTY, PROVINCIAL, CITY, OUTSIDE = 1, 2, 3, 9
PARTNERS = frozenset({COUNTY, PROVINCIAL, CITY})

li = Actor(10, Role.COUNTY_DOCTOR, COUNTY, licence_verified=True)  # the referring doctor
chen = Actor(11, Role.COUNTY_DOCTOR, COUNTY, licence_verified=True)  # a colleague of li's
zhao = Actor(40, Role.COORDINATOR, PROVINCIAL)  # the receiving hospital's coordinator
qian = Actor(41, Role.COORDINATOR, CITY)  # a coordinator of another partner hospital
wang = Actor(20, Role.SPECIALIST, PROVINCIAL, licence_verified=True)  # the specialist asked for, later booked
zhou = Actor(21, Role.SPECIALIST, PROVINCIAL, licence_verified=True)  # another specialist there
auditor = Actor(60, Role.AUDITOR, PROVINCIAL)


def facts(state: ReferralState, *, booked: bool = False) -> ReferralFacts:
    return ReferralFacts(state=state, referring_doctor_id=li.user_id, target_hospital_id=PROVINCIAL,
                         target_specialist_id=wang.user_id, assigned_specialist_id=wang.user_id if booked else None)


def request(action: ReferralAction) -> Request:
    return Request(action, reason="patient moved away", report_signed=True,
                   redirect_to=Redirection(CITY), partner_hospital_ids=PARTNERS)


# (who, action, from state, booked, expected: a state, or the error raised)
CASES = [
    (li, A.SUBMIT, S.DRAFT, False, S.SUBMITTED),
    (li, A.SUBMIT, S.SUBMITTED, False, IllegalTransition),
    (chen, A.SUBMIT, S.DRAFT, False, Forbidden),
    (zhao, A.SUBMIT, S.DRAFT, False, Forbidden),
    (zhao, A.ACCEPT, S.SUBMITTED, False, S.ACCEPTED),
    (zhao, A.ACCEPT, S.REDIRECTED, False, S.ACCEPTED),
    (wang, A.ACCEPT, S.SUBMITTED, False, S.ACCEPTED),  # the specialist asked for may answer directly
    (zhou, A.ACCEPT, S.SUBMITTED, False, Forbidden),
    (qian, A.ACCEPT, S.SUBMITTED, False, Forbidden),  # a coordinator of another hospital
    (li, A.ACCEPT, S.SUBMITTED, False, Forbidden),  # nobody accepts their own referral
    (auditor, A.ACCEPT, S.SUBMITTED, False, Forbidden),
    (zhao, A.ACCEPT, S.DRAFT, False, IllegalTransition),  # not submitted yet
    (zhao, A.ACCEPT, S.COMPLETED, False, IllegalTransition),
    (zhao, A.DECLINE, S.SUBMITTED, False, S.DECLINED),
    (zhao, A.DECLINE, S.ACCEPTED, False, S.DECLINED),
    (zhao, A.DECLINE, S.SCHEDULED, False, IllegalTransition),  # booked: cancel instead
    (li, A.DECLINE, S.SUBMITTED, False, Forbidden),
    (zhao, A.REDIRECT, S.SUBMITTED, False, S.REDIRECTED),
    (wang, A.REDIRECT, S.ACCEPTED, False, S.REDIRECTED),
    (zhao, A.REDIRECT, S.DECLINED, False, IllegalTransition),
    (zhao, A.SCHEDULE, S.ACCEPTED, False, S.SCHEDULED),
    (zhao, A.SCHEDULE, S.SUBMITTED, False, IllegalTransition),  # accept first
    (wang, A.SCHEDULE, S.ACCEPTED, False, Forbidden),  # booking is the coordinators' job
    (qian, A.SCHEDULE, S.ACCEPTED, False, Forbidden),
    (li, A.START, S.SCHEDULED, True, S.IN_CONSULTATION),
    (wang, A.START, S.SCHEDULED, True, S.IN_CONSULTATION),
    (zhou, A.START, S.SCHEDULED, True, Forbidden),
    (li, A.START, S.ACCEPTED, True, IllegalTransition),
    (wang, A.COMPLETE, S.IN_CONSULTATION, True, S.COMPLETED),
    (wang, A.COMPLETE, S.SCHEDULED, True, S.COMPLETED),
    (wang, A.COMPLETE, S.COMPLETED, True, IllegalTransition),
    (wang, A.COMPLETE, S.IN_CONSULTATION, False, Forbidden),  # asked for, but not the one booked
    (li, A.COMPLETE, S.IN_CONSULTATION, True, Forbidden),  # the opinion is the specialist's
    (zhao, A.COMPLETE, S.IN_CONSULTATION, True, Forbidden),
    (dataclasses.replace(wang, licence_verified=False), A.COMPLETE, S.IN_CONSULTATION, True, Forbidden),  # unverified
    (li, A.CANCEL, S.DRAFT, False, S.CANCELLED),
    (li, A.CANCEL, S.SCHEDULED, True, S.CANCELLED),
    (li, A.CANCEL, S.IN_CONSULTATION, True, IllegalTransition),
    (li, A.CANCEL, S.CANCELLED, False, IllegalTransition),
    (zhao, A.CANCEL, S.SCHEDULED, True, S.CANCELLED),
    (zhao, A.CANCEL, S.SUBMITTED, False, Forbidden),  # before accepting, a coordinator declines instead
    (chen, A.CANCEL, S.SUBMITTED, False, Forbidden),
]


@pytest.mark.parametrize(("who", "action", "state", "booked", "expected"), CASES)
def test_transition(who: Actor, action: ReferralAction, state: ReferralState, booked: bool, expected) -> None:
    """Each row: an action by one kind of caller from one state, booked or not, either leads to the expected state
    and is among the caller's open actions, or raises the expected error (forbidden to this caller, or illegal from
    this state) and is not offered."""
    if isinstance(expected, ReferralState):
        assert decide(who, facts(state, booked=booked), request(action)) is expected
        assert action in open_actions(who, facts(state, booked=booked))
    else:
        with pytest.raises(expected):
            decide(who, facts(state, booked=booked), request(action))
        assert action not in open_actions(who, facts(state, booked=booked))


@pytest.mark.parametrize("state", list(ReferralState))
def test_terminal_states_allow_nothing(state: ReferralState) -> None:
    """Each row, one per state: the referring doctor, the receiving coordinator and the booked specialist are offered
    no action at all exactly when the referral is declined, completed or cancelled."""
    actions = {a for who in (li, zhao, wang) for a in open_actions(who, facts(state, booked=True))}
    assert (actions == set()) is (state in (S.DECLINED, S.COMPLETED, S.CANCELLED))


def test_illegal_transition_says_what_and_from_where() -> None:
    """An action the referral's state does not allow is refused with 409, a sentence naming the state and the action,
    and both in the details, so a client can say why."""
    with pytest.raises(IllegalTransition) as caught:
        decide(zhao, facts(S.COMPLETED), request(A.ACCEPT))
    assert caught.value.status == 409
    assert caught.value.message == "A referral that is completed cannot be accepted."
    assert caught.value.details == {"state": "completed", "action": "accept"}


@pytest.mark.parametrize(("action", "change", "field"), [
    (A.DECLINE, {"reason": "  "}, "reason"),
    (A.CANCEL, {"reason": ""}, "reason"),
    (A.COMPLETE, {"report_signed": False}, "report"),  # only signing the report completes a referral
    (A.REDIRECT, {"redirect_to": None}, "redirect_to"),
    (A.REDIRECT, {"redirect_to": Redirection(OUTSIDE)}, "redirect_to.hospital_id"),
    (A.REDIRECT, {"redirect_to": Redirection(PROVINCIAL, wang.user_id)}, "redirect_to"),  # where it is already
])
def test_missing_or_wrong_details_name_the_field(action: ReferralAction, change: dict, field: str) -> None:
    """Each row: a decline or cancellation without a reason, completing without a signed report, or a redirection
    with no target, to a hospital outside the partnership or to where the referral already is, is refused naming the
    field at fault."""
    who, state = {A.DECLINE: (zhao, S.SUBMITTED), A.CANCEL: (li, S.SUBMITTED), A.COMPLETE: (wang, S.IN_CONSULTATION),
                  A.REDIRECT: (zhao, S.SUBMITTED)}[action]
    base = request(action)
    changed = Request(action, **{**{k: getattr(base, k) for k in ("reason", "report_signed", "redirect_to",
                                                                   "partner_hospital_ids")}, **change})
    with pytest.raises(ValidationFailed) as caught:
        decide(who, facts(state, booked=True), changed)
    assert field in caught.value.details["fields"]


def test_redirect_to_another_specialist_of_the_same_hospital_is_allowed() -> None:
    """A coordinator may redirect a submitted referral to another specialist of the same hospital; only a redirection
    to where it already is is refused."""
    to = Request(A.REDIRECT, reason="Dr Zhou leads the arrhythmia clinic", redirect_to=Redirection(PROVINCIAL, 21),
                 partner_hospital_ids=PARTNERS)
    assert decide(zhao, facts(S.SUBMITTED), to) is S.REDIRECTED
