"""Permission rules, table-driven: who may view, join and create consultations, and whom they may invite."""

from __future__ import annotations

import pytest

from server.models import Role
from server.permissions import (
    ConsultationScope,
    Principal,
    can_add_participant,
    can_create_consultation,
    can_join_consultation,
    can_manage_users,
    can_view_consultation,
)

COUNTY, PROVINCIAL, OTHER_COUNTY, OUTSIDE = 1, 2, 3, 9
SCOPE = ConsultationScope(consultation_id=5, hospital_id=COUNTY, participant_ids=frozenset({10, 20}),
                          participant_hospital_ids=frozenset({COUNTY, PROVINCIAL}))

li = Principal(10, Role.COUNTY_DOCTOR, COUNTY)  # participant
wang = Principal(20, Role.SPECIALIST, PROVINCIAL)  # participant
chen = Principal(30, Role.COUNTY_DOCTOR, OTHER_COUNTY)  # not a participant
zhou = Principal(31, Role.SPECIALIST, PROVINCIAL)  # same hospital as a participant, not one himself
zhao = Principal(40, Role.COORDINATOR, PROVINCIAL)  # coordinator of a participant's hospital
qian = Principal(41, Role.COORDINATOR, OTHER_COUNTY)  # coordinator elsewhere
admin = Principal(50, Role.ADMIN, PROVINCIAL)
auditor = Principal(60, Role.AUDITOR, PROVINCIAL)
# A participant whose role changed to admin keeps the record but not the room.
promoted = Principal(10, Role.ADMIN, COUNTY)


@pytest.mark.parametrize(
    ("who", "view", "join"),
    [
        (li, True, True),
        (wang, True, True),
        (chen, False, False),
        (zhou, False, False),
        (zhao, True, False),
        (qian, False, False),
        (admin, False, False),
        (auditor, False, False),
        (promoted, True, False),
    ],
    ids=["participant doctor", "participant specialist", "other doctor", "colleague of participant",
         "coordinator of participant hospital", "coordinator elsewhere", "admin", "auditor", "promoted"],
)
def test_view_and_join(who: Principal, view: bool, join: bool) -> None:
    assert can_view_consultation(who, SCOPE) is view
    assert can_join_consultation(who, SCOPE) is join


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(li, True), (wang, True), (zhao, True), (admin, False), (auditor, False)],
)
def test_create(who: Principal, allowed: bool) -> None:
    assert can_create_consultation(who) is allowed


@pytest.mark.parametrize(
    ("invitee_role", "invitee_hospital", "allowed"),
    [
        (Role.SPECIALIST, PROVINCIAL, True),  # partner hospital
        (Role.COUNTY_DOCTOR, COUNTY, True),  # own hospital
        (Role.SPECIALIST, OUTSIDE, False),  # no partnership
        (Role.COORDINATOR, PROVINCIAL, False),  # not a clinician
        (Role.AUDITOR, COUNTY, False),
    ],
)
def test_add_participant(invitee_role: Role, invitee_hospital: int, allowed: bool) -> None:
    partners = frozenset({COUNTY, PROVINCIAL, OTHER_COUNTY})
    assert can_add_participant(li, invitee_role, invitee_hospital, partners) is allowed


def test_only_admins_manage_users() -> None:
    assert [can_manage_users(p) for p in (li, zhao, admin, auditor)] == [False, False, True, False]
