"""The auditor's page in words and on the reader's clock: every action the server writes has a phrase, entries
are put into names, phrases and labelled values (``web/audit_view.py``), names are read in one query, the
table and its day filter use the auditor's time zone, and a filter that cannot be read is refused in the
reader's language beside its field."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from markupsafe import escape
from sqlmodel import select

from server.appkeys import DATABASE
from server.audit import review
from server.audit import trail as audit
from server.db import Database
from server.i18n import translations
from server.models import AuditEvent, Hospital, ReferralAction, Role, User
from server.permissions import Principal
from server.settings import DEFAULT_TIMEZONE as DEFAULT_ZONE
from server.settings import Settings
from web.audit_view import ACTIONS, FAMILIES, Speaker, action_choices

from ..conftest import _start
from ..support.visits import consent, invite
from .test_pages import form_login

ROOT = Path(__file__).resolve().parents[2]
EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


# --- every action the server writes has a phrase -------------------------------------------------------------

def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, ast.AST | None]]:
    """Each call with the function it is written in (None at module level)."""
    def walk(node: ast.AST, inside: ast.AST | None) -> Iterator[tuple[ast.Call, ast.AST | None]]:
        for child in ast.iter_child_nodes(node):
            here = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else inside
            if isinstance(child, ast.Call):
                yield child, inside
            yield from walk(child, here)
    yield from walk(tree, None)


def _action_argument(call: ast.Call) -> ast.expr | None:
    """The action an ``audit.Entry(...)`` or ``audit.record(...)`` call writes, as written."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
    keyword = next((k.value for k in call.keywords if k.arg == "action"), None)
    if name == "Entry" and owner in ("audit", None):
        return call.args[1] if len(call.args) > 1 else keyword
    if name == "record" and owner == "audit":
        return keyword
    return None


def written_actions() -> tuple[set[str], list[str]]:
    """Every action string written anywhere in server/, and a description of each action argument this scan
    could not read (a new way of writing one, which the scan must learn before the test can pass)."""
    found: set[str] = set()
    unread: list[str] = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        if path.parts[-2:] == ("audit", "trail.py"):  # defines Entry and record; passes actions through
            continue
        calls = list(_calls(ast.parse(path.read_text(), str(path))))

        def resolve(node: ast.expr, inside: ast.AST | None, where: str,
                    calls: list[tuple[ast.Call, ast.AST | None]] = calls) -> set[str]:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                return {node.value}
            if isinstance(node, ast.IfExp):
                return resolve(node.body, inside, where) | resolve(node.orelse, inside, where)
            if isinstance(node, ast.JoinedStr) and ast.unparse(node) == "f'referral.{action.value}'":
                return {f"referral.{a.value}" for a in ReferralAction}  # server/referrals/service.py: each transition
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "entry.action":
                return set()  # an Entry's action passed on (room_gate), read where the Entry is made
            if isinstance(node, ast.Name) and isinstance(inside, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in inside.args.args]
                keywords = [a.arg for a in inside.args.kwonlyargs]
                if node.id in names + keywords:  # a helper's parameter: what its callers in this module pass
                    passed: set[str] = set()
                    for call, caller_inside in calls:
                        if not (isinstance(call.func, ast.Name) and call.func.id == inside.name):
                            continue
                        if node.id in names and len(call.args) > names.index(node.id):
                            passed |= resolve(call.args[names.index(node.id)], caller_inside, where)
                        passed |= {v for k in call.keywords if k.arg == node.id
                                   for v in resolve(k.value, caller_inside, where)}
                    return passed
            if isinstance(node, ast.Name) and inside is not None:  # a local variable: what it is assigned
                assigned = [a.value for a in ast.walk(inside) if isinstance(a, ast.Assign)
                            and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)]
                if assigned:
                    return set().union(*(resolve(value, inside, where) for value in assigned))
            unread.append(f"{where}: {ast.unparse(node)}")
            return set()

        for call, inside in calls:
            if (argument := _action_argument(call)) is not None:
                found |= resolve(argument, inside, f"{path.relative_to(ROOT)}:{call.lineno}")
    return found, unread


def test_the_scan_reads_every_way_the_server_writes_an_action() -> None:
    """Guards the test below against passing on an empty scan: it finds actions written as literals, through
    a helper's parameter, in both branches of a conditional and as the referral transitions' f-string."""
    found, unread = written_actions()
    assert not unread, f"teach written_actions() to read these: {unread}"
    assert {"auth.login", "appointment.booked", "appointment.moved", "recording.downloaded", "recording.viewed",
            "referral.accept", "referral.cancel", "consultation.joined", "consent.given"} <= found
    assert len(found) >= 50


def test_every_action_the_server_writes_has_a_phrase() -> None:
    """An action added to the server without a phrase here would show as ``thing.done`` to the auditor."""
    found, _ = written_actions()
    assert sorted(found - ACTIONS.keys()) == [], "add these to web/audit_view.py ACTIONS"
    assert sorted(ACTIONS.keys() - found) == [], "ACTIONS names actions nothing writes any more"
    assert {a.split(".")[0] + "." for a in ACTIONS} <= FAMILIES.keys()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_phrase_is_translated(locale: str) -> None:
    """Each action phrase and family reads in the language (zh-CN: not left in English)."""
    gettext = translations(locale).gettext
    for message in [*ACTIONS.values(), *FAMILIES.values()]:
        shown = gettext(message)
        assert shown and (locale == "en" or shown != message), message
    assert translations("zh-CN").gettext(ACTIONS["referral.accept"]) == "接受转诊"
    groups = action_choices(gettext)
    assert sum(len(options) - 1 for _, options in groups) == len(ACTIONS)


# --- entries in words ---------------------------------------------------------------------------------------

NAMES = review.Names({
    ("user", 4): review.Named("赵丽 Zhao Li", "coordinator", "省人民医院 Provincial"),
    ("user", 2): review.Named("王芳 Wang Fang", "specialist", "省人民医院 Provincial"),
    ("patient", 1): review.Named("张* Z****", "patient", "青山县 Qingshan"),
    ("hospital", 3): review.Named("白河县 Baihe"),
    ("specialty", 1): review.Named("心血管内科", other_name="Cardiology"),
})


def _event(action: str, detail: str, actor: str = "user:4", subject: str = "") -> AuditEvent:
    return AuditEvent(id=7, at=datetime(2030, 5, 3, 23, 30, tzinfo=UTC), actor=actor, action=action,
                      subject=subject, detail=detail, prev_hash="0" * 64, hash="1" * 64)


@pytest.mark.parametrize(("event", "locale", "actor", "action", "subject", "details"), [
    (_event("referral.accept", '{"state": "accepted"}', subject="referral:3"), "en",
     ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"), "Referral accepted", "Referral 3",
     [("State", "Accepted")]),
    (_event("referral.accept", '{"state": "accepted"}', subject="referral:3"), "zh-CN",
     ("赵丽 Zhao Li", "协调员", "省人民医院 Provincial"), "接受转诊", "转诊 3", [("状态", "已接受")]),
    (_event("consent.given", '{"for": "patient:1", "method": "clicked", "purpose": "recording", "referral": null,'
            ' "template": 2, "version": 1}', actor="patient:1", subject="consent:5"), "en",
     ("Patient 1 (张* Z****)", "Patient", "青山县 Qingshan"), "Consent given", "Consent 5",
     [("On behalf of", "Patient 1 (张* Z****)"), ("How", "Agreed on a page"), ("Purpose", "Being recorded"),
      ("Referral", "—"), ("Consent text", "Consent text 2"), ("Version", "1")]),
    (_event("appointment.booked", '{"appointment": 9, "starts_at": "2030-05-04T00:00:00+00:00"}',
            subject="referral:3"), "en", ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"),
     "Appointment booked", "Referral 3", [("Appointment", "Appointment 9"), ("Starts", "2030-05-04 08:00 CST")]),
    (_event("account.updated", '{"changes": {"hospital_id": [3, 99], "specialty_id": [null, 1]}}', actor="shell",
            subject="user:2"), "en", ("Administrator at the server's shell", "", ""), "Account changed",
     "王芳 Wang Fang", [("Changes", "Hospital: 白河县 Baihe → hospital:99; Specialty: — → Cardiology")]),
    (_event("auth.login_failed", '{"address": "10.0.0.7"}', actor="anonymous", subject="username:dr.x"), "zh-CN",
     ("未登录的访问者", "", ""), "登录失败", "用户名 dr.x", [("IP 地址", "10.0.0.7")]),
    (_event("recording.viewed", '{"participants": 3, "viewing": "ab12"}', subject="recording:2"), "en",
     ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"), "Recording played", "Recording 2",
     [("Participants", "3"), ("Viewing", "ab12")]),
    (_event("consultation.created", '{"participants": [2, 4], "patient": 1, "planned_start": '
            '"2030-05-03T23:30:00+00:00"}', subject="consultation:1"), "zh-CN",
     ("赵丽 Zhao Li", "协调员", "省人民医院 Provincial"), "创建会诊", "会诊 1",
     [("参会者", "王芳 Wang Fang, 赵丽 Zhao Li"), ("患者", "患者 1（张* Z****）"),
      ("计划开始时间", "2030-05-04 07:30 CST")]),
    (_event("audit.exported", '{"entries": 3, "filter": {"action": "consent.", "actor": "patient:1"}, '
            '"format": "csv"}'), "en", ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"),
     "Audit trail exported", "", [("Entries", "3"), ("Filter", "Action: Consents; Who: Patient 1 (张* Z****)"),
                                   ("Format", "CSV")]),
    (_event("retention.purged", '{"kind": "recording", "id": 2, "anchor": "2020-05-03T23:30:00+00:00", '
            '"expired_at": "2030-05-03T23:30:00+00:00", "reason": "retention period ended", '
            '"key": "own key deleted"}', actor="system", subject="recording:2"), "zh-CN", ("系统", "", ""),
     "保存期满，已删除", "录像 2",
     [("类别", "录像"), ("编号", "2"), ("保存起算", "2020-05-04 07:30 CST"), ("保存至", "2030-05-04 07:30 CST"),
      ("原因", "保存期限已满"), ("加密密钥", "其专用密钥已删除：任何副本都无法再读取")]),
    (_event("account.created", '{"role": "supervisor", "username": "sup.li"}', actor="shell", subject="user:2"),
     "zh-CN", ("服务器命令行的管理员", "", ""), "创建账号", "王芳 Wang Fang",
     [("角色", "监管人员"), ("用户名", "sup.li")]),
    (_event("partnership.supervisor_added", '{"user_id": 2}', subject="partnership:1"), "en",
     ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"), "Supervisor linked to a partnership",
     "partnership:1", [("Account", "王芳 Wang Fang")]),
    (_event("patient.viewed", '{"via": "referral:3", "format": "request-pdf"}', subject="patient:1"),
     "zh-CN", ("赵丽 Zhao Li", "协调员", "省人民医院 Provincial"), "查看患者病历", "患者 1（张* Z****）",
     [("查看位置", "转诊 3"), ("格式", "PDF")]),
    (_event("report.downloaded", '{"referral": 3, "version": 1, "locale": "zh-CN"}', subject="report:4"), "en",
     ("赵丽 Zhao Li", "Coordinator", "省人民医院 Provincial"), "Consultation report downloaded", "Report 4",
     [("Referral", "Referral 3"), ("Version", "1"), ("Language", "Simplified Chinese")]),
    (_event("something.new", '{"odd": {"b": 1}}', actor="user:999"), "en", ("user:999", "", ""), "something.new",
     "", [("odd", '{"b": 1}')]),
    (_event("patient.viewed", 'not json', actor="system"), "en", ("The system", "", ""), "Patient's record viewed",
     "", [("detail", "not json")]),
])
def test_an_entry_in_words(event: AuditEvent, locale: str, actor: tuple[str, str, str], action: str, subject: str,
                           details: list[tuple[str, str]]) -> None:
    """Actors as a name, role and hospital; actions as phrases; subjects and detail values as named things,
    times on the reader's clock, words for codes; what is not known (a new action, an unknown account, an
    altered entry) shows as it was written rather than failing."""
    speaker = Speaker(NAMES, "Asia/Shanghai", translations(locale).gettext, locale)
    shown = speaker.entry(event)
    assert (shown.actor.name, shown.actor.role, shown.actor.hospital) == actor
    assert (shown.action_label, shown.subject, shown.details) == (action, subject, details)
    assert shown.when == "2030-05-04 07:30:00" and event.actor in shown.raw


def test_patients_are_masked() -> None:
    """The audit view masks a patient's name to each word's first character and a star for each other one (张伟 as
    张*, Zhang Wei as Z**** W**); an empty name stays empty."""
    assert review.masked("张伟") == "张*" and review.masked("张伟 Zhang Wei") == "张* Z**** W**"
    assert review.masked("") == ""


# --- the page ------------------------------------------------------------------------------------------------

async def _set_zone(client: TestClient, username: str, zone: str) -> None:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        hospital = await session.get(Hospital, user.hospital_id)
        assert hospital is not None
        hospital.timezone = zone
        session.add(hospital)
        await session.commit()


@pytest.mark.parametrize(("zone", "shown", "short", "finds", "misses"), [
    ("Asia/Shanghai", "2030-05-04 07:30:00", "CST", "2030-05-04", "2030-05-03"),
    ("America/New_York", "2030-05-03 19:30:00", "EDT", "2030-05-03", "2030-05-04"),
])
async def test_the_table_and_its_day_filter_use_the_auditors_clock(
        client: TestClient, monkeypatch: pytest.MonkeyPatch, zone: str, shown: str, short: str, finds: str,
        misses: str) -> None:
    """Guards the mismatch of the table in UTC and the filter on Beijing days: an entry at 2030-05-03 23:30
    UTC shows on the day of the auditor's clock, and filtering by that day finds it, the other day not."""
    monkeypatch.setattr(audit, "utcnow", lambda: datetime(2030, 5, 3, 23, 30, tzinfo=UTC))
    await audit.record(client.app[DATABASE], actor="user:1", action="patient.viewed", subject="patient:1",
                       detail={"via": "chart"})
    monkeypatch.undo()
    await _set_zone(client, "auditor", zone)
    await form_login(client, "auditor")
    found = await (await client.get(f"/audit?action=patient.viewed&since={finds}&until={finds}", headers=EN)).text()
    assert f">{shown}</time>" in found and f"When ({short})" in found
    missed = await (await client.get(f"/audit?action=patient.viewed&since={misses}&until={misses}", headers=EN)).text()
    assert "</time>" not in missed and "No entries match." in missed
    api = await (await client.get(f"/api/audit?since={finds}&until={finds}", headers=EN)).json()
    assert [e["action"] for e in api["entries"]] == ["patient.viewed"], "the API reads days on the same clock"


async def _activity(client: TestClient) -> None:
    guest = await invite(client)
    await consent(client, guest, "video")
    await consent(client, guest, "recording")
    await consent(client, guest, "recording", given=False)


@pytest.mark.parametrize(("headers", "words"), [
    (EN, ["李明 Li Ming", "County doctor", "青山县人民医院", "Patient invited", "Consent given", "Purpose",
          "Taking part by video", "Patient 1 (张* Z**** W**)", "Logged in", "When (CST)", "As recorded (JSON)"]),
    (ZH, ["李明 Li Ming", "县级医生", "青山县人民医院", "邀请患者", "给出知情同意", "用途", "参加视频会诊",
          "患者 1（张* Z**** W**）", "登录", "时间（CST）", "原始记录（JSON）", ">截止日期<"]),
])
async def test_the_page_speaks_of_people_and_actions(client: TestClient, headers: dict[str, str],
                                                     words: list[str]) -> None:
    """The auditor reads names, roles, phrases and labelled details, not ``user:4`` and JSON (which stays
    folded in a <details> for the expert); a patient is a masked reference, never their name."""
    await _activity(client)
    await form_login(client, "auditor")
    response = await client.get("/audit", headers=headers)
    text = await response.text()
    assert response.status == 200
    assert [w for w in words if w not in text] == []
    table = text.split('id="audit-entries"', 1)[1]
    outside_raw = re.sub(r"<details.*?</details>", "", table, flags=re.DOTALL)
    assert "user:1" not in outside_raw.replace('actor=user%3A1', "") and "&#34;" not in outside_raw
    assert "张伟" not in text, "a patient's name is not shown to auditors"
    assert "<details" in table and "&#34;actor&#34;: &#34;user:1&#34;" in table
    if headers is ZH:
        assert "转至" not in text, "the date range's To is 截止日期, not 'transfer to'"


@pytest.mark.parametrize(("query", "field", "message"), [
    ("since=2030-13-01", "since", "Enter a day as YYYY-MM-DD."),
    ("until=soon", "until", "Enter a day as YYYY-MM-DD."),
    ("since=0001-01-01", "since", "Enter a day between the years 1900 and 9999."),
    ("until=9999-12-31", "until", "Enter a day between the years 1900 and 9999."),
    ("since=2030-05-04&until=2030-05-03", "until", "The last day comes before the first day."),
    ("consultation=one", "consultation", "Enter a consultation's number."),
    ("before=next", "before", "This is not the number of an entry."),
])
async def test_a_filter_that_cannot_be_read_is_refused_in_the_readers_language(
        client: TestClient, query: str, field: str, message: str) -> None:
    """Guards English refusals in the Chinese page and 500s for days whose midnight is no datetime in UTC:
    each is a 422 with the sentence beside its field, in either language, and the API names the field."""
    await form_login(client, "auditor")
    chinese = translations("zh-CN").gettext(message)
    assert chinese != message
    for headers, said in ((EN, message), (ZH, chinese)):
        response = await client.get(f"/audit?{query}", headers=headers)
        text = await response.text()
        assert response.status == 422
        assert f'<span class="field-error" id="error-{field}">{escape(said)}</span>' in text
        assert 'id="export-csv"' not in text and "No entries match." not in text, "no table for a filter unread"
    api = await client.get(f"/api/audit?{query}", headers=EN)
    assert api.status == 422 and field in (await api.json())["error"]["fields"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_names_are_read_in_one_query_per_page(settings: Settings, database_url: str) -> None:
    """Guards N+1 lookups: a page naming many accounts, patients and hospitals reads their names at once, in
    one statement that both databases take."""
    if database_url.startswith("postgresql"):
        database = Database(database_url)
        await database.upgrade()  # as `telemed db upgrade` does; only the embedded database upgrades itself
        await database.close()
    client = await _start(dataclasses.replace(settings, database_url=database_url))
    try:
        database = client.app[DATABASE]
        for user_id in range(1, 9):
            await audit.record(database, actor=f"user:{user_id}", action="account.updated",
                               subject=f"user:{9 - user_id}",
                               detail={"changes": {"hospital_id": [1, 2], "specialty_id": [None, 1]}, "patient": 1})
        events = await audit.search(database, audit.AuditFilter(action="account.updated"))
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        sa.event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        try:
            names = await review.names(database, Principal(user_id=6, role=Role.AUDITOR, hospital_id=1), events)
        finally:
            sa.event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    finally:
        await client.close()
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert {k for k, _ in names.found} == {"user", "patient", "hospital", "specialty"}
    assert len(names.found) == 8 + 1 + 2 + 1
    provincial = "江南省人民医院 Jiangnan Provincial People's Hospital"
    qingshan = "青山县人民医院 Qingshan County People's Hospital"
    assert names.get("user", 4) == review.Named("赵丽 Zhao Li", "coordinator", provincial)
    assert names.get("patient", 1) == review.Named("张* Z**** W**", "patient", qingshan)


async def test_the_trail_pages_back_and_returns_to_the_newest(client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A page at a time: *Older entries* carries the filter on, and from an older page *Newest entries*
    comes back to the first."""
    monkeypatch.setattr(review, "PAGE", 2)
    await _activity(client)
    await form_login(client, "auditor")
    first = await (await client.get("/audit?action=consent.", headers=EN)).text()
    older = re.search(r'id="older-entries" href="([^"]+)"|href="([^"]+)" id="older-entries"', first)
    assert older is not None and "newest-entries" not in first
    link = (older[1] or older[2]).replace("&amp;", "&")
    assert "action=consent." in link and "before=" in link
    second = await (await client.get(link, headers=EN)).text()
    # four consent entries: the demo's consent to sharing (seeded) and the three of _activity
    assert second.count('data-action="consent.') == 2 and 'href="/audit?action=consent."' in second


async def test_an_auditor_without_a_hospital_reads_the_deployments_default_zone(client: TestClient) -> None:
    """The zone falls back to the deployment's default (the console's) when the caller has no hospital."""
    database = client.app[DATABASE]
    async with database.session() as session:
        auditor = (await session.exec(select(User).where(User.username == "auditor"))).one()
    assert await review.reader_zone(database, Principal(auditor.id or 0, Role.AUDITOR, 0)) == DEFAULT_ZONE
    await _set_zone(client, "auditor", "Asia/Kathmandu")
    assert await review.reader_zone(database, Principal(auditor.id or 0, Role.AUDITOR, auditor.hospital_id)) \
        == "Asia/Kathmandu"
