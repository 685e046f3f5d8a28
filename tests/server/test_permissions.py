"""Permission rules, table-driven: who may view, join and create consultations, and whom they may invite; what an
unverified licence keeps a clinician from (hosting, being booked, signing)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network

import pytest

from server.errors import Forbidden, Unauthenticated
from server.models import ReferralState, Role, User
from server.permissions import (
    LICENCE_UNVERIFIED,
    ConsultationScope,
    Principal,
    ReferralScope,
    awaits_licence,
    can_access_recordings,
    can_acknowledge_report,
    can_add_participant,
    can_administer,
    can_attach,
    can_be_booked,
    can_create_consultation,
    can_edit_hours,
    can_edit_referral_request,
    can_handle_patients,
    can_host,
    can_join_consultation,
    can_list_consultations,
    can_manage_holds,
    can_read_audit,
    can_refer,
    can_see_colleague,
    can_sign_report,
    can_speak_for_patient,
    can_supervise,
    can_view_consultation,
    can_view_referral,
    can_withdraw_consent,
    has_calendar_feed,
    has_referral_inbox,
    has_referrals,
    is_report_signer,
    joins_what_they_plan,
    keeps_clinic_hours,
    needs_licence,
    oversees,
    principal_of,
    require_licence,
    require_metrics_access,
)
from server.settings import Secret

COUNTY, PROVINCIAL, OTHER_COUNTY, OUTSIDE = 1, 2, 3, 9
SCOPE = ConsultationScope(consultation_id=5, hospital_id=COUNTY, participant_ids=frozenset({10, 20}),
                          participant_hospital_ids=frozenset({COUNTY, PROVINCIAL}))

# The clinicians' licences are verified, unless said (``unverified``).
li = Principal(10, Role.COUNTY_DOCTOR, COUNTY, licence_verified=True)  # participant
wang = Principal(20, Role.SPECIALIST, PROVINCIAL, licence_verified=True)  # participant
chen = Principal(30, Role.COUNTY_DOCTOR, OTHER_COUNTY, licence_verified=True)  # not a participant
zhou = Principal(31, Role.SPECIALIST, PROVINCIAL, licence_verified=True)  # same hospital as a participant, not one
zhao = Principal(40, Role.COORDINATOR, PROVINCIAL)  # coordinator of a participant's hospital
qian = Principal(41, Role.COORDINATOR, OTHER_COUNTY)  # coordinator elsewhere
admin = Principal(50, Role.ADMIN, PROVINCIAL)
auditor = Principal(60, Role.AUDITOR, PROVINCIAL)
supervisor = Principal(70, Role.SUPERVISOR, PROVINCIAL)  # a health commission's; oversees partnership 1
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
    """Each row: who may see a consultation's record and who may join its room. Participants see and join; a coordinator
    of a participating hospital sees but does not join; a doctor elsewhere, a participant's colleague, a coordinator
    elsewhere, an administrator and an auditor do neither; a participant since made an administrator keeps the record
    but not the room."""
    assert can_view_consultation(who, SCOPE) is view
    assert can_join_consultation(who, SCOPE) is join


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(li, True), (wang, True), (zhao, True), (admin, False), (auditor, False)],
)
def test_create(who: Principal, allowed: bool) -> None:
    """Each row: clinicians and coordinators may set up a consultation; administrators and auditors may not."""
    assert can_create_consultation(who) is allowed


@pytest.mark.parametrize(("who", "joins"), [(li, True), (wang, True), (zhao, False), (admin, False), (auditor, False)])
def test_who_takes_part_in_what_they_plan(who: Principal, joins: bool) -> None:
    """Clinicians sit in on the consultations they set up (and may invite the patient); coordinators do not."""
    assert joins_what_they_plan(who) is joins


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
    """Each row: whom a county doctor may invite: a clinician of a partner hospital or of their own; not a specialist of
    a hospital outside the partnerships, nor a coordinator or an auditor, who are no clinicians."""
    partners = frozenset({COUNTY, PROVINCIAL, OTHER_COUNTY})
    assert can_add_participant(li, invitee_role, invitee_hospital, partners) is allowed


@pytest.mark.parametrize(("who", "allowed"), [
    (li, False), (wang, False), (zhao, False), (qian, False), (auditor, False),
    (admin, True),
    (Principal(51, Role.ADMIN, COUNTY), True),  # an administrator working at a county hospital: the same powers
    (promoted, True),
])
def test_only_administrators_run_the_platform(who: Principal, allowed: bool) -> None:
    """Accounts, hospitals, departments, specialties and partnerships: administrators, whatever their hospital."""
    assert can_administer(who) is allowed


REFERRAL = ReferralScope(referring_doctor_id=10, target_hospital_id=PROVINCIAL, target_specialist_id=20,
                         booked_specialist_id=None, sent=True)
BOOKED = ReferralScope(referring_doctor_id=10, target_hospital_id=PROVINCIAL, target_specialist_id=None,
                       booked_specialist_id=31, sent=True)
DRAFT = ReferralScope(referring_doctor_id=10, target_hospital_id=PROVINCIAL, target_specialist_id=20,
                      booked_specialist_id=None, sent=False)


@pytest.mark.parametrize(("who", "scope", "view", "attach"), [
    (li, REFERRAL, True, True),  # referred it
    (wang, REFERRAL, True, False),  # asked for by name
    (zhou, REFERRAL, False, False),  # the receiving hospital's other specialist
    (zhou, BOOKED, True, False),  # ... once booked
    (zhao, REFERRAL, True, False),  # the receiving hospital's coordinator
    (qian, REFERRAL, False, False),  # a coordinator elsewhere
    (chen, REFERRAL, False, False),  # another county doctor
    (admin, REFERRAL, False, False),
    (auditor, REFERRAL, False, False),
    (li, DRAFT, True, True),  # a draft is its doctor's alone...
    (wang, DRAFT, False, False),  # ... not yet the specialist's it names
    (zhao, DRAFT, False, False),  # ... nor the receiving hospital's coordinator's
])
def test_who_sees_a_referral_and_adds_to_it(who: Principal, scope: ReferralScope, view: bool, attach: bool) -> None:
    """Referrals are seen by the referrer, the receiving coordinators and the specialists asked for or
    booked, a draft only by its referrer; only the referrer attaches results."""
    assert can_view_referral(who, scope) is view
    assert can_attach(who, scope) is attach


@pytest.mark.parametrize(("who", "state", "allowed"), [
    (li, ReferralState.DRAFT, True),  # the referrer, before sending it
    (li, ReferralState.SUBMITTED, False),  # once sent, it is what the receiving side decided on
    (li, ReferralState.DECLINED, False),
    (wang, ReferralState.DRAFT, False),  # asked for by name, but it is not his request
    (zhao, ReferralState.DRAFT, False),
    (chen, ReferralState.DRAFT, False),  # another county doctor
    (admin, ReferralState.DRAFT, False),
])
def test_only_the_referrer_rewrites_a_draft_request(who: Principal, state: ReferralState, allowed: bool) -> None:
    """The consultation request is rewritten by its referring doctor, and only while it is a draft."""
    assert can_edit_referral_request(who, REFERRAL, state) is allowed


BOOKED_WANG = ReferralScope(referring_doctor_id=10, target_hospital_id=PROVINCIAL, target_specialist_id=20,
                            booked_specialist_id=20, sent=True)


@pytest.mark.parametrize(("who", "scope", "sign", "acknowledge"), [
    (wang, BOOKED_WANG, True, False),  # asked for and booked: takes the referral
    (wang, REFERRAL, False, False),  # asked for by name, not (yet) booked
    (zhou, BOOKED, True, False),  # booked, though another was asked for
    (zhou, BOOKED_WANG, False, False),  # a colleague of the booked specialist
    (zhao, BOOKED_WANG, False, False),  # the receiving coordinator organises, does not sign
    (li, BOOKED_WANG, False, True),  # the referring doctor acknowledges receipt
    (chen, BOOKED_WANG, False, False),  # another county doctor
    (admin, BOOKED_WANG, False, False),
    (auditor, BOOKED_WANG, False, False),
])
def test_who_signs_and_acknowledges_a_report(who: Principal, scope: ReferralScope, sign: bool,
                                             acknowledge: bool) -> None:
    """Only the specialist booked for the referral signs (and amends) its report; only the doctor who referred
    acknowledges it."""
    assert can_sign_report(who, scope) is sign
    assert is_report_signer(who, scope) is sign
    assert can_acknowledge_report(who, scope) is acknowledge


@pytest.mark.parametrize(("who", "refer", "inbox", "patients", "feed", "audit"), [
    (li, True, False, True, True, False),
    (wang, False, False, True, True, False),
    (zhao, False, True, True, True, False),
    (admin, False, False, False, False, False),
    (auditor, False, False, False, False, True),
])
def test_what_each_role_may_do(who: Principal, refer: bool, inbox: bool, patients: bool, feed: bool,
                               audit: bool) -> None:
    """County doctors refer, coordinators triage, clinicians and coordinators handle patients and have a
    calendar, auditors alone read the trail; administrators and auditors never see health records."""
    assert (can_refer(who), has_referral_inbox(who), can_handle_patients(who), has_calendar_feed(who.role),
            can_read_audit(who)) == (refer, inbox, patients, feed, audit)


@pytest.mark.parametrize(("who", "allowed"), [(wang, True), (zhao, True), (qian, False), (li, False), (zhou, False)])
def test_who_edits_a_specialists_hours(who: Principal, allowed: bool) -> None:
    """The specialist (wang, 20) and their hospital's coordinators."""
    assert can_edit_hours(who, 20, PROVINCIAL) is allowed


@pytest.mark.parametrize(("who", "keeps"), [(wang, True), (zhou, True), (zhao, True), (qian, True), (li, False),
                                            (admin, False), (auditor, False)])
def test_who_has_clinic_hours_to_keep(who: Principal, keeps: bool) -> None:
    """Specialists keep their own hours and coordinators their hospital's specialists': they get the editor."""
    assert keeps_clinic_hours(who) is keeps


@pytest.mark.parametrize(("who", "kwargs", "allowed"), [
    (wang, {"participant_consent_of": 20, "referring_doctor_id": None, "in_consultation": True}, True),
    (li, {"participant_consent_of": 20, "referring_doctor_id": None, "in_consultation": True}, False),
    (li, {"participant_consent_of": None, "referring_doctor_id": 10, "in_consultation": False}, True),
    (zhao, {"participant_consent_of": None, "referring_doctor_id": 10, "in_consultation": True}, False),
    (wang, {"participant_consent_of": None, "referring_doctor_id": None, "in_consultation": True}, True),
    (chen, {"participant_consent_of": None, "referring_doctor_id": None, "in_consultation": False}, False),
])
def test_who_withdraws_a_consent(who: Principal, kwargs: dict, allowed: bool) -> None:
    """A participant their own; a patient's sharing consent the referring doctor; a patient's video or
    recording consent a clinician of the consultation."""
    assert can_withdraw_consent(who, **kwargs) is allowed


@pytest.mark.parametrize(("who", "allowed"), [(li, True), (chen, False), (wang, False), (zhao, False), (admin, False)])
def test_who_records_a_patients_word(who: Principal, allowed: bool) -> None:
    """A clinician of the patient's own hospital (COUNTY) speaks for the patient beside them; the partner
    hospital's specialist, coordinators and administrators do not."""
    assert can_speak_for_patient(who, COUNTY) is allowed


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(li, True), (wang, True), (chen, False), (zhou, False), (zhao, False), (qian, False), (admin, False),
     (auditor, True), (promoted, True)],
    ids=["participant doctor", "participant specialist", "other doctor", "colleague of participant",
         "coordinator of participant hospital", "coordinator elsewhere", "admin", "auditor", "promoted"],
)
def test_who_lists_plays_and_views_recordings(who: Principal, allowed: bool) -> None:
    """A consultation's recordings (the list, the file, a viewing in the player and its streams): its
    participants, and auditors of any hospital; never a coordinator, who organises but was not in the call.
    Patients hold no account, so no principal: their invitation link opens no recording."""
    assert can_access_recordings(who, SCOPE) is allowed


@pytest.mark.parametrize(("who", "referrals", "consultations", "new_referral", "new_consultation", "hours"), [
    (li, True, True, True, True, False),
    (wang, True, True, False, True, True),
    (zhao, True, True, False, True, True),
    (admin, False, False, False, False, False),
    (auditor, False, False, False, False, False),
])
def test_which_lists_and_forms_each_role_opens(who: Principal, referrals: bool, consultations: bool,
                                               new_referral: bool, new_consultation: bool, hours: bool) -> None:
    """The rules behind the nav's links and the pages' 403s: an auditor could open /referrals/new (and saw the
    hospital's patients in it); administrators and auditors open no list or form of health records."""
    assert (has_referrals(who), can_list_consultations(who), can_refer(who), can_create_consultation(who),
            keeps_clinic_hours(who)) == (referrals, consultations, new_referral, new_consultation, hours)


@pytest.mark.parametrize(("who", "allowed"), [
    (admin, True), (auditor, True), (li, False), (wang, False), (zhao, False), (qian, False), (promoted, True),
])
def test_legal_holds_are_for_administrators_and_auditors(who: Principal, allowed: bool) -> None:
    """Holds keep records past their retention: administrators and auditors place and release them, never the
    clinicians or coordinators whose own records a hold may concern."""
    assert can_manage_holds(who) is allowed


@pytest.mark.parametrize(("who", "hospital", "allowed"), [
    (li, COUNTY, True), (li, 2, True), (li, 9, False), (auditor, 9, False), (admin, 9, True),
])
def test_the_staff_directory_is_the_partnerships(who: Principal, hospital: int, allowed: bool) -> None:
    """The FHIR API's Practitioner, PractitionerRole and Organization: the caller's hospital and its partners
    (here hospital 2); another partnership's staff are not theirs to list, except for administrators."""
    assert can_see_colleague(who, hospital, frozenset({who.hospital_id, 2})) is allowed


@pytest.mark.parametrize(("who", "partnership", "supervise", "sees"), [
    (supervisor, 1, True, True),
    (supervisor, 2, True, False),  # a partnership it does not oversee
    (admin, 1, False, False), (auditor, 1, False, False), (li, 1, False, False), (wang, 1, False, False),
    (zhao, 1, False, False),
])
def test_supervisors_read_the_statistics_of_what_they_oversee(who: Principal, partnership: int, supervise: bool,
                                                              sees: bool) -> None:
    """Statistics are a supervisor's, of the partnerships linked to them; clinicians, coordinators,
    administrators and auditors neither open the page nor read any partnership's figures."""
    assert can_supervise(who) is supervise
    assert oversees(who, frozenset({1}), partnership) is sees


@pytest.mark.parametrize("rule", [can_list_consultations, has_referrals, can_handle_patients, can_refer,
                                  can_read_audit, can_manage_holds, can_administer, keeps_clinic_hours])
def test_supervisors_see_no_health_record(rule: object) -> None:
    """A supervisor opens no list of consultations, referrals or patients, no audit trail and no console."""
    assert rule(supervisor) is False  # type: ignore[operator]


def unverified(who: Principal) -> Principal:
    return dataclasses.replace(who, licence_verified=False)


@pytest.mark.parametrize(("who", "needs", "awaits", "host"), [
    (li, True, False, True), (wang, True, False, True),
    (unverified(li), True, True, False), (unverified(wang), True, True, False),
    # other roles have no licence: nothing waits for one, and none hosts a room (they do not sit in on calls)
    (zhao, False, False, False), (admin, False, False, False), (auditor, False, False, False),
    (supervisor, False, False, False), (dataclasses.replace(admin, licence_verified=True), False, False, False),
])
def test_only_verified_clinicians_host_a_room(who: Principal, needs: bool, awaits: bool, host: bool) -> None:
    """A clinician hosts (admits, records, removes) only once an administrator has verified their licence; an
    unverified one is told so, and nobody else is told anything about licences."""
    assert needs_licence(who.role) is needs
    assert awaits_licence(who) is awaits
    assert can_host(who) is host
    if awaits:
        with pytest.raises(Forbidden) as refused:
            require_licence(who)
        assert (refused.value.code, refused.value.message) == ("licence-unverified", LICENCE_UNVERIFIED)
    else:
        require_licence(who)


@pytest.mark.parametrize(("role", "verified", "bookable"), [
    (Role.SPECIALIST, True, True), (Role.SPECIALIST, False, False),
    (Role.COUNTY_DOCTOR, True, False), (Role.COORDINATOR, True, False), (Role.ADMIN, True, False),
])
def test_only_verified_specialists_are_booked(role: Role, verified: bool, bookable: bool) -> None:
    """Slots are booked with specialists whose licence is verified, never with an unverified one."""
    assert can_be_booked(role, verified) is bookable


def test_an_unverified_booked_specialist_signs_nothing() -> None:
    """The booked specialist is still the report's signer, but cannot sign until their licence is verified."""
    assert is_report_signer(unverified(wang), BOOKED_WANG)
    assert not can_sign_report(unverified(wang), BOOKED_WANG)


@pytest.mark.parametrize(("verified_at", "verified"), [(None, False), (datetime(2026, 12, 1, tzinfo=UTC), True)])
def test_a_principal_reads_the_licence_from_the_account(verified_at: datetime | None, verified: bool) -> None:
    """The rules see an account's licence as verified exactly when an administrator has stamped it."""
    user = User(id=20, username="w", display_name="W", password_hash="x", role=Role.SPECIALIST,
                hospital_id=PROVINCIAL, licence_verified_at=verified_at)
    assert principal_of(user) == Principal(20, Role.SPECIALIST, PROVINCIAL, licence_verified=verified)


MONITORING = (ip_network("10.9.0.0/16"), ip_network("::1/128"))
METRICS_TOKEN = Secret("t" * 40)


@pytest.mark.parametrize(("peer", "bearer", "token", "refused"), [
    ("10.9.3.4", None, None, None),  # the monitoring network, no token needed
    ("::1", None, METRICS_TOKEN, None),
    ("10.8.3.4", None, None, Forbidden),  # elsewhere, and no token would open it
    (None, None, None, Forbidden),  # a request a proxy forwarded: no peer of its own to trust
    ("10.8.3.4", None, METRICS_TOKEN, Unauthenticated),  # elsewhere: the token would open it
    ("10.8.3.4", "t" * 40, METRICS_TOKEN, None),
    (None, "t" * 40, METRICS_TOKEN, None),
    ("10.8.3.4", "t" * 39, METRICS_TOKEN, Unauthenticated),
    ("10.9.3.4", "x" * 40, METRICS_TOKEN, Unauthenticated),  # a wrong token is refused even from the network
    ("10.9.3.4", "x" * 40, None, None),  # no token configured: a header is nobody's token; the network decides
    ("10.8.3.4", "t" * 40, None, Forbidden),
])
def test_who_reads_the_metrics(peer: str | None, bearer: str | None, token: Secret | None,
                               refused: type[Exception] | None) -> None:
    """Guards the monitoring fence: the network by the connection's peer, or the token; a token sent is always
    checked; a 401 where the token would open, else a 403."""
    address = ip_address(peer) if peer is not None else None
    if refused is None:
        require_metrics_access(address, MONITORING, bearer, token)
    else:
        with pytest.raises(refused) as caught:
            require_metrics_access(address, MONITORING, bearer, token)
        assert type(caught.value) is refused
