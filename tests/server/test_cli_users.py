"""``telemed user list|disable|enable|reset-password`` as an operator runs them: real processes on an SQLite
data directory, through the same services as the console, audited as the shell."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select

from server.audit import trail as audit
from server.db import Database
from server.identity.passwords import verify_password
from server.models import User

from .test_cli import run


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    seeded = run("demo", data_dir=data)
    assert seeded.returncode == 0, seeded.stderr
    return data


def _read(data_dir: Path, username: str) -> tuple[User, list[tuple[str, str]]]:
    async def read() -> tuple[User, list[tuple[str, str]]]:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'telemed.db'}")
        try:
            async with database.session() as session:
                user = (await session.exec(select(User).where(User.username == username))).one()
            return user, [(e.actor, e.action) for e in await audit.trail(database)]
        finally:
            await database.close()
    return asyncio.run(read())


def test_user_list_narrows_by_each_option(data_dir: Path) -> None:
    """``user list`` prints every account, sorted by username, with its role and status; ``--role`` with ``--search``
    narrows to the one match and counts it on stderr; with one account disabled, ``--status disabled`` lists that one
    alone and ``--status active`` every other; an unknown ``--hospital`` is refused with exit status 2, naming it."""
    listed = run("user", "list", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(line.split()[0] for line in lines)
    assert any(line.split()[:3] == ["dr.li", "county_doctor", "active"] for line in lines)
    specialists = run("user", "list", "--role", "specialist", "--search", "wang", data_dir=data_dir)
    assert [line.split()[0] for line in specialists.stdout.splitlines()] == ["dr.wang"]
    assert "1 account(s)." in specialists.stderr
    assert run("user", "disable", "dr.li", data_dir=data_dir).returncode == 0
    disabled = run("user", "list", "--status", "disabled", data_dir=data_dir)
    assert [line.split()[:3] for line in disabled.stdout.splitlines()] == [["dr.li", "county_doctor", "disabled"]]
    active = run("user", "list", "--status", "active", data_dir=data_dir)
    assert [line.split()[0] for line in active.stdout.splitlines()] == [
        line.split()[0] for line in lines if line.split()[0] != "dr.li"]
    assert {line.split()[2] for line in active.stdout.splitlines()} == {"active"}
    nowhere = run("user", "list", "--hospital", "Nowhere", data_dir=data_dir)
    assert nowhere.returncode == 2 and "no hospital 'Nowhere'" in nowhere.stderr


def test_disable_enable_and_the_last_administrator(data_dir: Path) -> None:
    """``user disable`` deactivates an account and says its sessions have ended, ``--status disabled`` lists it, ``user
    enable`` brings it back, both audited as the shell; disabling the last active administrator is refused (exit 2, the
    reason, no traceback), and so is an account that does not exist."""
    disabled = run("user", "disable", "dr.li", data_dir=data_dir)
    assert disabled.returncode == 0 and "sessions have ended" in disabled.stdout
    assert not _read(data_dir, "dr.li")[0].is_active
    assert "disabled" in run("user", "list", "--status", "disabled", data_dir=data_dir).stdout
    enabled = run("user", "enable", "dr.li", data_dir=data_dir)
    assert enabled.returncode == 0
    user, trail = _read(data_dir, "dr.li")
    assert user.is_active and ("shell", "account.disabled") in trail and ("shell", "account.enabled") in trail

    last = run("user", "disable", "admin", data_dir=data_dir)
    assert last.returncode == 2 and "last active administrator" in last.stderr and "Traceback" not in last.stderr
    missing = run("user", "disable", "nobody", data_dir=data_dir)
    assert missing.returncode == 2 and "no such account" in missing.stderr


def test_reset_password_generated_or_given(data_dir: Path) -> None:
    """``user reset-password --generate`` prints a new password that verifies, moves the account's session generation on
    (its logins end) and is audited as the shell; ``--password-stdin`` sets the one given without printing a password,
    and a short one is refused with exit status 2."""
    generated = run("user", "reset-password", "dr.li", "--generate", data_dir=data_dir)
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.split("privately): ", 1)[1].split()[0]
    user, trail = _read(data_dir, "dr.li")
    assert verify_password(password, user.password_hash) and user.session_generation == 1
    assert ("shell", "account.password_reset") in trail

    given = run("user", "reset-password", "dr.li", "--password-stdin", data_dir=data_dir,
                stdin="chosen at the shell\n")
    assert given.returncode == 0 and "privately" not in given.stdout
    assert verify_password("chosen at the shell", _read(data_dir, "dr.li")[0].password_hash)
    short = run("user", "reset-password", "dr.li", "--password-stdin", data_dir=data_dir, stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr


def test_user_create_goes_through_the_console_and_is_audited(data_dir: Path) -> None:
    """``user create`` goes through the console's service: the account is made (the hospital by id) and audited as
    created by the shell; a username with a space is refused with exit status 2, naming the username."""
    created = run("user", "create", "--username", "dr.sun", "--display-name", "孙涛", "--role", "county_doctor",
                  "--hospital", "2", "--password-stdin", data_dir=data_dir, stdin="a long enough password\n")
    assert created.returncode == 0, created.stderr
    assert "Created county_doctor 'dr.sun'" in created.stdout
    assert ("shell", "account.created") in _read(data_dir, "dr.sun")[1]
    bad = run("user", "create", "--username", "a b", "--role", "auditor", "--hospital", "1", "--password-stdin",
              data_dir=data_dir, stdin="a long enough password\n")
    assert bad.returncode == 2 and "username" in bad.stderr


def test_user_create_makes_a_supervisor(data_dir: Path) -> None:
    """``--role supervisor`` is offered and makes an account of that role (the administrator then links it to
    the partnerships it oversees); the demo's own supervisor is listed by role."""
    created = run("user", "create", "--username", "commission.li", "--display-name", "市卫健委 City Commission",
                  "--role", "supervisor", "--hospital", "1", "--password-stdin", data_dir=data_dir,
                  stdin="a long enough password\n")
    assert created.returncode == 0, created.stderr
    assert "Created supervisor 'commission.li'" in created.stdout
    assert _read(data_dir, "commission.li")[0].role.value == "supervisor"
    listed = run("user", "list", "--role", "supervisor", data_dir=data_dir)
    assert listed.returncode == 0 and "commission.li" in listed.stdout and "supervisor " in listed.stdout


def test_an_operator_enters_and_verifies_a_licence(data_dir: Path) -> None:
    """``user licence`` sets a clinician's number and title (clearing the verification), ``--verify`` records
    the shell verifying it, and ``user create --licence --title --verified`` bootstraps a verified clinician;
    a malformed number is refused before any account is made."""
    changed = run("user", "licence", "dr.li", "--title", "chief", data_dir=data_dir)
    assert changed.returncode == 0, changed.stderr
    user, trail = _read(data_dir, "dr.li")
    assert user.professional_title == "chief" and user.licence_verified_at is None
    verified = run("user", "licence", "dr.li", "--verify", data_dir=data_dir)
    assert verified.returncode == 0 and "(verified)" in verified.stdout
    user, trail = _read(data_dir, "dr.li")
    assert user.licence_verified_at is not None and user.licence_verified_by is None  # the shell is no account
    assert trail[-2:] == [("shell", "account.licence_changed"), ("shell", "account.licence_verified")]

    bad = run("user", "create", "--username", "dr.sun", "--role", "specialist", "--hospital", "1", "--licence",
              "12345", "--password-stdin", data_dir=data_dir, stdin="a long enough password\n")
    assert bad.returncode == 2 and "licence_number" in bad.stderr
    assert "dr.sun" not in run("user", "list", data_dir=data_dir).stdout
    made = run("user", "create", "--username", "dr.sun", "--role", "specialist", "--hospital", "1", "--licence",
               "110320000601234", "--title", "attending", "--verified", "--password-stdin", data_dir=data_dir,
               stdin="a long enough password\n")
    assert made.returncode == 0, made.stderr
    user, _ = _read(data_dir, "dr.sun")
    assert (user.licence_number, user.professional_title) == ("110320000601234", "attending")
    assert user.licence_verified_at is not None


def test_licence_options_for_an_account_without_one_make_no_account(data_dir: Path) -> None:
    """A coordinator has no licence, and ``--verified`` needs the number checked: both are refused (exit 2)
    before the account is made, so no half-made account is left behind."""
    for options in (["--role", "coordinator", "--licence", "110320000601234"],
                    ["--role", "specialist", "--verified"]):
        refused = run("user", "create", "--username", "someone", "--hospital", "1", *options, "--password-stdin",
                      data_dir=data_dir, stdin="a long enough password\n")
        assert refused.returncode == 2, (options, refused.stdout, refused.stderr)
        assert "licence" in refused.stderr
        assert "someone" not in run("user", "list", data_dir=data_dir).stdout
