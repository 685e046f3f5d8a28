"""Accounts, as an administrator runs them: find, create, edit (name, role, hospital, department, specialty),
disable and re-enable, reset a password, and enter and verify a clinician's practising licence. Each change is
audited with it.

A clinician's licence number and title are entered (``set_licence``) and verified (``verify_licence``) as two
steps: verifying says an administrator checked them against the certificate or the national register, and the
account and the audit trail keep who did and when. Changing the number or the title clears the verification;
until it is given again the clinician cannot host a consultation, be booked or sign a report
(``permissions.can_host``, ``can_be_booked``, ``can_sign_report``).

Disabling an account or resetting its password moves the account to a new session generation, which ends
every session it had (``identity/auth.py`` refuses tokens of an earlier one); re-enabling it does not bring
them back. Each of these, and a change of role or of the licence's verification, reaches the calls the account
is in at once (given the rooms to tell: the shell's reach them only through a shared Redis,
``server/console_rooms.py``; ``account_sweep`` and the rooms' gate make up for what is not told). The
platform always keeps an active administrator: disabling or demoting the last one is refused.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling.grants import Granted

from ..audit import trail as audit
from ..consultations.room_notifier import RoomNotifier, regrant, send_out
from ..consultations.room_tokens import clinician_grants
from ..errors import N_, Conflict, NotFound, ValidationFailed
from ..identity.passwords import hash_password
from ..models import (
    Department,
    Hospital,
    ProfessionalTitle,
    Role,
    Specialty,
    User,
    utcnow,
)
from ..outputs import Instant, Named, Out
from ..paging import LIKE_ESCAPE, Page, PageShown, like_pattern, offset, pages_for
from ..permissions import CLINICAL_ROLES, Principal, needs_licence, principal_of
from . import SHELL, actor, commit, require_administrator
from .inputs import AccountQuery, AccountUpdate, LicenceInput, NewAccount, PasswordReset

PAGE_SIZE = 25
# Generated passwords: no 0/O, 1/l/I to misread when it is read out over the phone; 3 groups of 4 from 31
# characters is about 59 bits, plenty for a password the user is asked to replace and logins are throttled on.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password() -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))


@dataclass(frozen=True)
class Account:
    """An account as the console shows it, with the names of where it works."""

    user: User
    hospital: Hospital
    department: Department | None
    specialty: Specialty | None
    verifier: User | None = None  # the administrator who verified the licence (None: the shell, or not verified)

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def shown(self) -> AccountShown:
        user, specialty = self.user, self.specialty
        return AccountShown(
            id=self.id, username=user.username, display_name=user.display_name, role=user.role,
            hospital=Named(id=self.hospital.id or 0, name=self.hospital.name),
            department=Named(id=self.department.id or 0, name=self.department.name) if self.department else None,
            specialty=SpecialtyRef(id=specialty.id or 0, code=specialty.code, name_zh=specialty.name_zh,
                                   name_en=specialty.name_en) if specialty else None,
            is_active=user.is_active, locale=user.locale, created_at=user.created_at,
            licence=LicenceShown(number=user.licence_number, professional_title=user.professional_title,
                                 verified_at=user.licence_verified_at, verified_by=user.licence_verified_by))


class SpecialtyRef(Out):
    id: int
    code: str
    name_zh: str
    name_en: str


class LicenceShown(Out):
    """A clinician's practising licence (执业证书编码) and title; ``verified_at``/``verified_by``: the
    administrator's check (None until then, or again once the number or title changed; ``verified_by`` is
    None too when the operator verified it at the shell)."""

    number: str
    professional_title: ProfessionalTitle
    verified_at: Instant | None
    verified_by: int | None


class AccountShown(Out):
    """An account as the console shows it."""

    id: int
    username: str
    display_name: str
    role: Role
    hospital: Named
    department: Named | None
    specialty: SpecialtyRef | None
    is_active: bool
    locale: str | None
    created_at: Instant
    licence: LicenceShown


class AccountCreated(AccountShown):
    """A new account, with the password generated for it (this once; None when the administrator chose one)."""

    password: str | None


class GeneratedPassword(Out):
    """A reset's password: the one generated (this once), or None when the administrator chose it."""

    password: str | None


class AccountPage(PageShown):
    """A page of accounts; ``page_size`` is ``per_page`` under its older name."""

    accounts: list[AccountShown]
    page_size: int


def page_shown(found: Page[Account]) -> AccountPage:
    """A page of accounts as the API answers it."""
    return AccountPage(accounts=[a.shown() for a in found.items], page_size=found.per_page, **found.meta())


async def describe(session: AsyncSession, users: Iterable[User]) -> list[Account]:
    """The accounts with their hospitals, departments and specialties: a query per kind, not per account."""
    users = list(users)

    async def by_id(model: type[Any], ids: set[int | None]) -> dict[int, Any]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        return {row.id: row for row in (await session.exec(select(model).where(col(model.id).in_(wanted)))).all()}

    hospitals = await by_id(Hospital, {u.hospital_id for u in users})
    departments = await by_id(Department, {u.department_id for u in users})
    specialties = await by_id(Specialty, {u.specialty_id for u in users})
    verifiers = await by_id(User, {u.licence_verified_by for u in users})
    return [Account(u, hospitals[u.hospital_id], departments.get(u.department_id or 0),
                    specialties.get(u.specialty_id or 0), verifiers.get(u.licence_verified_by or 0)) for u in users]


async def search(session: AsyncSession, who: Principal, query: AccountQuery) -> Page[Account]:
    """Accounts matching the query, by username, a page at a time (a page past the last shows the last)."""
    require_administrator(who)
    wanted = []
    if query.q:
        pattern = like_pattern(query.q)
        wanted.append(or_(col(User.username).ilike(pattern, escape=LIKE_ESCAPE),
                          col(User.display_name).ilike(pattern, escape=LIKE_ESCAPE)))
    if query.hospital_id is not None:
        wanted.append(col(User.hospital_id) == query.hospital_id)
    if query.role is not None:
        wanted.append(col(User.role) == query.role)
    if query.status != "any":
        wanted.append(col(User.is_active) == (query.status == "active"))
    total = (await session.exec(select(func.count()).select_from(User).where(*wanted))).one()
    page = min(query.page, pages_for(total, PAGE_SIZE))
    users = (await session.exec(select(User).where(*wanted).order_by(col(User.username))
                                .offset(offset(page, PAGE_SIZE)).limit(PAGE_SIZE))).all()
    return Page(await describe(session, users), page, PAGE_SIZE, total)


async def _user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(N_("There is no such account."))
    return user


async def get(session: AsyncSession, who: Principal, user_id: int) -> Account:
    require_administrator(who)
    return (await describe(session, [await _user(session, user_id)]))[0]


async def by_username(session: AsyncSession, who: Principal, username: str) -> Account:
    """The account with exactly this username (the command line names accounts this way)."""
    require_administrator(who)
    user = (await session.exec(select(User).where(User.username == username))).first()
    if user is None:
        raise NotFound(N_("There is no such account."))
    return (await describe(session, [user]))[0]


async def _placement(session: AsyncSession, role: Role, hospital_id: int, department_id: int | None,
                     specialty_id: int | None) -> int | None:
    """Check where an account is to work; the specialty it ends up with (without one, the department's).
    422 naming each field that does not fit. (A specialist may be left without a specialty while being set up;
    referrals and slot searches do not find them until they have one, which the console points out.)"""
    problems: dict[str, str] = {}
    if await session.get(Hospital, hospital_id) is None:
        problems["hospital_id"] = N_("There is no such hospital.")
    department = await session.get(Department, department_id) if department_id is not None else None
    if department_id is not None and (department is None or department.hospital_id != hospital_id):
        problems["department_id"] = N_("Not a department of the account's hospital.")
    if specialty_id is not None and await session.get(Specialty, specialty_id) is None:
        problems["specialty_id"] = N_("There is no such specialty.")
    if specialty_id is None and department is not None:
        specialty_id = department.specialty_id
    if problems:
        raise ValidationFailed(problems)
    return specialty_id


async def _keep_an_administrator(session: AsyncSession, user: User, *, role: Role, active: bool) -> None:
    """Refuse a change that would leave no active administrator: the platform would have nobody to run it
    (short of the shell). The administrators' rows are locked until the commit, so two administrators demoting
    each other at once cannot both succeed."""
    if not (user.role is Role.ADMIN and user.is_active) or (role is Role.ADMIN and active):
        return
    if session.sync_session.get_bind().dialect.name == "sqlite":
        # SQLite has no FOR UPDATE, and reads outside a write transaction: take its write lock (as a write
        # that changes nothing) so the count below is read in the transaction that makes the change.
        await session.exec(sa.text("UPDATE user_account SET id = id WHERE 0 = 1"))  # type: ignore[call-overload]
    # Every active administrator's row, the target's too: two transactions demoting two different ones then
    # wait for each other here, instead of each locking only the other's row and both going ahead.
    admins = (await session.exec(select(User.id).where(User.role == Role.ADMIN, col(User.is_active).is_(True))
                                 .order_by(col(User.id)).with_for_update())).all()
    if not [i for i in admins if i != user.id]:
        raise Conflict(N_("This is the last active administrator. Make another account an administrator first, "
                          "so that someone can still run the platform."), code="last-administrator")


async def create(session: AsyncSession, who: Principal, body: NewAccount) -> tuple[Account, str | None]:
    """A new account; returns it and the password generated for it, if none was given (shown once, never
    stored or logged in the clear). Either way the password is temporary: its user sets their own at the first
    login."""
    require_administrator(who)
    taken = (await session.exec(select(User.id).where(func.lower(User.username) == body.username.lower()))).first()
    if taken is not None:
        raise Conflict(N_("This username is taken."))
    specialty_id = await _placement(session, body.role, body.hospital_id, body.department_id, body.specialty_id)
    generated = None if body.password else generate_password()
    password_hash = await asyncio.to_thread(hash_password, body.password or generated or "")
    user = User(username=body.username, display_name=body.display_name, role=body.role,
                hospital_id=body.hospital_id, department_id=body.department_id, specialty_id=specialty_id,
                password_hash=password_hash, must_change_password=True)
    session.add(user)
    audit.with_commit(session, lambda: audit.Entry(actor(who), "account.created", subject=f"user:{user.id}", detail={
        "username": user.username, "role": user.role.value, "hospital_id": user.hospital_id,
        "generated_password": generated is not None}))
    await commit(session)
    return (await describe(session, [user]))[0], generated


_EDITABLE = ("display_name", "role", "hospital_id", "department_id", "specialty_id")


async def update(session: AsyncSession, who: Principal, user_id: int, body: AccountUpdate, *,
                 rooms: RoomNotifier | None) -> Account:
    """Change an account's name, role or place of work; the audit entry keeps each change's before and after.
    A role takes effect at the account's next request (roles are read from the account, not the token), and in
    the rooms it is in at once, given the ``rooms`` to tell (``_follow_in_rooms``)."""
    require_administrator(who)
    user = await _user(session, user_id)
    before = principal_of(user)
    specialty_id = await _placement(session, body.role, body.hospital_id, body.department_id, body.specialty_id)
    await _keep_an_administrator(session, user, role=body.role, active=user.is_active)
    after = {**body.model_dump(include=set(_EDITABLE)), "specialty_id": specialty_id}
    changes = {name: [_plain(getattr(user, name)), _plain(after[name])] for name in _EDITABLE
               if getattr(user, name) != after[name]}
    if changes:
        for name in changes:
            setattr(user, name, after[name])
        _count_grants_change(user, before)
        session.add(user)
        audit.with_commit(session, audit.Entry(actor(who), "account.updated", subject=f"user:{user_id}",
                                               detail={"changes": changes}))
        await commit(session)
        await session.refresh(user)
        await _follow_in_rooms(session, rooms, before, user)
    return (await describe(session, [user]))[0]


async def _follow_in_rooms(session: AsyncSession, rooms: RoomNotifier | None, before: Principal, user: User) -> None:
    """A change to an account reaches the calls it is in as it reaches its next request: no longer a clinician,
    it is sent out of them (``not-a-participant``, as the rooms' gate refuses it from now on); a clinician whose
    licence was verified, or no longer is, may host there now, or no longer (a seat taken stays taken). Without
    ``rooms`` (the shell without a Redis), the change reaches a call at the next ``account_sweep`` of its node,
    or when the clinician comes back to it (the gate's grants), whichever comes first."""
    after = principal_of(user)
    if rooms is None or after.user_id is None:
        return
    if before.role in CLINICAL_ROLES and after.role not in CLINICAL_ROLES:
        await send_out(session, rooms, after.user_id, "not-a-participant")
    elif after.role in CLINICAL_ROLES and clinician_grants(after) != clinician_grants(before):
        await regrant(session, rooms, after.user_id, Granted(clinician_grants(after), user.grants_revision))


def _count_grants_change(user: User, before: Principal) -> None:
    """Count a change to what the account lets its clinician do in a room (``User.grants_revision``), in the
    UPDATE that makes it: raised by the database, so two changes at once are counted twice."""
    if clinician_grants(principal_of(user)) != clinician_grants(before):
        user.grants_revision = col(User.grants_revision) + 1  # type: ignore[assignment]


def _plain(value: object) -> object:
    return value.value if isinstance(value, Role | ProfessionalTitle) else value


_LICENCE = ("licence_number", "professional_title")


async def set_licence(session: AsyncSession, who: Principal, user_id: int, body: LicenceInput, *,
                      rooms: RoomNotifier | None) -> Account:
    """Enter or correct a clinician's licence number and title; the audit entry keeps each change's before and
    after. A change to either clears an earlier verification (the entry says so): what was verified is no
    longer what is on record, and in a call the clinician no longer hosts (``_follow_in_rooms``). 422 naming the
    field for an account that is not a clinician's."""
    require_administrator(who)
    user = await _user(session, user_id)
    before = principal_of(user)
    if not needs_licence(user.role) and (body.licence_number or body.professional_title is not ProfessionalTitle.NONE):
        raise ValidationFailed({"licence_number" if body.licence_number else "professional_title":
                                N_("Only clinicians (county doctors and specialists) have a practising licence.")})
    after = body.model_dump(include=set(_LICENCE))
    changes = {name: [_plain(getattr(user, name)), _plain(after[name])] for name in _LICENCE
               if getattr(user, name) != after[name]}
    if changes:
        cleared = user.licence_verified_at is not None
        for name in changes:
            setattr(user, name, after[name])
        user.licence_verified_at = user.licence_verified_by = None
        _count_grants_change(user, before)
        session.add(user)
        audit.with_commit(session, audit.Entry(actor(who), "account.licence_changed", subject=f"user:{user_id}",
                                               detail={"changes": changes, "verification_cleared": cleared}))
        await commit(session)
        await session.refresh(user)
        await _follow_in_rooms(session, rooms, before, user)
    return (await describe(session, [user]))[0]


async def verify_licence(session: AsyncSession, who: Principal, user_id: int, seen: LicenceInput, *,
                         rooms: RoomNotifier | None) -> Account:
    """Record that an administrator checked the clinician's licence number and title (against the certificate
    or the national register): who and when, on the account and in the audit trail, with what was verified.
    ``seen`` is the number and title they checked: if the account holds others now (changed by someone else
    since they read it), nothing is verified and 409 says so; the update is conditional on them, so a change
    racing the verification cannot be verified unseen. Verifying a verified licence changes nothing. A clinician
    in a call hosts it from now on (``_follow_in_rooms``). 422 naming ``licence_number`` while there is none to
    verify."""
    require_administrator(who)
    user = await _user(session, user_id)
    before = principal_of(user)
    if not needs_licence(user.role):
        raise ValidationFailed({"licence_number": N_("Only clinicians (county doctors and specialists) have a "
                                                     "practising licence.")})
    if not user.licence_number:
        raise ValidationFailed({"licence_number": N_("Enter the licence number before verifying it.")})
    if (user.licence_number, user.professional_title) != (seen.licence_number, seen.professional_title):
        raise Conflict(LICENCE_CHANGED)
    if user.licence_verified_at is None:
        table = User.__table__  # type: ignore[attr-defined]
        verified = await session.exec(sa.update(table).where(  # type: ignore[call-overload]
            table.c.id == user_id, table.c.licence_number == seen.licence_number,
            table.c.professional_title == seen.professional_title, table.c.licence_verified_at.is_(None))
            .values(licence_verified_at=utcnow(), licence_verified_by=None if who == SHELL else who.user_id,
                    grants_revision=table.c.grants_revision + 1))
        if verified.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            user = await _user(session, user_id)
            if (user.licence_number, user.professional_title) != (seen.licence_number, seen.professional_title):
                raise Conflict(LICENCE_CHANGED)
            return (await describe(session, [user]))[0]  # verified meanwhile, as seen: nothing to do
        audit.with_commit(session, audit.Entry(actor(who), "account.licence_verified", subject=f"user:{user_id}",
                                               detail={"licence_number": seen.licence_number,
                                                       "professional_title": seen.professional_title.value}))
        await commit(session)
        await session.refresh(user)
        await _follow_in_rooms(session, rooms, before, user)
    return (await describe(session, [user]))[0]


LICENCE_CHANGED = N_("The licence was changed since you read it: check the number and title shown now, then "
                     "verify again.")


async def disable(session: AsyncSession, who: Principal, user_id: int, *, rooms: RoomNotifier | None) -> Account:
    """The account can no longer log in, and every session it had ends at its next request; if it is in a
    consultation's room now, it is sent away (``not-a-participant``, as the room's gate refuses it from now
    on), given the ``rooms`` to tell (the shell without a Redis has none: each node's ``account_sweep`` sends it
    out). Disabling a disabled account changes nothing."""
    require_administrator(who)
    user = await _user(session, user_id)
    if not user.is_active:
        return (await describe(session, [user]))[0]
    await _keep_an_administrator(session, user, role=user.role, active=False)
    user.is_active = False
    user.session_generation += 1
    session.add(user)
    audit.with_commit(session, audit.Entry(actor(who), "account.disabled", subject=f"user:{user_id}"))
    await session.commit()
    if rooms is not None:
        await send_out(session, rooms, user_id, "not-a-participant")
    return (await describe(session, [user]))[0]


async def enable(session: AsyncSession, who: Principal, user_id: int) -> Account:
    """The account may log in again (with its password as it was); its old sessions stay ended."""
    require_administrator(who)
    user = await _user(session, user_id)
    if not user.is_active:
        user.is_active = True
        session.add(user)
        audit.with_commit(session, audit.Entry(actor(who), "account.enabled", subject=f"user:{user_id}"))
        await session.commit()
    return (await describe(session, [user]))[0]


async def reset_password(session: AsyncSession, who: Principal, user_id: int, body: PasswordReset, *,
                         rooms: RoomNotifier | None) -> str | None:
    """Give the account a new password (the one sent, or a generated one, which is returned to be shown once)
    and end its sessions, a call it is in too (``session-ended``, given the ``rooms`` to tell; the shell without
    a Redis has none, and each node's ``account_sweep`` sends it out). The password is temporary: its user must
    set their own at the next login. The audit entry says whether it was generated, never what it is."""
    require_administrator(who)
    user = await _user(session, user_id)
    generated = None if body.password else generate_password()
    user.password_hash = await asyncio.to_thread(hash_password, body.password or generated or "")
    user.must_change_password = True  # known to the administrator: the user sets their own at the next login
    user.session_generation += 1
    session.add(user)
    audit.with_commit(session, audit.Entry(actor(who), "account.password_reset", subject=f"user:{user_id}",
                                           detail={"generated": generated is not None}))
    await session.commit()
    if rooms is not None:
        await send_out(session, rooms, user_id, "session-ended")
    return generated

