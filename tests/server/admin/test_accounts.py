"""server/admin/accounts.py: finding accounts a page at a time, creating them, editing roles and places,
disabling and re-enabling, resetting passwords, each audited, and never losing the last administrator."""

from __future__ import annotations

import asyncio
import json

import pydantic
import pytest
from sqlmodel import select

from server.admin import SHELL
from server.admin import accounts as service
from server.admin.accounts import PAGE_SIZE
from server.admin.inputs import AccountQuery, AccountUpdate, NewAccount, PasswordReset
from server.audit import trail as audit
from server.db import Database
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.identity.passwords import verify_password
from server.models import Department, Hospital, Role, User
from server.permissions import Principal

from .conftest import principal

PASSWORD = "a long enough password"


async def _id(database: Database, model: type, **where: object) -> int:
    async with database.session() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return (await session.exec(query)).one().id


async def _user(database: Database, username: str) -> User:
    async with database.session() as session:
        return (await session.exec(select(User).where(User.username == username))).one()


async def _new(database: Database, admin: Principal, **fields: object) -> tuple[service.Account, str | None]:
    hospital = await _id(database, Hospital, level="county", name="青山县人民医院 Qingshan County People's Hospital")
    body = NewAccount.model_validate({"username": "dr.sun", "display_name": "孙涛 Sun Tao", "role": "county_doctor",
                                      "hospital_id": hospital, "password": PASSWORD, **fields})
    async with database.session() as session:
        return await service.create(session, admin, body)


async def _entries(database: Database, action: str) -> list:
    return [e for e in await audit.trail(database) if e.action == action]


async def test_search_filters_and_pages(database: Database, admin: Principal) -> None:
    """Every filter narrows; the search matches usernames and names, Chinese included; pages hold PAGE_SIZE."""
    async def found(**query: object) -> list[str]:
        async with database.session() as session:
            page = await service.search(session, admin, AccountQuery.model_validate(query))
        return [a.user.username for a in page.items]

    assert await found(q="dr.") == ["dr.chen", "dr.he", "dr.li", "dr.wang", "dr.zhou"]
    assert await found(q="王芳") == ["dr.wang"]
    assert await found(q="WANG") == ["dr.wang"], "case does not matter"
    assert await found(q="%") == [] and await found(q="_") == [], "wildcards are searched for, not expanded"
    assert await found(role="specialist") == ["dr.he", "dr.wang", "dr.zhou"]
    qingshan = await _id(database, Hospital, name="青山县人民医院 Qingshan County People's Hospital")
    assert await found(hospital_id=qingshan) == ["dr.li"]
    assert await found(status="disabled") == []

    hospital = await _id(database, Hospital, name="白河县中医院 Baihe County TCM Hospital")
    async with database.session() as session:
        session.add_all([User(username=f"nurse{n:02}", display_name=f"Nurse {n}", password_hash="x",
                              role=Role.COORDINATOR, hospital_id=hospital) for n in range(PAGE_SIZE + 5)])
        await session.commit()
    async with database.session() as session:
        first = await service.search(session, admin, AccountQuery(q="nurse"))
        second = await service.search(session, admin, AccountQuery(q="nurse", page=2))
        beyond = await service.search(session, admin, AccountQuery(q="nurse", page=99))
    assert (first.total, first.pages, len(first.items)) == (PAGE_SIZE + 5, 2, PAGE_SIZE)
    assert [a.user.username for a in second.items] == [f"nurse{n:02}" for n in range(PAGE_SIZE, PAGE_SIZE + 5)]
    assert beyond.page == 2 and beyond.items == second.items, "past the last page shows the last"
    assert second.items[0].hospital.id == hospital and service.page_shown(first).page_size == PAGE_SIZE


async def test_create_hashes_the_password_and_audits_without_it(database: Database, admin: Principal) -> None:
    """A new account is active in its county hospital, its password kept only as an scrypt hash that verifies; the audit
    entry names the administrator and the new account, says no password was generated, and does not hold the
    password."""
    account, generated = await _new(database, admin)
    assert generated is None and account.user.is_active and account.hospital.level.value == "county"
    user = await _user(database, "dr.sun")
    assert user.password_hash.startswith("scrypt$") and verify_password(PASSWORD, user.password_hash)
    [entry] = await _entries(database, "account.created")
    assert entry.actor == f"user:{admin.user_id}" and entry.subject == f"user:{user.id}"
    assert PASSWORD not in entry.detail and json.loads(entry.detail)["generated_password"] is False


async def test_create_without_a_password_generates_one_shown_once(database: Database, admin: Principal) -> None:
    """An account created without a password gets a generated one of at least 10 characters, handed back once to be
    shown; it verifies against the stored hash and appears nowhere in the audit trail."""
    _, generated = await _new(database, admin, password=None)
    assert generated and len(generated) >= 10
    assert verify_password(generated, (await _user(database, "dr.sun")).password_hash)
    assert generated not in "".join(e.detail for e in await audit.trail(database))


@pytest.mark.parametrize(("fields", "field"), [
    ({"username": "has space"}, "username"), ({"username": "x"}, "username"), ({"display_name": ""}, "display_name"),
    ({"role": "superuser"}, "role"), ({"password": "short"}, "password"), ({"hospital_id": 0}, "hospital_id"),
])
def test_new_account_limits_name_the_field(fields: dict, field: str) -> None:
    """Each row: a username with a space or of one character, an empty display name, an unknown role, a short password
    or hospital 0 is refused with one validation error, located at the field at fault."""
    body = {"username": "dr.sun", "display_name": "Sun", "role": "specialist", "hospital_id": 1, **fields}
    with pytest.raises(pydantic.ValidationError) as caught:
        NewAccount.model_validate(body)
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


async def test_where_an_account_works_must_fit(database: Database, admin: Principal) -> None:
    """A department of another hospital, an unknown hospital or specialty are each refused naming the field; an
    account placed in a department without a specialty of its own takes the department's."""
    cardiology = await _id(database, Department, name="心血管内科 Cardiology")
    with pytest.raises(ValidationFailed) as caught:
        await _new(database, admin, department_id=cardiology)
    assert set(caught.value.details["fields"]) == {"department_id"}
    with pytest.raises(ValidationFailed) as caught:
        await _new(database, admin, hospital_id=9999, specialty_id=9999)
    assert set(caught.value.details["fields"]) == {"hospital_id", "specialty_id"}
    provincial = await _id(database, Hospital, level="tertiary")
    account, _ = await _new(database, admin, role="specialist", hospital_id=provincial, department_id=cardiology)
    assert account.specialty is not None and account.specialty.code == "cardiology"


async def test_usernames_are_unique_whatever_their_case(database: Database, admin: Principal) -> None:
    """A username that differs from a taken one only in case (Dr.Li beside dr.li) is refused as taken."""
    with pytest.raises(Conflict, match="taken"):
        await _new(database, admin, username="Dr.Li")


async def test_a_role_change_is_audited_with_before_and_after(database: Database, admin: Principal) -> None:
    """Making dr.li a coordinator is audited with the role before and after, and nothing else; the same update again
    changes nothing and writes no second entry."""
    li = await _user(database, "dr.li")
    body = AccountUpdate(display_name="李明 Li Ming", role=Role.COORDINATOR, hospital_id=li.hospital_id,
                         department_id=li.department_id)
    async with database.session() as session:
        account = await service.update(session, admin, li.id, body, rooms=None)
        again = await service.update(session, admin, li.id, body, rooms=None)
    assert account.user.role is Role.COORDINATOR and again.user.role is Role.COORDINATOR
    [entry] = await _entries(database, "account.updated")
    assert json.loads(entry.detail) == {"changes": {"role": ["county_doctor", "coordinator"]}}, \
        "one entry: the second update changed nothing"


async def test_disable_ends_sessions_for_good_and_enable_lets_the_password_in(database: Database,
                                                                              admin: Principal) -> None:
    """Disabling an account ends its sessions (its session generation moves on once, however often it is disabled) and
    re-enabling does not revive them; the password still verifies, unchanged, and each step is audited once."""
    li = await _user(database, "dr.li")
    async with database.session() as session:
        disabled = await service.disable(session, admin, li.id, rooms=None)
        await service.disable(session, admin, li.id, rooms=None)  # twice: nothing more happens
    after = await _user(database, "dr.li")
    assert not disabled.user.is_active and after.session_generation == li.session_generation + 1
    async with database.session() as session:
        enabled = await service.enable(session, admin, li.id)
    assert enabled.user.is_active
    assert (await _user(database, "dr.li")).session_generation == li.session_generation + 1, \
        "re-enabling does not revive the sessions that disabling ended"
    assert verify_password("telemed-demo", (await _user(database, "dr.li")).password_hash)
    assert [len(await _entries(database, a)) for a in ("account.disabled", "account.enabled")] == [1, 1]


@pytest.mark.parametrize("generate", [False, True])
async def test_reset_password_sets_a_new_one_and_ends_sessions(database: Database, admin: Principal,
                                                               generate: bool) -> None:
    """Each row (a password given, or one generated and handed back only then): the new password verifies and the old
    one no longer does, the account's sessions end, and the audit entry says whether it was generated, never what it
    is."""
    li = await _user(database, "dr.li")
    async with database.session() as session:
        shown = await service.reset_password(session, admin, li.id, PasswordReset(password=None if generate
                                                                                   else PASSWORD), rooms=None)
    new = shown if generate else PASSWORD
    assert (shown is not None) is generate
    after = await _user(database, "dr.li")
    assert verify_password(new, after.password_hash) and not verify_password("telemed-demo", after.password_hash)
    assert after.session_generation == li.session_generation + 1
    [entry] = await _entries(database, "account.password_reset")
    assert json.loads(entry.detail) == {"generated": generate} and new not in entry.detail


async def test_the_last_administrator_cannot_be_disabled_or_demoted(database: Database, admin: Principal) -> None:
    """Refused with last-administrator, changing nothing, until another administrator exists."""
    me = await _user(database, "admin")
    demote = AccountUpdate(display_name=me.display_name, role=Role.AUDITOR, hospital_id=me.hospital_id)
    for attempt in (lambda s: service.disable(s, admin, me.id, rooms=None),
                    lambda s: service.update(s, admin, me.id, demote, rooms=None)):
        async with database.session() as session:
            with pytest.raises(Conflict) as caught:
                await attempt(session)
        assert caught.value.code == "last-administrator"
    assert (await _user(database, "admin")).is_active and (await _user(database, "admin")).role is Role.ADMIN
    assert await _entries(database, "account.disabled") == []

    other, _ = await _new(database, admin, username="admin2", role="admin")
    async with database.session() as session:
        await service.update(session, admin, me.id, demote, rooms=None)
    async with database.session() as session:
        with pytest.raises(Conflict):  # admin2 is now the last one
            await service.disable(session, await principal(database, "admin2"), other.id, rooms=None)


async def test_two_administrators_demoting_each_other_at_once_leave_one(database: Database, admin: Principal) -> None:
    """Each checks that another administrator remains; the checks are serialised, so one of them is refused."""
    second, _ = await _new(database, admin, username="admin2", role="admin")
    two = await principal(database, "admin2")
    me = await _user(database, "admin")

    async def demote(who: Principal, user: User) -> str:
        body = AccountUpdate(display_name=user.display_name, role=Role.AUDITOR, hospital_id=user.hospital_id)
        try:
            async with database.session() as session:
                await service.update(session, who, user.id, body, rooms=None)
        except Conflict as exc:
            return exc.code
        return "done"

    outcomes = await asyncio.gather(demote(admin, second.user), demote(two, me))
    assert sorted(outcomes) == ["done", "last-administrator"]
    async with database.session() as session:
        admins = (await session.exec(select(User).where(User.role == Role.ADMIN, User.is_active == True))).all()  # noqa: E712
    assert len(admins) == 1


@pytest.mark.parametrize("username", ["dr.li", "dr.wang", "coord.zhao", "auditor"])
async def test_only_administrators_run_accounts(database: Database, username: str) -> None:
    """Each row: a county doctor, a specialist, a coordinator or an auditor is forbidden to search, read, disable,
    enable or reset the password of an account, and dr.li stays active."""
    who = await principal(database, username)
    li = await _user(database, "dr.li")
    async with database.session() as session:
        for attempt in (service.search(session, who, AccountQuery()), service.get(session, who, li.id),
                        service.disable(session, who, li.id, rooms=None), service.enable(session, who, li.id),
                        service.reset_password(session, who, li.id, PasswordReset(), rooms=None)):
            with pytest.raises(Forbidden):
                await attempt
    assert (await _user(database, "dr.li")).is_active


async def test_the_shell_acts_as_an_administrator_named_shell(database: Database) -> None:
    """The command line acts as an administrator: it finds an account by username (an unknown one is not found) and
    disables it, and the audit entry names ``shell`` as the actor."""
    async with database.session() as session:
        account = await service.by_username(session, SHELL, "dr.li")
        await service.disable(session, SHELL, account.id, rooms=None)
        with pytest.raises(NotFound):
            await service.by_username(session, SHELL, "nobody")
    [entry] = await _entries(database, "account.disabled")
    assert entry.actor == "shell"

