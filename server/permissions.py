"""Who may do what: pure rules over roles, hospitals and consultation membership, and who may read the
node's metrics. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .errors import N_, Forbidden, Unauthenticated
from .models import ReferralAction, ReferralState, Role, User
from .settings import Secret

CLINICAL_ROLES = frozenset({Role.COUNTY_DOCTOR, Role.SPECIALIST})
# Coordinators organise consultations for their hospital; they do not sit in on the video.
ORGANISING_ROLES = CLINICAL_ROLES | {Role.COORDINATOR}


@dataclass(frozen=True)
class Principal:
    """The caller, as the rules see it."""

    user_id: int
    role: Role
    hospital_id: int
    # An administrator has verified the account's practising licence (clinicians; ``principal_of`` reads it
    # from the account at each request). False unless said: a rule never takes a licence on trust.
    licence_verified: bool = False


def principal_of(user: User) -> Principal:
    """The rules' view of an account, as it stands now (role and licence are read from the account, never
    from a token)."""
    assert user.id is not None
    return Principal(user_id=user.id, role=user.role, hospital_id=user.hospital_id,
                     licence_verified=user.licence_verified_at is not None)


@dataclass(frozen=True)
class ConsultationScope:
    """What the rules need to know about one consultation."""

    consultation_id: int
    hospital_id: int
    participant_ids: frozenset[int]
    participant_hospital_ids: frozenset[int]


# What an unverified clinician is told, wherever one of the licence rules below refuses them.
LICENCE_UNVERIFIED = N_("Your licence has not been verified by an administrator yet; until it is you cannot host "
                        "consultations, be booked or sign reports.")


def needs_licence(role: Role) -> bool:
    """Clinicians practise under a licence an administrator verifies; other accounts have none to verify."""
    return role in CLINICAL_ROLES


def awaits_licence(who: Principal) -> bool:
    """A clinician whose licence no administrator has verified yet (their pages say what it keeps from them)."""
    return needs_licence(who.role) and not who.licence_verified


def can_host(who: Principal) -> bool:
    """Hosting a consultation's room (entering without waiting, admitting from the lobby, recording, removing):
    a clinician whose licence is verified. A participant whose licence is not yet verified still takes part,
    as a guest does: they wait in the lobby until a host admits them, and cannot record or admit anyone."""
    return who.role in CLINICAL_ROLES and who.licence_verified


def can_be_booked(role: Role, licence_verified: bool) -> bool:
    """Whose slots a referral may be booked into: specialists whose licence an administrator has verified
    (the booking calendar leaves the others out, and booking one is refused)."""
    return role is Role.SPECIALIST and licence_verified


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


def can_list_consultations(who: Principal) -> bool:
    """The consultations list: those who take part in consultations or organise them (which ones each sees is
    ``can_view_consultation``'s rule). Administrators and auditors see no health records."""
    return who.role in ORGANISING_ROLES


def can_create_consultation(who: Principal) -> bool:
    return who.role in ORGANISING_ROLES


def joins_what_they_plan(who: Principal) -> bool:
    """A clinician who sets up a consultation takes part in it (and so may invite its patient at once); a
    coordinator organises it without sitting in."""
    return who.role in CLINICAL_ROLES


def can_add_participant(who: Principal, invitee_role: Role, invitee_hospital_id: int,
                        partner_hospital_ids: frozenset[int]) -> bool:
    """A clinician from the caller's own hospital or one of its partnerships' hospitals."""
    return invitee_role in CLINICAL_ROLES and (
        invitee_hospital_id == who.hospital_id or invitee_hospital_id in partner_hospital_ids
    )


def has_calendar_feed(role: Role) -> bool:
    """Those with appointments: clinicians, and coordinators (every appointment they book)."""
    return role in ORGANISING_ROLES


@dataclass(frozen=True)
class ReferralScope:
    """What the rules need to know about one referral: who sent it, to whom, who is booked, and whether it was
    ever sent (until then it is its referring doctor's alone, also once cancelled unsent)."""

    referring_doctor_id: int
    target_hospital_id: int
    target_specialist_id: int | None
    booked_specialist_id: int | None
    sent: bool


def can_view_referral(who: Principal, scope: ReferralScope) -> bool:
    """The referring doctor; once it is sent, the receiving hospital's coordinators and the specialists asked
    for or booked too (a draft is not theirs to see: the doctor may still change it, or never send it)."""
    if not scope.sent:
        return who.user_id == scope.referring_doctor_id
    if who.user_id in (scope.referring_doctor_id, scope.target_specialist_id, scope.booked_specialist_id):
        return True
    return who.role is Role.COORDINATOR and who.hospital_id == scope.target_hospital_id


def is_referral_receiver(who: Principal, scope: ReferralScope) -> bool:
    """The receiving side: the target hospital's coordinators, and the specialist it names."""
    if who.role is Role.COORDINATOR:
        return who.hospital_id == scope.target_hospital_id
    return who.role is Role.SPECIALIST and who.user_id == scope.target_specialist_id


def may_act_on_referral(who: Principal, scope: ReferralScope, state: ReferralState, action: ReferralAction) -> bool:
    """Whether the caller's role and hospital allow ``action`` on this referral at all; from which states
    it may be taken is the flow's business (``referrals/flow.py``)."""
    A = ReferralAction
    referrer = who.user_id == scope.referring_doctor_id and who.role is Role.COUNTY_DOCTOR
    if action is A.SUBMIT:
        return referrer
    if action in (A.ACCEPT, A.DECLINE, A.REDIRECT):
        return is_referral_receiver(who, scope)
    if action is A.SCHEDULE:
        return who.role is Role.COORDINATOR and who.hospital_id == scope.target_hospital_id
    if action is A.START:
        return referrer or who.user_id == scope.booked_specialist_id
    if action is A.COMPLETE:
        return can_sign_report(who, scope)  # a referral is completed by signing its report
    if action is A.CANCEL:
        coordinator = who.role is Role.COORDINATOR and who.hospital_id == scope.target_hospital_id
        return referrer or (coordinator and state in (ReferralState.ACCEPTED, ReferralState.SCHEDULED))
    return False


def has_referrals(who: Principal) -> bool:
    """The referrals list: those who send, receive or are booked for referrals (which ones each sees is
    ``can_view_referral``'s rule). Administrators and auditors see no health records."""
    return who.role in ORGANISING_ROLES


def can_sign_report(who: Principal, scope: ReferralScope) -> bool:
    """The consultation report, and its amendments, are signed by the specialist taking the referral: the one
    booked for it (not merely the one asked for, nor a colleague of theirs), once their licence is verified: a
    report signed without a verified licence is not one a regulator can rely on."""
    return is_report_signer(who, scope) and who.licence_verified


def is_report_signer(who: Principal, scope: ReferralScope) -> bool:
    """The specialist booked for the referral, whose report it is to sign, verified licence or not (the
    referral page shows them why they cannot sign yet)."""
    return who.role is Role.SPECIALIST and who.user_id == scope.booked_specialist_id


def can_acknowledge_report(who: Principal, scope: ReferralScope) -> bool:
    """The referring doctor acknowledges receipt of the report, for the requesting hospital's record."""
    return who.role is Role.COUNTY_DOCTOR and who.user_id == scope.referring_doctor_id


def has_referral_inbox(who: Principal) -> bool:
    """Coordinators triage what is sent to their hospital."""
    return who.role is Role.COORDINATOR


def can_attach(who: Principal, scope: ReferralScope) -> bool:
    """Results and images are added by the doctor who referred."""
    return who.user_id == scope.referring_doctor_id


def can_edit_referral_request(who: Principal, scope: ReferralScope, state: ReferralState) -> bool:
    """A consultation request is rewritten by the doctor who made it, while it is a draft: once submitted, it
    is what the receiving side read and decided on."""
    return who.user_id == scope.referring_doctor_id and state is ReferralState.DRAFT


def can_handle_patients(who: Principal) -> bool:
    """Clinicians and coordinators register and look up their hospital's patients; administrators and
    auditors see who did what (the audit trail), never health records."""
    return who.role in ORGANISING_ROLES


def can_edit_hours(who: Principal, specialist_id: int, specialist_hospital_id: int) -> bool:
    """A specialist's clinic hours and time off: the specialist, and their hospital's coordinators."""
    return who.user_id == specialist_id or (who.role is Role.COORDINATOR and who.hospital_id == specialist_hospital_id)


def keeps_clinic_hours(who: Principal) -> bool:
    """Who has clinic hours to keep: a specialist their own, a coordinator their hospital's specialists'
    (``can_edit_hours`` decides for each specialist)."""
    return who.role in (Role.SPECIALIST, Role.COORDINATOR)


def can_withdraw_consent(who: Principal, *, participant_consent_of: int | None, referring_doctor_id: int | None,
                         in_consultation: bool) -> bool:
    """A participant withdraws their own consent; a patient's is withdrawn on their word by the referring
    doctor (record sharing) or by a clinician who may join the consultation (video, recording)."""
    if participant_consent_of is not None:
        return who.user_id == participant_consent_of
    if referring_doctor_id is not None:
        return who.user_id == referring_doctor_id
    return in_consultation


def can_speak_for_patient(who: Principal, patient_hospital_id: int) -> bool:
    """Records what a patient says (their verbal consent): a clinician at the patient's side, of the
    patient's own hospital; never the specialist of the partner hospital at the other end of the call."""
    return who.role in CLINICAL_ROLES and who.hospital_id == patient_hospital_id


def can_see_colleague(who: Principal, hospital_id: int, partner_hospital_ids: frozenset[int]) -> bool:
    """The staff directory (the FHIR API's Practitioner, PractitionerRole and Organization: names and roles, no
    health records): the hospitals of the caller's partnerships, whose clinicians they refer to, book and meet;
    administrators, who run every hospital's accounts, see them all."""
    return who.role is Role.ADMIN or hospital_id == who.hospital_id or hospital_id in partner_hospital_ids


def can_read_audit(who: Principal) -> bool:
    return who.role is Role.AUDITOR


def can_manage_holds(who: Principal) -> bool:
    """Legal holds (keeping a patient's or a consultation's files past their retention) are placed, released
    and listed by administrators, who run the platform, and auditors, who answer to regulators and courts;
    never by clinicians, whose own records a hold may concern."""
    return who.role in (Role.ADMIN, Role.AUDITOR)


def can_refer(who: Principal) -> bool:
    """County doctors refer their hospital's patients to a partner hospital."""
    return who.role is Role.COUNTY_DOCTOR


def can_administer(who: Principal) -> bool:
    """Administrators run the platform: accounts, hospitals, departments, specialties and partnerships, across
    every hospital (an administrator's own hospital only says where they work: there are no hospital-scoped
    administrators). They see no health records."""
    return who.role is Role.ADMIN


def can_supervise(who: Principal) -> bool:
    """Supervisors (a regional health commission's accounts) read the statistics of the partnerships they
    oversee: aggregates only, never a patient. Nobody else opens the supervision page or its export."""
    return who.role is Role.SUPERVISOR


def oversees(who: Principal, overseen: frozenset[int], partnership_id: int) -> bool:
    """Whether a partnership's statistics are the caller's to read: a supervisor's, of one of the partnerships
    an administrator linked them to (``overseen``); a supervisor of another partnership sees nothing of it."""
    return can_supervise(who) and partnership_id in overseen


def require(allowed: bool, message: str) -> None:
    """Turn a rule's answer into a 403 with a message that says what was refused."""
    if not allowed:
        raise Forbidden(message)


def require_licence(who: Principal) -> None:
    """A 403 ``licence-unverified`` for a clinician whose licence is not verified yet, saying so."""
    if awaits_licence(who):
        raise Forbidden(LICENCE_UNVERIFIED, code="licence-unverified")


def require_metrics_access(peer: IPv4Address | IPv6Address | None, networks: Sequence[IPv4Network | IPv6Network],
                           bearer: str | None, token: Secret | None) -> None:
    """Who reads ``GET /metrics``: no account, but a scraper on one of the monitoring ``networks`` (the
    connection's own peer, ``TELEMED_METRICS_NETWORKS``), or anywhere with the metrics ``token``
    (``TELEMED_METRICS_TOKEN``, compared in constant time). A token sent is always checked: a wrong one is a 401
    even from the monitoring network, so a scraper's misconfiguration shows at once. From elsewhere without a
    token, a 401 if one would open it, else a 403."""
    if token is not None and bearer is not None:
        if Secret(bearer) == token:
            return
        raise Unauthenticated(N_("Wrong metrics token."))
    if peer is not None and any(peer in network for network in networks):
        return
    if token is not None:
        raise Unauthenticated(N_("Metrics are open to this address only with the metrics token: send "
                                 "Authorization: Bearer and the token."))
    raise Forbidden(N_("Metrics are open only to the monitoring networks (TELEMED_METRICS_NETWORKS), which this "
                       "address is not in."))
