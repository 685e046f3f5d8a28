"""Every page, and every refusal or error a page can show, speaks Chinese to a zh-CN reader: no English word
of ours (a msgid left untranslated, pydantic's own message, a field's code name such as ``sharing_consent:``)
is left in what the reader sees. User data (names, titles, usernames) is taken out first; what remains may
hold no ASCII word but a short list of codes everybody reads (UTC, PDF...).

The list of pages is checked against the app's routes, so a new page cannot be forgotten here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po
from sqlalchemy import Column, String, select
from sqlmodel import SQLModel

from server.appkeys import DATABASE
from server.i18n import catalog_path
from server.models import Notification, Specialty, User

from ..server.consultations.test_recordings import stored_recording
from ..support.pdf import pdf_text
from ..support.visits import DEMO_PATIENT, consent, invite
from .test_pages import form_login

ZH = {"Accept-Language": "zh-CN"}

# Text read the same in both languages: units, formats and names of standards or products.
ALLOWED = {"utc", "cst", "gmt", "pdf", "png", "jpeg", "webp", "dicom", "kib", "mib", "sms", "wechat", "qr", "id",
           "hh", "mm", "yyyy", "dd", "fhir", "ics", "url", "ms", "min", "iana", "csv", "json", "ip", "icd", "sha",
           "kbit", "mbit"}  # kbit/s and Mbit/s, as Chinese technical writing also gives a connection's speed
# An IANA zone name (Asia/Shanghai, America/Argentina/Buenos_Aires) is a name, not a word of ours.
ZONE = re.compile(r"\b[A-Z][A-Za-z]+(?:/[A-Za-z_\-]+)+")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")
TOKEN = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{10,}")
FIELD_CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
WORD = re.compile(r"[A-Za-z]{2,}")
# Attributes a reader sees or hears (a button's words, a tooltip, a screen reader's label, copy feedback).
SHOWN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "data-copied", "data-failed", "aria-description"}
# User data in tables, and what is not: consent texts come in both languages (the page picks one), the audit
# trail and stored notifications are derived from the rest.
NOT_USER_DATA = {"consent_template", "audit_event", "notification", "idempotency_key", "revoked_token"}


class _Visible(HTMLParser):
    """What a reader of the page sees: text outside scripts and styles (and outside what they typed back into a
    textarea), the attributes they see or hear, button values, and the strings the page hands its script."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip: list[str] = []
        self._json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self.parts.append(value)
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"] or "")
        # (words marked as another language, such as the language switch's "English", are that language's; code,
        # such as an audit entry as it was recorded or the form of a subject to type, is in no language)
        if tag in ("script", "style", "textarea", "svg", "code") or values.get("translate") == "no" \
                or values.get("lang", "zh").split("-")[0] != "zh":
            self._skip.append(tag)
            # the words a page hands its script to show (room-strings...); its config is data, not words
            self._json = tag == "script" and values.get("type") == "application/json" \
                and (values.get("id") or "").endswith("-strings")

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()
            self._json = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)
        elif self._json:
            self.parts.extend(_strings(json.loads(data)))


def _strings(value: object) -> Iterable[str]:
    """The strings a script is handed to show: every string in the JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "\n".join(parser.parts)


def _is_text(column: Column) -> bool:
    impl = getattr(column.type, "impl", None)  # sqlmodel's AutoString decorates a String
    return isinstance(column.type, String) or impl is String or isinstance(impl, String)


async def user_data(client: TestClient) -> list[str]:
    """Every piece of text people typed into the platform (names, titles, reasons...), longest first: these are
    shown as they were written. Enum values and codes (no space, ASCII only) are not user data but ours."""
    found: set[str] = set()
    async with client.app[DATABASE].session() as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in NOT_USER_DATA:
                continue
            columns = [c for c in table.columns if _is_text(c)]
            if not columns:
                continue
            for row in (await session.exec(select(*columns))).all():  # type: ignore[call-overload]
                for value in row:
                    if isinstance(value, str) and len(value) > 1 and (" " in value or not value.isascii()):
                        found.add(value)
        # codes people chose (a username, a specialty's code) are theirs too, though they look like ours
        for column in (User.username, Specialty.code):
            found.update(row[0] for row in (await session.exec(select(column))).all())  # type: ignore[call-overload]
    return sorted(found, key=len, reverse=True)


def english_left(html: str, data: list[str]) -> list[str]:
    """The English words left in a zh-CN page, each with what surrounds it, once user data is taken out."""
    text = visible_text(html)
    for value in data:
        text = text.replace(value, " ")
    text = ZONE.sub(" ", text)
    # placeholders a script fills in ({name}), and opaque tokens and hashes (letters and digits mixed)
    text = PLACEHOLDER.sub(" ", text)
    text = TOKEN.sub(" ", text)
    problems = [f"field name {m[0]!r}" for m in FIELD_CODE.finditer(text)]
    for match in WORD.finditer(text):
        if match[0].lower() in ALLOWED:
            continue
        around = text[max(0, match.start() - 30):match.end() + 50].replace("\n", " ")
        problems.append(f"{match[0]!r} in …{around}…")
    return problems


class Pages:
    """Renders pages in zh-CN and collects what is left in English, page by page."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.failures: dict[str, list[str]] = {}
        self.seen: set[str] = set()
        self.user: str | None = None

    async def as_user(self, username: str | None) -> None:
        if username == self.user:
            return
        self.client.session.cookie_jar.clear()
        if username:
            response = await form_login(self.client, username)
            assert response.status == 303, await response.text()
        self.user = username

    async def check(self, label: str, method: str, path: str, *, status: int | Iterable[int] = 200,
                    data: dict[str, str] | None = None, route: str | None = None,
                    headers: dict[str, str] | None = None) -> str:
        response = await self.client.request(method, path, data=data, headers={**ZH, **(headers or {})},
                                             allow_redirects=False)
        expected = {status} if isinstance(status, int) else set(status)
        html = await response.text()
        assert response.status in expected, f"{label}: {method} {path} answered {response.status}: {html[:400]}"
        if route:
            self.seen.add(route)
        if 300 <= response.status < 400:  # a redirect: the page it leads to is checked on its own
            return html
        where = f"{label} ({method} {path}, {self.user or 'nobody'})"
        if "text/html" not in response.headers.get("Content-Type", ""):
            self.failures[where] = [f"not a page: {response.headers.get('Content-Type')} {html[:80]!r}"]
            return html
        if problems := english_left(html, await user_data(self.client)):
            self.failures[where] = problems
        return html


def page_routes(client: TestClient) -> set[str]:
    """Every GET route that answers with a page: all but the APIs (REST and FHIR), static files, health checks,
    metrics and feeds."""
    return {route.resource.canonical for route in client.app.router.routes()
            if route.method == "GET" and route.resource is not None
            and not route.resource.canonical.startswith(("/api/", "/static", "/healthz", "/readyz", "/metrics",
                                                         "/calendar/", "/fhir/"))}


async def _scheduled_referral(client: TestClient, pages: Pages) -> int:
    """A referral from dr.li, accepted and booked with dr.wang by coord.zhao: its consultation has a room with
    the referral beside the call, and the booking notified people."""
    await pages.as_user("dr.li")
    created = await client.post("/referrals/new", headers=ZH, allow_redirects=False, data={
        "patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
        "target_specialist_id": "", "reason": "静息时晕厥", "summary": "心电图见附件",
        "question": "是否为心源性晕厥？", "sharing_consent": "verbal"})
    assert created.status == 303, await created.text()
    referral = int(created.headers["Location"].rsplit("/", 1)[1])
    await pages.as_user("coord.zhao")
    accepted = await client.post(f"/referrals/{referral}/action", data={"action": "accept"}, headers=ZH,
                                 allow_redirects=False)
    assert accepted.status == 303
    page = await (await client.get(f"/referrals/{referral}", headers=ZH)).text()
    slot = re.search(r'name="slot" value="([^"]+)"', page)
    assert slot, "the booking calendar offers a slot"
    booked = await client.post(f"/referrals/{referral}/book", data={"slot": slot[1]}, headers=ZH,
                               allow_redirects=False)
    assert booked.status == 303, await booked.text()
    return referral


async def _consultation_of(client: TestClient, referral: int) -> int:
    from server.models import Appointment
    async with client.app[DATABASE].session() as session:
        appointment = (await session.exec(select(Appointment).where(Appointment.referral_id == referral))).first()
    assert appointment is not None
    return appointment[0].consultation_id


@pytest.fixture
async def pages(client: TestClient) -> Pages:
    return Pages(client)


async def test_every_page_and_every_refusal_speaks_chinese(client: TestClient, pages: Pages) -> None:
    """Every page route is rendered for a user who may see it, and the refusals and errors pages show, in
    zh-CN: none leaves English words of ours (untranslated msgids, pydantic's messages, field names)."""
    referral = await _scheduled_referral(client, pages)
    consultation = await _consultation_of(client, referral)
    recording = await stored_recording(client)
    guest, locked = await invite(client, confirmed=False), await invite(client, confirmed=False)
    check = pages.check

    # anybody
    await pages.as_user(None)
    await check("login", "GET", "/login", route="/login")
    await check("login reason", "GET", "/login?reason=token-expired")
    await check("wrong password", "POST", "/login", status=401, data={"username": "dr.li", "password": "wrong"})
    await check("empty login", "POST", "/login", status=401, data={"username": "", "password": ""})
    await check("visit consent before identity", "GET", f"/visit/{guest}", status=303)
    await check("visit identity", "GET", f"/visit/{guest}/identity", route="/visit/{token}/identity")
    await check("visit identity wrong", "POST", f"/visit/{guest}/identity", status=401,
                data={"name": "李四", "id_last4": ""})
    await check("visit identity malformed", "POST", f"/visit/{guest}/identity", status=422,
                data={"name": "", "id_last4": "1"})
    await check("visit identity right", "POST", f"/visit/{guest}/identity", status=303,
                data={"name": DEMO_PATIENT, "id_last4": ""})
    for _ in range(4):
        await check("visit identity wrong", "POST", f"/visit/{locked}/identity", status=401, data={"name": "李四"})
    await check("visit identity locking", "POST", f"/visit/{locked}/identity", status=401, data={"name": "李四"})
    await check("visit link locked", "GET", f"/visit/{locked}/identity", status=401)
    await check("visit consent", "GET", f"/visit/{guest}", route="/visit/{token}")
    await check("visit consent refused", "GET", f"/visit/{guest}?error=bad-answer")
    await check("visit bad link", "GET", "/visit/not-a-token", status=401)
    await check("visit check before consent", "GET", f"/visit/{guest}/check", status=303)
    await consent(client, guest)
    await check("visit check", "GET", f"/visit/{guest}/check", route="/visit/{token}/check")
    await check("visit room", "GET", f"/visit/{guest}/room", route="/visit/{token}/room")
    await check("404 anonymous", "GET", "/no-such-page", status=404)
    await check("405 anonymous", "GET", "/logout", status=405)
    await check("cross-site form", "POST", "/language", status=403, data={"locale": "en"},
                headers={"Origin": "https://evil.example"})

    # the county doctor
    await pages.as_user("dr.li")
    await check("dashboard", "GET", "/", route="/")
    await check("notifications", "GET", "/notifications", route="/notifications")
    await check("room", "GET", f"/consultations/{consultation}", route="/consultations/{consultation_id}")
    await check("demo room", "GET", "/consultations/1")
    await check("new consultation", "GET", "/consultations/new", route="/consultations/new")
    await check("consultations", "GET", "/consultations", route="/consultations")
    await check("consultations refused search", "GET", "/consultations?since=2030-05-04&until=2030-05-01",
                status=(200, 422))
    await check("own password", "GET", "/account/password", route="/account/password")
    await check("own password refused", "POST", "/account/password", status=(400, 422),
                data={"current_password": "", "new_password": "short", "new_password_again": "other"})
    await check("new consultation refused", "POST", "/consultations/new", status=(400, 422),
                data={"patient_id": "1", "title": "", "planned_start": "nonsense", "duration_minutes": "x"})
    await check("invitations", "GET", "/consultations/1/invitations",
                route="/consultations/{consultation_id}/invitations")
    await check("recordings", "GET", "/consultations/1/recordings", route="/consultations/{consultation_id}/recordings")
    await check("player", "GET", f"/recordings/{recording.id}", route="/recordings/{recording_id}")
    await check("patients", "GET", "/patients", route="/patients")
    await check("patient search refused", "POST", "/patients", status=(400, 422), data={"national_id": "123"})
    await check("patient", "GET", "/patients/1", route="/patients/{patient_id}")
    await check("new patient", "GET", "/patients/new", route="/patients/new")
    await check("new patient refused", "POST", "/patients/new", status=422,
                data={"name": "", "birth_year": "1800", "national_id": "12345", "phone": "x" * 40})
    await check("referrals", "GET", "/referrals", route="/referrals")
    await check("referral search refused", "GET", "/referrals?state=nonsense&name=" + "x" * 300, status=422)
    await check("new referral", "GET", "/referrals/new", route="/referrals/new")
    await check("new referral without consent", "POST", "/referrals/new", status=422, data={
        "patient_id": "1", "specialty": "cardiology", "urgency": "urgent", "target_hospital_id": "1",
        "reason": "心悸"})
    await check("new referral wrong fields", "POST", "/referrals/new", status=(400, 422), data={
        "patient_id": "1", "specialty": "", "urgency": "whenever", "target_hospital_id": "2", "reason": "x" * 600,
        "question": "是否为心源性晕厥？", "sharing_consent": "verbal"})
    await check("referral", "GET", f"/referrals/{referral}", route="/referrals/{referral_id}")
    await check("consultation request", "GET", f"/referrals/{referral}/request",
                route="/referrals/{referral_id}/request")
    pdf = await client.get(f"/referrals/{referral}/request.pdf", headers=ZH)
    assert pdf.status == 200 and "会诊申请单" in pdf_text(await pdf.read()), "the PDF's labels are in Chinese"
    pages.seen.add("/referrals/{referral_id}/request.pdf")  # a PDF, not a page: its words, test_request_pdf.py
    draft = await client.post("/referrals/new", headers=ZH, allow_redirects=False, data={
        "patient_id": "1", "specialty": "cardiology", "urgency": "routine", "target_hospital_id": "1",
        "reason": "复诊", "submit": "draft"})
    assert draft.status == 303, await draft.text()
    await check("draft request edit", "GET", f"{draft.headers['Location']}/request/edit",
                route="/referrals/{referral_id}/request/edit")
    await check("draft request edit refused", "POST", f"{draft.headers['Location']}/request/edit", status=422,
                data={"reason": "", "diagnosis_code": "nope", "title_wanted": "professor"})
    await check("refused cancel without reason", "POST", f"/referrals/{referral}/action", status=422,
                data={"action": "cancel", "reason": ""})
    await check("refused action", "POST", f"/referrals/{referral}/action", status=403,
                data={"action": "complete", "opinion": "意见"})
    await check("unknown action", "POST", f"/referrals/{referral}/action", status=400, data={"action": "dance"})
    await check("bad upload", "POST", f"/referrals/{referral}/attachments", status=400, data={"x": "y"})
    await check("bad id", "GET", "/referrals/abc", status=400)
    await check("no such referral", "GET", "/referrals/999999", status=404)
    await check("404 signed in", "GET", "/no-such-page", status=404)
    await check("405 signed in", "GET", "/logout", status=405)

    # the specialist, in the room booked for the referral
    await pages.as_user("dr.wang")
    await check("specialist's room", "GET", f"/consultations/{consultation}")
    await check("report refused in the room", "POST", f"/consultations/{consultation}/report", status=422,
                data={"findings": " ", "diagnosis_code": "I20.8", "recommendations": ""})
    await check("own hours", "GET", "/hours", status=303, route="/hours")
    async with client.app[DATABASE].session() as session:
        wang = (await session.exec(select(User).where(User.username == "dr.wang"))).one()[0]
        notification = (await session.exec(select(Notification).where(Notification.user_id == wang.id))).first()
    assert notification is not None, "the booking notified the specialist"
    await check("hours", "GET", f"/specialists/{wang.id}/hours", route="/specialists/{specialist_id}/hours")
    await check("hours refused", "POST", f"/specialists/{wang.id}/hours", status=422,
                data={"rows-0": "1", "start-0-0": "25:00", "end-0-0": "08:00"})
    await check("time off refused", "POST", f"/specialists/{wang.id}/time-off", status=422,
                data={"first_day": "nonsense", "last_day": ""})
    await check("notification", "GET", f"/notifications/{notification[0].id}", status=303,
                route="/notifications/{notification_id}")

    # the coordinator
    await pages.as_user("coord.zhao")
    await check("inbox", "GET", "/referrals")
    await check("hours index", "GET", "/hours")
    await check("accept an accepted referral", "POST", f"/referrals/{referral}/action", status=409,
                data={"action": "accept"})
    await check("book without a slot", "POST", f"/referrals/{referral}/book", status=422, data={})
    await check("book a bad slot", "POST", f"/referrals/{referral}/book", status=(400, 409, 422),
                data={"slot": "2@nonsense"})
    await check("move without a reason", "POST", f"/referrals/{referral}/move", status=422,
                data={"slot": "2@2031-01-06T08:00+08:00", "reason": ""})
    await check("redirect nowhere", "POST", f"/referrals/{referral}/action", status=(400, 409, 422),
                data={"action": "redirect", "hospital_id": "x"})

    # the auditor (the audit page itself: test_the_audit_page_speaks_chinese)
    await pages.as_user("auditor")
    pages.seen.add("/audit")
    await check("forbidden room", "GET", "/consultations/1", status=403)
    await check("legal holds", "GET", "/holds", route="/holds")
    await check("legal hold refused", "POST", "/holds", status=(400, 422), data={"patient_id": "x", "reason": ""})

    # the supervisor
    await pages.as_user("supervisor")
    await check("supervision", "GET", "/supervision", route="/supervision")
    await check("supervision refused months", "GET", "/supervision?from_month=2026-05&to_month=2026-01", status=422)
    await check("supervision refused partnership", "GET", "/supervision?partnership_id=999", status=403)

    # the administrator
    await pages.as_user("admin")
    for path in ("/admin", "/admin/users", "/admin/users/new", "/admin/users/1", "/admin/hospitals",
                 "/admin/hospitals/1", "/admin/specialties", "/admin/partnerships", "/admin/partnerships/1"):
        route = re.sub(r"/1$", "/{x}", path)
        await check(path, "GET", path, route={"/admin/users/{x}": "/admin/users/{user_id}",
                                              "/admin/hospitals/{x}": "/admin/hospitals/{hospital_id}",
                                              "/admin/partnerships/{x}": "/admin/partnerships/{partnership_id}"}
                    .get(route, route))
    await check("new account refused", "POST", "/admin/users/new", status=422,
                data={"username": "", "display_name": "", "role": "nobody", "hospital_id": "x"})
    await check("new hospital refused", "POST", "/admin/hospitals", status=422,
                data={"name": "", "level": "huge", "region": "", "timezone": "Mars/Olympus"})
    await check("new specialty refused", "POST", "/admin/specialties", status=422,
                data={"code": "", "name_zh": "", "name_en": "", "slot_minutes": "7"})
    await check("account refused", "POST", "/admin/users/2", status=422,
                data={"display_name": "", "role": "nobody", "hospital_id": "1"})
    await check("short password", "POST", "/admin/users/2/password", status=422,
                data={"password_mode": "set", "password": "short"})
    await check("licence refused", "POST", "/admin/users/1/licence", status=422,
                data={"licence_number": "12345", "professional_title": "chief"})
    await check("no licence for a coordinator", "POST", "/admin/users/4/licence/verify", status=422)
    await check("last administrator", "POST", "/admin/users/5/disable", status=409)
    await check("department refused", "POST", "/admin/hospitals/1/departments", status=422, data={"name": ""})
    await check("partnership refused", "POST", "/admin/partnerships", status=422,
                data={"name": "", "lead_hospital_id": "x"})
    await check("member refused", "POST", "/admin/partnerships/1/members", status=(400, 404, 422),
                data={"hospital_id": "999"})
    await check("lead cannot leave", "POST", "/admin/partnerships/1/members/1/remove", status=409)
    await check("forbidden referral", "GET", f"/referrals/{referral}", status=403)
    await check("no such notification", "GET", "/notifications/999999", status=404)
    await check("forbidden patient", "GET", "/patients/1", status=403)

    # the specialist signs the report, which completes the referral (so last): its refusal and its check
    await pages.as_user("dr.wang")
    report = {"findings": "稳定型心绞痛。", "diagnosis_code": "I20.8", "recommendations": "四周后复查运动心电图。"}
    await check("report refused", "POST", f"/referrals/{referral}/report", status=422,
                data={**report, "diagnosis_code": "nope"})
    signed = await client.post(f"/referrals/{referral}/report", data=report, headers=ZH, allow_redirects=False)
    assert signed.status == 303, await signed.text()
    shown = await (await client.get(f"/referrals/{referral}", headers=ZH)).text()
    verification = re.search(r'href="(/referrals/\d+/reports/\d+/verification)"', shown)
    assert verification, "the signed version links to its check"
    await check("report check", "GET", verification[1],
                route="/referrals/{referral_id}/reports/{report_id}/verification")
    await check("signed referral", "GET", f"/referrals/{referral}")
    await pages.as_user("coord.zhao")
    await check("consultation request, receiving side", "GET", f"/referrals/{referral}/request")

    missing = page_routes(client) - pages.seen
    assert not missing, f"page routes this test does not render: {sorted(missing)}"
    assert not pages.failures, "English left in zh-CN pages:\n" + "\n".join(
        f"{where}:\n    " + "\n    ".join(problems[:8]) for where, problems in pages.failures.items())


async def test_the_audit_page_speaks_chinese(client: TestClient, pages: Pages) -> None:
    """The audit trail, with entries of several kinds and a refused filter, in zh-CN."""
    await _scheduled_referral(client, pages)
    await pages.as_user("auditor")
    await pages.check("audit", "GET", "/audit")
    await pages.check("audit refused filter", "GET", "/audit?since=nonsense", status=(200, 400, 422))
    assert not pages.failures, pages.failures


def test_the_check_finds_english_it_should() -> None:
    """The detector itself: a msgid left in English, pydantic's words and a field's code name are found; Chinese,
    user data, zone names and allowed codes are not."""
    data = ["张伟 Zhang Wei"]
    assert english_left("<p>转诊 Referral</p>", data)
    assert english_left("<p class=error>sharing_consent: 请填写</p>", data)
    assert english_left('<button aria-label="Pin">📌</button>', data)
    script = '<script type="application/json" id="{}">{}</script>'
    assert english_left(script.format("room-strings", '{"errors": {"x": "Room full"}}'), data)
    assert not english_left(script.format("room-config", '{"viewing": "pSyqcdIztePf"}'), data), "data, not words"
    assert not english_left("<p>患者：张伟 Zhang Wei，时间 08:00 CST（Asia/Shanghai），PDF</p>"
                            "<script>var englishCode = 1;</script>", data)


def test_every_msgid_is_translated() -> None:
    """No entry of the zh-CN catalog is empty or fuzzy: such an entry shows its English."""
    with catalog_path("zh-CN").open("rb") as f:
        catalog = read_po(f)
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy
                                                       or (isinstance(m.string, tuple) and not all(m.string)))]
    assert not untranslated, untranslated

