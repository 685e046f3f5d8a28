"""The ``telemed`` command: serve, migrate the database, seed demo data, manage accounts."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pydantic
from aiohttp import web
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from signaling import logcontext

from . import backup as backups
from .accesslog import PathOnlyAccessLogger
from .admin import SHELL, accounts
from .admin.inputs import AccountQuery, LicenceInput, NewAccount, PasswordReset
from .app import create_app, prepare_database
from .audit import trail as audit
from .console_rooms import ConsoleRooms
from .consultations.room_notifier import RoomNotifier
from .db import Database
from .demo import DEMO_PASSWORD, demo_logins, seed_demo, seed_demo_referrals
from .errors import SettingsError, TelemedError
from .http import validation_fields
from .identity.passwords import password_problem
from .models import Hospital, ProfessionalTitle, Role
from .permissions import needs_licence
from .retention import purge
from .retention import schedule as retention_schedule
from .settings import NODE_ROLES, Settings, describe

log = logging.getLogger("telemed")
Model = TypeVar("Model", bound=pydantic.BaseModel)

# Collect the youngest objects every 10 000 allocations instead of 700, so full passes, which stop the
# event loop for tens of milliseconds with thousands of sockets open, come far less often. Measured:
# relay p99 at 1000 msg/s fell from 11-20 ms to 2-3 ms (docs/benchmarks.md).
GC_THRESHOLDS = (10_000, 50, 100)


def tune_collector() -> None:
    """For a long-lived event loop: what exists now lives as long as the process, so keep it out of the
    collector's full passes (which pause the loop for 100 ms and more once thousands of sockets are
    open), and make those passes rarer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        node_role=getattr(args, "role", None),
    )


async def _serve(settings: Settings, demo: bool) -> None:
    database = Database(settings.database_url)
    try:
        await prepare_database(database, settings)
        media_only = settings.node_role == "media"
        if demo and not media_only:  # (the nodes that serve users seed the demo)
            await seed_demo(database)
            await seed_demo_referrals(database)
    except BaseException:
        await database.close()
        raise
    runner = web.AppRunner(create_app(settings, database=database, warm_relays=True),
                           access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        tune_collector()  # once start-up is done: modules, schemas, templates and the ORM's metadata
        host, port = runner.addresses[0][:2]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104  (display only)
        url = f"http://[{shown_host}]:{port}" if ":" in shown_host else f"http://{shown_host}:{port}"
        if media_only:
            print(f"Telemed media node is listening on {url} (probes and metrics only; it runs the relays "
                  "other nodes hand it)", flush=True)
        else:
            print(f"Telemed is listening on {url}", flush=True)
        if demo and not media_only:
            print(f"Demo logins (password for each: {DEMO_PASSWORD}):")
            for login in demo_logins():
                print(f"  {login.username:<12} {login.role.value:<14} {login.display_name}")
            print("Log in as dr.li in one browser and dr.wang in another, then open the consultation.",
                  flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logcontext.configure(settings.log_level, settings.log_format)
    asyncio.run(_serve(settings, args.demo))
    return 0


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[None]], *, prepare: bool = True) -> int:
    """Open the database (migrated, or checked to be current), do one piece of work, close it."""

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            if prepare:
                await prepare_database(database, settings)
            await work(database)
        finally:
            await database.close()

    asyncio.run(run())
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    async def upgrade(database: Database) -> None:
        await database.upgrade(args.revision)
        print(f"Database is at revision {await database.current_revision()}.")

    return _with_database(_settings(args), upgrade, prepare=False)


def cmd_demo(args: argparse.Namespace) -> int:
    async def seed(database: Database) -> None:
        seeded = await seed_demo(database)
        await seed_demo_referrals(database)
        print("Demo partnership added." if seeded else "Demo partnership was already there.")

    return _with_database(_settings(args), seed)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the audit trail's hash chain; exit 1 at the first entry altered, removed or inserted."""
    outcome: list[audit.Break | None] = []

    async def walk(database: Database) -> None:
        events = await audit.trail(database)
        found = audit.check(events)
        outcome.append(found)
        if found is None:
            head = events[-1].hash if events else audit.GENESIS
            print(f"Audit trail holds: {len(events)} entries; latest hash {head}.")
        else:
            print(f"Audit trail broken at {found}.", file=sys.stderr)

    _with_database(_settings(args), walk)
    return 1 if outcome and outcome[0] is not None else 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Write the database and the sealed files into one archive with a manifest; never the keys."""
    done = backups.backup(_settings(args), Path(args.file))
    print(f"Backed up the database (schema revision {done.schema_revision}) and {done.files} file(s), "
          f"{done.bytes} bytes, to {done.path}.")
    print("The keys are not in it: keep the recording key (TELEMED_RECORDING_KEY, or keys/recording-key in the "
          "data directory) apart from it; without it nothing in the backup can be opened.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into an empty data directory and database; exit 1 if the audit trail it brings back
    does not hold."""
    done = backups.restore(_settings(args), Path(args.file), force=args.force)
    print(f"Restored the database (schema revision {done.schema_revision}) and {done.files} file(s).")
    if done.audit_break is not None:
        print(f"Audit trail broken at {done.audit_break}.", file=sys.stderr)
        return 1
    print(f"Audit trail holds: {done.audit_entries} entries. Run `telemed db upgrade` if this telemed is newer "
          "than the one that made the backup.")
    return 0


def _instant(raw: str) -> datetime:
    """An ISO 8601 date or time for ``--now``; one without a zone is read as UTC."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 date or time (2029-06-01T00:00:00+08:00)") \
            from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def cmd_retention_run(args: argparse.Namespace) -> int:
    """Purge what has outlived its retention (or, with --dry-run, say what would go); exit 1 if a purge is
    running elsewhere."""
    settings = _settings(args)
    periods = purge.periods_of(settings.retention_recordings_days, settings.retention_records_days)
    outcome: list[purge.Outcome | None] = []

    async def work(database: Database) -> None:
        if args.dry_run:
            outcome.append(await purge.run(database, settings.recordings_dir, periods, now=args.now, dry_run=True))
        else:
            try:
                outcome.append(await retention_schedule.run_exclusive(
                    database, settings.recordings_dir, periods, retention_schedule.holder_name("cli"), now=args.now))
            except retention_schedule.LeaseLost:
                outcome.append(None)

    _with_database(settings, work)
    done = outcome[0] if outcome else None
    if done is None:
        print("Another purge is running now (or took over from this one); try again when it has finished.",
              file=sys.stderr)
        return 1
    verb = "would purge" if done.dry_run else "purged"
    for item in done.purged:
        print(f"{verb} {item['kind']} {item['id']} (patient {item['patient_id']}, consultation "
              f"{item['consultation_id']}): kept until {item['expired_at']}")
    for item in done.held:
        print(f"held {item['kind']} {item['id']} (patient {item['patient_id']}, consultation "
              f"{item['consultation_id']}): expired {item['expired_at']}, kept by a legal hold")
    print(f"At {done.now.astimezone(UTC).isoformat()}: {len(done.purged)} {verb}, {len(done.held)} held"
          + ("" if done.dry_run else f", {done.files_removed} file(s) removed") + ".")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise SettingsError("The two passwords differ.")
    return first


def _input(model: type[Model], **values: object) -> Model:
    """Arguments into the operation's input model, as the API and the pages parse theirs."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise SettingsError("; ".join(f"{k}: {v}" for k, v in validation_fields(exc).items())) from None


def _as_shell(args: argparse.Namespace, work: Callable[[AsyncSession], Awaitable[None]], *,
              settings: Settings | None = None) -> int:
    """Run one console operation as the shell (an administrator: it holds the machine); an error the operation
    refuses with (no such account, the last administrator...) is printed like a bad setting, exit status 2."""

    async def run(database: Database) -> None:
        async with database.session() as session:
            try:
                await work(session)
            except TelemedError as exc:
                raise SettingsError(exc.message) from None

    return _with_database(settings or _settings(args), run)


def _as_shell_telling_rooms(args: argparse.Namespace,
                            work: Callable[[AsyncSession, RoomNotifier | None], Awaitable[None]]) -> int:
    """A console operation a live call must hear of (an account disabled, reset, its licence changed): where the
    nodes share a Redis it tells the rooms itself (``console_rooms``); otherwise, or for a room the bus did not
    answer for, each node's account sweep carries it. The shell is told which."""
    settings = _settings(args)
    rooms: ConsoleRooms | None = None

    async def telling(session: AsyncSession) -> None:
        nonlocal rooms
        rooms = ConsoleRooms(settings.redis_url, prefix=settings.redis_prefix) if settings.redis_url else None
        try:
            await work(session, rooms)
        finally:
            if rooms is not None:
                await rooms.close()

    done = _as_shell(args, telling, settings=settings)
    within = f"within {settings.account_sweep_seconds:g} s, at each server's next account sweep"
    if rooms is None:
        print(f"A call it is in follows {within} (no TELEMED_REDIS_URL: the shell reaches no call itself).",
              file=sys.stderr)
    elif rooms.missed:
        print(f"The bus (Redis) did not answer for {len(rooms.missed)} room(s): a call there follows {within}.",
              file=sys.stderr)
    elif rooms.told:
        print(f"Told the {len(rooms.told)} open room(s) of its consultations.", file=sys.stderr)
    else:
        print(f"Told no room: none of its consultations has a room open under TELEMED_REDIS_PREFIX "
              f"{settings.redis_prefix!r} (a call on servers with another prefix follows {within}).",
              file=sys.stderr)
    return done


async def _hospital_id(session: AsyncSession, name_or_id: str) -> int:
    hospital_filter = [Hospital.name == name_or_id]
    if name_or_id.isdigit():
        hospital_filter.append(col(Hospital.id) == int(name_or_id))
    hospital = (await session.exec(select(Hospital).where(or_(*hospital_filter)))).first()
    if hospital is None or hospital.id is None:
        raise SettingsError(f"There is no hospital {name_or_id!r} (give its exact name or id).")
    return hospital.id


def cmd_user_create(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if problem := password_problem(password):
        raise SettingsError(f"The password {problem}.")

    # the licence is checked before the account is made, so a mistyped number leaves no half-made account
    licence = _input(LicenceInput, licence_number=args.licence or "",
                     professional_title=args.title or ProfessionalTitle.NONE.value)
    if (args.licence or args.title or args.verified) and not needs_licence(Role(args.role)):
        raise SettingsError(f"A {args.role} has no practising licence: --licence, --title and --verified are for "
                            "county doctors and specialists.")
    if args.verified and not args.licence:
        raise SettingsError("--verified needs the --licence number that was checked.")

    async def create(session: AsyncSession) -> None:
        body = _input(NewAccount, username=args.username, display_name=args.display_name or args.username,
                      role=args.role, hospital_id=await _hospital_id(session, args.hospital), password=password)
        account, _ = await accounts.create(session, SHELL, body)
        print(f"Created {account.user.role.value} {account.user.username!r} (id {account.id}) "
              f"at {account.hospital.name}.")
        if args.licence or args.title or args.verified:
            await _licence(session, account.id, args.username, licence, args.verified, rooms=None)  # in no room

    return _as_shell(args, create)


async def _licence(session: AsyncSession, user_id: int, username: str, body: LicenceInput, verify: bool, *,
                   rooms: RoomNotifier | None) -> None:
    """Enter a clinician's licence (and title) and, asked to, verify it, as an administrator would in the
    console; the audit trail names the shell."""
    account = await accounts.set_licence(session, SHELL, user_id, body, rooms=rooms)
    if verify:
        account = await accounts.verify_licence(session, SHELL, user_id, LicenceInput(
            licence_number=account.user.licence_number, professional_title=account.user.professional_title),
            rooms=rooms)
    state = "verified" if account.user.licence_verified else "not verified"
    print(f"Licence of {username!r}: {account.user.licence_number or '(none)'}, "
          f"{account.user.professional_title.value} ({state}).")


def cmd_user_licence(args: argparse.Namespace) -> int:
    async def licence(session: AsyncSession, rooms: RoomNotifier | None) -> None:
        account = await accounts.by_username(session, SHELL, args.username)
        body = _input(LicenceInput,
                      licence_number=account.user.licence_number if args.number is None else args.number,
                      professional_title=account.user.professional_title.value if args.title is None else args.title)
        await _licence(session, account.id, args.username, body, args.verify, rooms=rooms)

    return _as_shell_telling_rooms(args, licence)


def cmd_user_list(args: argparse.Namespace) -> int:
    async def show(session: AsyncSession) -> None:
        hospital = await _hospital_id(session, args.hospital) if args.hospital else None
        query = _input(AccountQuery, q=args.search, hospital_id=hospital, role=args.role, status=args.status)
        while True:
            page = await accounts.search(session, SHELL, query)
            for a in page.items:
                state = "active" if a.user.is_active else "disabled"
                print(f"{a.user.username:<20} {a.user.role.value:<14} {state:<9} {a.hospital.name}  "
                      f"{a.user.display_name}")
            if page.page >= page.pages:
                break
            query = query.model_copy(update={"page": page.page + 1})
        print(f"{page.total} account(s).", file=sys.stderr)

    return _as_shell(args, show)


def cmd_user_disable(args: argparse.Namespace) -> int:
    async def disable(session: AsyncSession, rooms: RoomNotifier | None) -> None:
        account = await accounts.by_username(session, SHELL, args.username)
        await accounts.disable(session, SHELL, account.id, rooms=rooms)
        print(f"Disabled {args.username!r}: it cannot log in, and its sessions have ended.")

    return _as_shell_telling_rooms(args, disable)


def cmd_user_enable(args: argparse.Namespace) -> int:
    async def enable(session: AsyncSession) -> None:
        account = await accounts.by_username(session, SHELL, args.username)
        await accounts.enable(session, SHELL, account.id)
        print(f"Enabled {args.username!r}: it can log in again with its password.")

    return _as_shell(args, enable)


def cmd_user_reset_password(args: argparse.Namespace) -> int:
    password = None if args.generate else _read_password(args)
    body = _input(PasswordReset, password=password)

    async def reset(session: AsyncSession, rooms: RoomNotifier | None) -> None:
        account = await accounts.by_username(session, SHELL, args.username)
        generated = await accounts.reset_password(session, SHELL, account.id, body, rooms=rooms)
        if generated:
            print(f"New password for {args.username!r} (shown this once; give it to them privately): {generated}")
        print(f"The password of {args.username!r} was reset, and its sessions have ended. It is temporary: "
              "they set their own at their next login.")

    return _as_shell_telling_rooms(args, reset)


def cmd_bench_relay(args: argparse.Namespace) -> int:
    from media.bench import main_relay

    return main_relay(args.subscribers or [1, 2, 4, 8, 16], args.seconds, args.capacity or None, args.json)


def cmd_bench_recording(args: argparse.Namespace) -> int:
    from media.bench import main_recording

    return main_recording(args.seconds, args.json)


def cmd_bench_mixed(args: argparse.Namespace) -> int:
    from .bench_mixed import main as mixed_main

    return mixed_main(args.clients, args.rate, args.seconds, args.streams, args.json)


def cmd_bench_impairment(args: argparse.Namespace) -> int:
    from media.impairment import main as impairment_main

    return impairment_main(args.json, clear_seconds=args.clear_seconds, capped_seconds=args.capped_seconds,
                           recovery_seconds=args.recovery_seconds, settled_seconds=args.settled_seconds,
                           browser=args.browser)


def cmd_bench_signaling(args: argparse.Namespace) -> int:
    from .bench import TOLERANCES
    from .bench import main as bench_main

    tolerances = {}
    for item in args.tolerance or []:
        metric, _, fraction = item.partition("=")
        if metric not in TOLERANCES:
            raise SystemExit(f"--tolerance: no figure {metric!r}; one of {', '.join(TOLERANCES)}")
        tolerances[metric] = float(fraction)
    return bench_main(args.clients, args.rate or [1000, 4000], args.seconds, args.json,
                      compare_with=Path(args.compare) if args.compare else None, tolerances=tolerances)


def cmd_icd10_load(args: argparse.Namespace) -> int:
    """Make a hospital's ICD-10 list (a UTF-8 CSV) the one reports' diagnoses are picked from."""
    from .reports import icd10

    try:
        diagnoses = icd10.parse_csv(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"telemed: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    except TelemedError as exc:
        print(f"telemed: {args.file}: {exc.message}", file=sys.stderr)
        return 1

    async def load(database: Database) -> None:
        async with database.session() as session:
            count = await icd10.replace(session, diagnoses, actor="shell")
        print(f"Loaded {count} ICD-10 diagnoses from {args.file}; reports now pick from this list.")

    return _with_database(_settings(args), load)


def cmd_report_verify(args: argparse.Namespace) -> int:
    """Check a signed report PDF: its signature, and its hash against the one recorded; exit 1 unless both hold."""
    from .reports import service as reports
    from .reports import signing

    try:
        pdf = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"telemed: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    settings = _settings(args)
    signer, hospitals = signing.load(settings), signing.load_hospitals(settings)
    outcome: list[reports.Verification] = []

    async def verify(database: Database) -> None:
        async with database.session() as session:
            outcome.append(await reports.verify_bytes(session, pdf, signer, *hospitals.values()))

    _with_database(settings, verify)
    found = outcome[0]
    c = found.check

    def yes(value: bool) -> str:
        return "yes" if value else "NO"

    print(f"File:       {args.file}\nSHA-256:    {c.sha256}")
    print(f"Signed:     {yes(c.signed)}" + (f" by {c.signer}" if c.signer else "")
          + (f" at {c.signed_at.isoformat()}" if c.signed_at else ""))
    print(f"Signature:  intact {yes(c.intact)}; covers the whole file {yes(c.whole_file)}; "
          f"made with this deployment's certificate {yes(c.trusted)}")
    if found.report is not None:
        print(f"Recorded:   report {found.report.id}, version {found.report.version} of referral "
              f"{found.report.referral_id}; in the audit trail {yes(found.in_audit_trail)}")
    else:
        print("Recorded:   NO (no report was signed with this hash)")
    print("The report holds." if found.holds else "The report does NOT hold.")
    return 0 if found.holds else 1


def _settings_epilog() -> str:
    rows = "\n".join(f"  {name:<36} {doc}" for name, _, doc in describe())
    return f"Settings are read from the environment:\n{rows}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telemed",
        description="Telemedicine video consultations for medical partnerships.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", help="data directory (TELEMED_DATA_DIR; default ./var)")
        return p

    serve = with_data_dir(commands.add_parser(
        "serve", help="run the web server",
        description="Run the web server. On the embedded SQLite database, migrations are applied first."))
    serve.add_argument("--host", help="address to listen on (TELEMED_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on, 0 for any free one (TELEMED_PORT; default 8080)")
    serve.add_argument("--demo", action="store_true", help="seed the demo partnership and print its logins")
    serve.add_argument("--role", choices=NODE_ROLES,
                       help="all: pages, API, signaling and relays; media: only relays other nodes hand this one "
                            "(TELEMED_NODE_ROLE; default all)")
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database maintenance", description="Database maintenance.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = with_data_dir(db_commands.add_parser(
        "upgrade", help="apply schema migrations",
        description="Apply the schema migrations to the database named by TELEMED_DATABASE_URL."))
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    upgrade.set_defaults(func=cmd_db_upgrade)

    demo = with_data_dir(commands.add_parser(
        "demo", help="seed demo data only",
        description="Add the demo medical partnership, its clinicians and a consultation, if not there yet."))
    demo.set_defaults(func=cmd_demo)

    audit_parser = commands.add_parser("audit", help="the audit trail", description="The audit trail.")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    audit_verify = with_data_dir(audit_commands.add_parser(
        "verify", help="check the hash chain",
        description="Walk the hash chain of the audit trail and report the first entry that was altered, "
                    "removed or inserted (exit status 1), or the latest hash when it holds."))
    audit_verify.set_defaults(func=cmd_audit_verify)

    backup_parser = with_data_dir(commands.add_parser(
        "backup", help="back up the database and the sealed files",
        description="Write the database (SQLite's online backup, or pg_dump) and the sealed recordings, "
                    "attachments and reports' PDFs into one tar file (.tar.gz to compress) with a manifest of "
                    "their SHA-256. Never the keys: the manifest says which recording key the files need."))
    backup_parser.add_argument("file", help="the archive to write (must not exist yet)")
    backup_parser.set_defaults(func=cmd_backup)
    restore_parser = with_data_dir(commands.add_parser(
        "restore", help="restore a backup into an empty deployment",
        description="Restore a backup into the data directory and the database TELEMED_DATABASE_URL names, "
                    "after checking every file against the manifest and that the configured recording key is "
                    "the one the files need. Refuses if either already holds data, unless --force; then "
                    "checks the audit trail (exit status 1 if it does not hold)."))
    restore_parser.add_argument("file", help="the archive telemed backup wrote")
    restore_parser.add_argument("--force", action="store_true",
                                help="delete the recordings and the database that are there first")
    restore_parser.set_defaults(func=cmd_restore)

    retention = commands.add_parser("retention", help="retention of recordings and records",
                                    description="Retention of recordings and records.")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True,
                                                  metavar="RETENTION_COMMAND")
    retention_run = with_data_dir(retention_commands.add_parser(
        "run", help="purge what has outlived its retention",
        description="Delete for good (the file and its own key) the recordings and attachments whose retention "
                    "has run out, except those under a legal hold; each is recorded in the audit trail. Runs "
                    "once, and not while another purge runs (exit status 1 then)."))
    retention_run.add_argument("--dry-run", action="store_true", help="list what would be purged; change nothing")
    retention_run.add_argument("--now", type=_instant, default=None,
                               help="the moment to judge expiry at, ISO 8601 (UTC if no zone); default: now")
    retention_run.set_defaults(func=cmd_retention_run)

    icd10_parser = commands.add_parser("icd10", help="the ICD-10 code list",
                                       description="The ICD-10 code list reports' diagnoses are picked from.")
    icd10_commands = icd10_parser.add_subparsers(dest="icd10_command", required=True, metavar="ICD10_COMMAND")
    icd10_load = with_data_dir(icd10_commands.add_parser(
        "load", help="load the hospital's own list",
        description="Replace the code list with the hospital's own (for instance the national edition, GB/T "
                    "14396): a UTF-8 CSV with a header row naming code and title_zh and/or title_en."))
    icd10_load.add_argument("file", help="the CSV file")
    icd10_load.set_defaults(func=cmd_icd10_load)

    report_parser = commands.add_parser("report", help="consultation reports",
                                        description="Signed consultation reports.")
    report_commands = report_parser.add_subparsers(dest="report_command", required=True, metavar="REPORT_COMMAND")
    report_verify = with_data_dir(report_commands.add_parser(
        "verify", help="check a signed report PDF",
        description="Say whether a report PDF's signature holds (intact, over the whole file, made with this "
                    "deployment's certificate), who signed it, and whether its SHA-256 is the one recorded when "
                    "it was signed. Exit status 1 unless all hold."))
    report_verify.add_argument("file", help="the PDF file")
    report_verify.set_defaults(func=cmd_report_verify)

    user = commands.add_parser("user", help="manage accounts", description="Manage accounts.")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="USER_COMMAND")
    create = with_data_dir(user_commands.add_parser(
        "create", help="create an account",
        description="Create an account. The password is asked for twice, or read from one line of stdin."))
    create.add_argument("--username", required=True)
    create.add_argument("--display-name", help="name shown to others (default: the username)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--hospital", required=True, help="hospital name or id")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--licence", help="a clinician's practising licence number (执业证书编码, 15 digits)")
    create.add_argument("--title", choices=[t.value for t in ProfessionalTitle], help="a clinician's title")
    create.add_argument("--verified", action="store_true",
                        help="record the licence as verified (by the shell) at once, as when bootstrapping")
    create.set_defaults(func=cmd_user_create)
    licence = with_data_dir(user_commands.add_parser(
        "licence", help="enter or verify a clinician's licence",
        description="Set a clinician's practising licence number and title (changing either clears its "
                    "verification) and, with --verify, record that you checked them. Until it is verified the "
                    "clinician cannot host a consultation, be booked or sign a report."))
    licence.add_argument("username")
    licence.add_argument("--number", help="the licence number (执业证书编码, 15 digits; \"\" for none)")
    licence.add_argument("--title", choices=[t.value for t in ProfessionalTitle])
    licence.add_argument("--verify", action="store_true", help="record the licence as verified")
    licence.set_defaults(func=cmd_user_licence)
    listing = with_data_dir(user_commands.add_parser(
        "list", help="list accounts", description="List accounts by username: username, role, state, hospital, "
                                                   "name. Each option narrows the list."))
    listing.add_argument("--search", default="", help="part of a username or a name")
    listing.add_argument("--hospital", help="hospital name or id")
    listing.add_argument("--role", choices=[r.value for r in Role])
    listing.add_argument("--status", choices=["active", "disabled", "any"], default="any")
    listing.set_defaults(func=cmd_user_list)
    disable = with_data_dir(user_commands.add_parser(
        "disable", help="disable an account",
        description="Disable an account: it can no longer log in, and every session it has ends now (re-enabling "
                    "it does not bring them back). The last active administrator cannot be disabled."))
    disable.add_argument("username")
    disable.set_defaults(func=cmd_user_disable)
    enable = with_data_dir(user_commands.add_parser(
        "enable", help="re-enable a disabled account",
        description="Let a disabled account log in again, with the password it had."))
    enable.add_argument("username")
    enable.set_defaults(func=cmd_user_enable)
    reset = with_data_dir(user_commands.add_parser(
        "reset-password", help="give an account a new password",
        description="Give an account a new password and end its sessions. The password is asked for twice, "
                    "read from one line of stdin, or generated and printed once."))
    reset.add_argument("username")
    source = reset.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    source.add_argument("--generate", action="store_true", help="generate a temporary password and print it")
    reset.set_defaults(func=cmd_user_reset_password)

    bench = commands.add_parser("bench", help="measure performance", description="Measure performance.")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    signaling_bench = bench_commands.add_parser(
        "signaling", help="connections, memory, throughput and relay latency of signaling",
        description="Start real nodes (one on the in-process bus, then two over a redis-server it starts), "
                    "connect simulated participants in rooms of 2 to 4, relay messages at each rate, and "
                    "report connections held, memory per connection, throughput and latency percentiles.")
    signaling_bench.add_argument("--clients", type=int, default=1000, help="simulated participants (default 1000)")
    signaling_bench.add_argument("--rate", type=int, action="append",
                                 help="messages per second to offer; repeat for several (default 1000 and 4000)")
    signaling_bench.add_argument("--seconds", type=float, default=10.0, help="seconds at each rate (default 10)")
    signaling_bench.add_argument("--json", action="store_true", help="print JSON instead of text")
    signaling_bench.add_argument("--compare", metavar="REPORT.json",
                                 help="also print each figure against a recorded --json report (e.g. "
                                      "docs/bench/signaling.json) and exit 1 if any is worse than its "
                                      "tolerance allows")
    signaling_bench.add_argument("--tolerance", action="append", metavar="METRIC=FRACTION",
                                 help="how much worse a figure may be, as a fraction of the recorded one "
                                      "(defaults: memory_per_connection_kib=0.15, latency_ms_p50=0.75, "
                                      "latency_ms_p99=2.0, redis_added_latency_ms_p50=1.5)")
    signaling_bench.set_defaults(func=cmd_bench_signaling)
    relay_bench = bench_commands.add_parser(
        "relay", help="media relay CPU, frame rate and added latency against aiortc's MediaRelay",
        description="Forward one 640x480 VP8 30 fps stream to 1, 2, 4, 8 and 16 subscribers through the "
                    "pass-through relay and through aiortc's MediaRelay, each in a process of its own.")
    relay_bench.add_argument("--subscribers", type=int, action="append",
                             help="subscriber counts to measure (repeatable; default 1 2 4 8 16)")
    relay_bench.add_argument("--seconds", type=float, default=8.0, help="seconds measured at each point (default 8)")
    relay_bench.add_argument("--capacity", type=int, default=0,
                             help="also forward to this many subscribers through the relay alone (e.g. 100)")
    relay_bench.add_argument("--json", action="store_true", help="print JSON instead of text")
    relay_bench.set_defaults(func=cmd_bench_relay)
    mixed_bench = bench_commands.add_parser(
        "mixed", help="signaling latency with and without relayed media, relay in workers or on the node's loop",
        description="On one real node, time signaling messages alone and beside media rooms relaying at least "
                    "--streams video streams (real aiortc peers in a process of their own), with the relay on "
                    "the node's own loop and in its worker processes.")
    mixed_bench.add_argument("--clients", type=int, default=200, help="signaling participants (default 200)")
    mixed_bench.add_argument("--rate", type=int, default=500, help="signaling messages per second (default 500)")
    mixed_bench.add_argument("--seconds", type=float, default=10.0, help="seconds measured each time (default 10)")
    mixed_bench.add_argument("--streams", type=int, default=100, help="relayed video streams (default 100)")
    mixed_bench.add_argument("--json", action="store_true", help="print JSON instead of text")
    mixed_bench.set_defaults(func=cmd_bench_mixed)
    recording_bench = bench_commands.add_parser(
        "recording", help="recording CPU against aiortc's MediaRecorder",
        description="Record one 640x480 VP8 30 fps stream by muxing its packets, and with MediaRecorder.")
    recording_bench.add_argument("--seconds", type=float, default=10.0, help="seconds measured (default 10)")
    recording_bench.add_argument("--json", action="store_true", help="print JSON instead of text")
    recording_bench.set_defaults(func=cmd_bench_recording)
    impairment_bench = bench_commands.add_parser(
        "impairment", help="each viewer's layer, frame rate, frozen time and audio behind a capped, lossy link",
        description="Relay a two-layer publisher to two viewers, one of them in a network namespace whose "
                    "link is clear, then capped at 300 kbit/s with 5 %% loss, then clear again; report per "
                    "viewer the layer over time, frames per second, frozen time and audio received, lost and "
                    "concealed, and the time back to the high layer. Needs root, iproute2 and nftables.")
    impairment_bench.add_argument("--clear-seconds", type=float, default=5.0,
                                  help="seconds measured before the cap (default 5)")
    impairment_bench.add_argument("--capped-seconds", type=float, default=20.0,
                                  help="seconds the cap holds (default 20)")
    impairment_bench.add_argument("--recovery-seconds", type=float, default=60.0,
                                  help="longest wait for the high layer once the cap is lifted (default 60)")
    impairment_bench.add_argument("--settled-seconds", type=float, default=10.0,
                                  help="seconds measured once the high layer is back (default 10)")
    impairment_bench.add_argument("--browser", action="store_true",
                                  help="the weak viewer is Chromium (Debian's, through Playwright: what "
                                       "`make install-test` installs) instead of an aiortc peer")
    impairment_bench.add_argument("--json", action="store_true", help="print JSON instead of text")
    impairment_bench.set_defaults(func=cmd_bench_impairment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SettingsError, backups.BackupError) as exc:
        print(f"telemed: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
