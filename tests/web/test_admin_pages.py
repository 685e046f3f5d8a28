"""The administrator's console pages through a real server: every form works, refuses what the API refuses
and names the field, non-administrators are turned away, and the Chinese pages are all Chinese."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import delete, select

from server.admin.accounts import PAGE_SIZE
from server.appkeys import DATABASE
from server.models import (
    Department,
    Hospital,
    Partnership,
    PartnershipMember,
    PartnershipSupervisor,
    Role,
    Specialty,
    User,
)

from ..conftest import login

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
PAGES = ["/admin", "/admin/users", "/admin/users/new", "/admin/users/1", "/admin/hospitals", "/admin/hospitals/1",
         "/admin/specialties", "/admin/partnerships", "/admin/partnerships/1"]


async def form_login(client: TestClient, username: str, password: str = "telemed-demo") -> None:
    response = await client.post("/login", data={"username": username, "password": password, "next": "/"},
                                 allow_redirects=False, headers=EN)
    assert response.status == 303, await response.text()


async def post(client: TestClient, path: str, data: dict | list, headers: dict | None = None):
    return await client.post(path, data=data, allow_redirects=False, headers={**EN, **(headers or {})})


async def _user(client: TestClient, username: str) -> User:
    async with client.app[DATABASE].session() as session:
        return (await session.exec(select(User).where(User.username == username))).one()


async def _one(client: TestClient, model: type, **where: object):  # type: ignore[no-untyped-def]
    async with client.app[DATABASE].session() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return (await session.exec(query)).one()


@pytest.mark.parametrize("username", ["dr.li", "coord.zhao", "auditor"])
async def test_only_administrators_see_the_console(client: TestClient, username: str) -> None:
    """Each row (a county doctor, a coordinator, an auditor): no link to the console on their home page,
    a 403 "Only administrators" page for every console page, and a 403 for every console form posted
    (creating an account or a hospital, disabling, resetting a password, removing a partnership's
    member); the account the disable form named stays active."""
    await form_login(client, username)
    assert 'href="/admin"' not in await (await client.get("/", headers=EN)).text(), "no link for them"
    for path in PAGES:
        response = await client.get(path, headers=EN)
        assert response.status == 403, path
        assert "Only administrators" in await response.text()
    for path, data in [("/admin/users/new", {"username": "x1", "display_name": "x", "role": "auditor",
                                             "hospital_id": "1"}),
                       ("/admin/users/1/disable", {}), ("/admin/users/1/password", {}),
                       ("/admin/hospitals", {"name": "H", "level": "county", "region": "R", "timezone": "UTC"}),
                       ("/admin/partnerships/1/members/3/remove", {})]:
        assert (await post(client, path, data)).status == 403, path
    assert (await _user(client, "dr.li")).is_active


async def test_anonymous_visitors_are_sent_to_log_in(client: TestClient) -> None:
    """A visitor without a session who opens a console page is sent to log in, with that page as
    the one to come back to."""
    response = await client.get("/admin/users", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login?next=/admin/users")


async def test_administrators_get_a_link_and_an_overview_with_counts(client: TestClient) -> None:
    """An administrator's home page links to the console, whose overview (marked as the current page) counts the active
    and disabled accounts, active administrators, hospitals, departments, specialties and partnerships."""
    await form_login(client, "admin")
    home = await (await client.get("/", headers=EN)).text()
    main_nav = home.partition('<nav class="topbar-links"')[2].partition("</nav>")[0]
    assert '<a href="/admin">Administration</a>' in main_nav, "with the other sections, not the account's links"
    text = await (await client.get("/admin", headers=EN)).text()
    counts = [(label, int(n)) for n, label in re.findall(r'<span class="count">(\d+)</span>([^<]+)</a>', text)]
    assert counts == [("Active accounts", 9), ("Disabled accounts", 0), ("Active administrators", 1),
                      ("Hospitals", 3), ("Departments", 3), ("Specialties", 4), ("Partnerships", 1)]
    assert 'aria-current="page">Overview' in text


async def test_the_account_list_searches_filters_and_pages(client: TestClient) -> None:
    """The account list finds accounts by text and role a page at a time, its next-page link keeping the filters; a
    Chinese display name finds its account, creation times are on the administrator's hospital's clock with the zone's
    short name (CST), no match says so, and an unknown role with page 0 is a 422 naming each."""
    await form_login(client, "admin")
    async with client.app[DATABASE].session() as session:
        session.add_all([User(username=f"nurse{n:02}", display_name=f"护士 Nurse {n}", password_hash="x",
                              role=Role.COORDINATOR, hospital_id=3) for n in range(PAGE_SIZE + 2)])
        await session.commit()
    first = await (await client.get("/admin/users?q=nurse&role=coordinator", headers=EN)).text()
    assert first.count('<tr data-username="nurse') == PAGE_SIZE and "Page 1 of 2" in first
    assert "Accounts found: 27" in first
    link = re.search(r'href="([^"]+)" rel="next"', first)[1].replace("&amp;", "&")
    assert "q=nurse" in link and "role=coordinator" in link and "page=2" in link
    second = await (await client.get(link, headers=EN)).text()
    assert re.findall(r'<tr data-username="([^"]+)"', second) == ["nurse25", "nurse26"]
    by_name = await (await client.get("/admin/users?q=王芳", headers=EN)).text()
    assert re.findall(r'<tr data-username="([^"]+)"', by_name) == ["dr.wang"]
    created = re.search(r'<time datetime="[^"]+">(\d{4}-\d\d-\d\d \d\d:\d\d) (\w+)</time>', by_name)
    assert created and created[2] == "CST", "times in the administrator's hospital's zone, with its short name"
    none = await (await client.get("/admin/users?q=nobody-at-all", headers=EN)).text()
    assert 'id="empty"' in none and "No account matches these filters." in none
    bad = await client.get("/admin/users?role=king&page=0", headers=EN)
    text = await bad.text()
    assert bad.status == 422 and "Role:" in text and "Page:" in text and 'aria-invalid="true"' in text


async def test_a_new_account_with_a_generated_password_shown_once(client: TestClient) -> None:
    """A new account with a generated password answers 201 with the password, shown in that answer only (not on the
    account's page afterwards), and the password logs the new user in."""
    await form_login(client, "admin")
    response = await post(client, "/admin/users/new", {
        "username": "dr.sun", "display_name": "孙涛 Sun Tao", "role": "specialist", "hospital_id": "1",
        "department_id": "1", "specialty_id": "", "password_mode": "generate", "password": "ignored-ignored"})
    text = await response.text()
    assert response.status == 201, text
    password = re.search(r'<output class="secret">([^<]+)</output>', text)[1]
    assert "The account was created." in text and "Cardiology" in text
    user = await _user(client, "dr.sun")
    page = await (await client.get(f"/admin/users/{user.id}", headers=EN)).text()
    assert password not in page and 'id="generated-password"' not in page, "shown once, in the answer to the post"
    client.session.cookie_jar.clear()
    await form_login(client, "dr.sun", password)


async def test_a_new_account_form_that_fails_keeps_what_was_typed_and_names_fields(client: TestClient) -> None:
    """A refused new-account form is a 422 naming the username and password fields and keeping what was typed, escaped,
    but never the password typed; a "set" password left empty, a department of another hospital and a username already
    taken, whatever its letter case (409), are each refused in words."""
    await form_login(client, "admin")
    response = await post(client, "/admin/users/new", {
        "username": "has space", "display_name": "<b>Sun</b>", "role": "county_doctor", "hospital_id": "2",
        "department_id": "1", "password_mode": "set", "password": "short"})
    text = await response.text()
    assert response.status == 422
    assert "Username:" in text and "Password:" in text
    assert 'value="has space"' in text and "&lt;b&gt;Sun&lt;/b&gt;" in text and 'value="short"' not in text
    mode = await post(client, "/admin/users/new", {"username": "dr.sun", "display_name": "Sun",
                                                   "role": "county_doctor", "hospital_id": "2",
                                                   "password_mode": "set", "password": ""})
    assert mode.status == 422 and "Type the password, or choose to generate one." in await mode.text()
    placed = await post(client, "/admin/users/new", {"username": "dr.sun", "display_name": "Sun",
                                                     "role": "county_doctor", "hospital_id": "2",
                                                     "department_id": "1"})
    assert placed.status == 422 and "Department: Not a department of the account&#39;s hospital." in \
        await placed.text()
    taken = await post(client, "/admin/users/new", {"username": "DR.LI", "display_name": "x", "role": "auditor",
                                                    "hospital_id": "1"})
    assert taken.status == 409 and "This username is taken." in await taken.text()


async def test_the_form_and_the_api_refuse_the_same_input(client: TestClient) -> None:
    """One model behind both: a time zone the server does not know is a 422 naming the time zone in each."""
    body = {"name": "高山县医院", "level": "county", "region": "西川", "timezone": "Beijing"}
    api = await client.post("/api/admin/hospitals", json=body, headers=await login(client, "admin"))
    assert api.status == 422 and set((await api.json())["error"]["fields"]) == {"timezone"}
    await form_login(client, "admin")
    page = await post(client, "/admin/hospitals", body)
    text = await page.text()
    assert page.status == 422 and "Time zone: " in text and 'value="Beijing"' in text
    assert re.search(r'name="timezone"[^>]*aria-invalid="true"', text)


async def test_role_change_and_the_last_administrator(client: TestClient) -> None:
    """A role change is saved and the account's page says so and shows the new role; the last active administrator can
    neither demote nor disable themselves (409, in words), and stays an active administrator."""
    await form_login(client, "admin")
    li = await _user(client, "dr.li")
    saved = await post(client, f"/admin/users/{li.id}", {"display_name": "李明", "role": "coordinator",
                                                          "hospital_id": str(li.hospital_id), "department_id": "",
                                                          "specialty_id": ""})
    assert saved.status == 303 and saved.headers["Location"] == f"/admin/users/{li.id}?done=account-updated"
    page = await (await client.get(saved.headers["Location"], headers=EN)).text()
    assert "The account was saved." in page and '<dd id="account-role">Coordinator</dd>' in page
    me = await _user(client, "admin")
    for path, data in [(f"/admin/users/{me.id}", {"display_name": "Me", "role": "auditor", "hospital_id": "1"}),
                       (f"/admin/users/{me.id}/disable", {})]:
        refused = await post(client, path, data)
        text = await refused.text()
        assert refused.status == 409 and "This is the last active administrator." in text, path
    assert (await _user(client, "admin")).role is Role.ADMIN and (await _user(client, "admin")).is_active


async def test_disable_and_enable_from_the_list_end_sessions(client: TestClient) -> None:
    """Disabling an account from the list returns to the list as filtered (its old notice replaced), says the account's
    sessions have ended and shows it disabled, and its API token is refused (401); enabling it with another site as the
    way back lands on this site's home, and the account is active again."""
    li_headers = await login(client, "dr.li")
    await form_login(client, "admin")
    li = await _user(client, "dr.li")
    back = "/admin/users?q=dr.&done=enabled"
    response = await post(client, f"/admin/users/{li.id}/disable", {"back": back})
    assert response.status == 303 and response.headers["Location"] == "/admin/users?q=dr.&done=disabled"
    listed = await (await client.get(response.headers["Location"], headers=EN)).text()
    assert "The account was disabled; its sessions have ended." in listed
    assert re.search(r'data-username="dr.li".*?status-disabled', listed, re.S)
    assert (await client.get("/api/me", headers=li_headers)).status == 401
    off_site = await post(client, f"/admin/users/{li.id}/enable", {"back": "//evil.example/x"})
    assert off_site.headers["Location"] == "/?done=enabled", "back is a path on this site, never another site"
    assert (await _user(client, "dr.li")).is_active


async def test_reset_password_generated_or_set(client: TestClient) -> None:
    """An administrator resets a password either generated (shown in the answer) or typed (a short one is a 422 naming
    the field); the typed one replaces the generated one, which no longer logs in, while the typed one does."""
    await form_login(client, "admin")
    li = await _user(client, "dr.li")
    generated = await post(client, f"/admin/users/{li.id}/password", {"password_mode": "generate"})
    text = await generated.text()
    assert generated.status == 200 and "The password was changed" in text
    password = re.search(r'<output class="secret">([^<]+)</output>', text)[1]
    set_one = await post(client, f"/admin/users/{li.id}/password", {"password_mode": "set",
                                                                     "password": "set by the admin 1"})
    assert set_one.status == 303 and set_one.headers["Location"].endswith("?done=password")
    short = await post(client, f"/admin/users/{li.id}/password", {"password_mode": "set", "password": "short"})
    assert short.status == 422 and "Password:" in await short.text()
    client.session.cookie_jar.clear()
    assert (await client.post("/login", data={"username": "dr.li", "password": password}, allow_redirects=False,
                              headers=EN)).status == 401, "the generated one was replaced"
    await form_login(client, "dr.li", "set by the admin 1")


async def test_cross_site_forms_are_refused(client: TestClient) -> None:
    """A console form posted with another site's Origin is refused (403), and the account it
    would have disabled stays active."""
    await form_login(client, "admin")
    li = await _user(client, "dr.li")
    response = await post(client, f"/admin/users/{li.id}/disable", {}, headers={"Origin": "https://evil.example"})
    assert response.status == 403 and (await _user(client, "dr.li")).is_active


async def test_hospitals_and_departments(client: TestClient) -> None:
    """An administrator creates a hospital in a time zone (its page offering the zones to pick from) and changes its
    zone; adds a department, refused under a name the hospital already has (409) or under no name (422 naming it), and
    renames it with a specialty; the list shows the hospital and its level in words."""
    await form_login(client, "admin")
    created = await post(client, "/admin/hospitals", {"name": "高山县医院 Gaoshan", "level": "county",
                                                      "region": "西川省", "timezone": "Asia/Urumqi"})
    assert created.status == 303
    hospital = await _one(client, Hospital, name="高山县医院 Gaoshan")
    assert created.headers["Location"] == f"/admin/hospitals/{hospital.id}?done=hospital-created"
    page = await (await client.get(created.headers["Location"], headers=EN)).text()
    assert "The hospital was created." in page and 'value="Asia/Urumqi"' in page
    assert '<option value="Asia/Urumqi"></option>' in page, "the zones to pick from"
    edited = await post(client, f"/admin/hospitals/{hospital.id}", {"name": "高山县医院 Gaoshan", "level": "secondary",
                                                                   "region": "西川省", "timezone": "Asia/Shanghai"})
    assert edited.status == 303 and (await _one(client, Hospital, id=hospital.id)).timezone == "Asia/Shanghai"

    added = await post(client, f"/admin/hospitals/{hospital.id}/departments", {"name": "内科", "specialty_id": ""})
    assert added.status == 303 and added.headers["Location"].endswith("done=department-added")
    department = await _one(client, Department, hospital_id=hospital.id)
    again = await post(client, f"/admin/hospitals/{hospital.id}/departments", {"name": "内科"})
    assert again.status == 409 and "already has a department of this name" in await again.text()
    renamed = await post(client, f"/admin/departments/{department.id}", {"name": "", "hospital_id": hospital.id})
    assert renamed.status == 422 and "Name:" in await renamed.text()
    renamed = await post(client, f"/admin/departments/{department.id}", {"name": "心内科", "specialty_id": "1",
                                                                         "hospital_id": hospital.id})
    assert renamed.status == 303 and (await _one(client, Department, id=department.id)).specialty_id == 1
    listed = await (await client.get("/admin/hospitals", headers=EN)).text()
    assert "高山县医院 Gaoshan" in listed and "Secondary hospital" in listed


async def test_specialties(client: TestClient) -> None:
    """A specialty is created; an edit with an appointment length the rules refuse is a 422 naming the field and
    keeping the value typed, and the stored length is unchanged."""
    await form_login(client, "admin")
    created = await post(client, "/admin/specialties", {"code": "dermatology", "name_zh": "皮肤科",
                                                        "name_en": "Dermatology", "slot_minutes": "20"})
    assert created.status == 303
    specialty = await _one(client, Specialty, code="dermatology")
    edited = await post(client, f"/admin/specialties/{specialty.id}", {"code": "dermatology", "name_zh": "皮肤科",
                                                                       "name_en": "Dermatology", "slot_minutes": "7"})
    text = await edited.text()
    assert edited.status == 422 and "Appointment length (minutes):" in text and 'value="7"' in text
    assert (await _one(client, Specialty, id=specialty.id)).slot_minutes == 20


async def test_partnerships_with_their_members(client: TestClient) -> None:
    """A partnership is created with its members listed, loses a member and gets it back, and is
    renamed; its lead hospital cannot be removed (409, saying to make another the lead first), and a
    form refused for an empty name keeps the members ticked."""
    await form_login(client, "admin")
    created = await post(client, "/admin/partnerships", [("name", "白河医联体"), ("lead_hospital_id", "3"),
                                                         ("member_ids", "1"), ("member_ids", "2")])
    assert created.status == 303, await created.text()
    partnership = await _one(client, Partnership, name="白河医联体")
    page = await (await client.get(created.headers["Location"], headers=EN)).text()
    assert "The partnership was created." in page
    assert re.findall(r'<li data-hospital-id="(\d+)">', page) == ["1", "2"]
    removed = await post(client, f"/admin/partnerships/{partnership.id}/members/2/remove", {})
    assert removed.status == 303 and removed.headers["Location"].endswith("done=member-removed")
    lead = await post(client, f"/admin/partnerships/{partnership.id}/members/3/remove", {})
    assert lead.status == 409 and "make another hospital the lead first" in await lead.text()
    added = await post(client, f"/admin/partnerships/{partnership.id}/members", {"hospital_id": "2"})
    assert added.status == 303
    renamed = await post(client, f"/admin/partnerships/{partnership.id}", {"name": "白河县医联体",
                                                                           "lead_hospital_id": "3"})
    assert renamed.status == 303 and (await _one(client, Partnership, id=partnership.id)).name == "白河县医联体"
    bad = await post(client, "/admin/partnerships", [("name", ""), ("lead_hospital_id", "3"), ("member_ids", "1")])
    text = await bad.text()
    assert bad.status == 422 and "Name:" in text
    assert re.search(r'name="member_ids" value="1" checked', text), "the boxes ticked stay ticked"


async def test_empty_states_say_so(client: TestClient) -> None:
    """With no partnerships the partnership list says there are none yet, and a hospital without
    departments says so on its page."""
    async with client.app[DATABASE].session() as session:
        await session.exec(delete(PartnershipMember))  # type: ignore[call-overload]
        await session.exec(delete(PartnershipSupervisor))  # type: ignore[call-overload]
        await session.exec(delete(Partnership))  # type: ignore[call-overload]
        await session.commit()
    await form_login(client, "admin")
    text = await (await client.get("/admin/partnerships", headers=EN)).text()
    assert 'id="empty"' in text and "There are no partnerships yet." in text
    hospital = await (await client.get("/admin/hospitals/3", headers=EN)).text()
    assert "This hospital has no departments yet." in hospital


class _Visible(HTMLParser):
    """The text a reader sees or hears: text nodes outside script and style, and labels in attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "datalist"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "placeholder", "title", "data-label") and value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "datalist"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


async def test_chinese_pages_have_no_english_left(client: TestClient) -> None:
    """Every word of the console's Chinese pages is Chinese, but for data (names typed in English too, zone
    names, codes) and the language switcher's own name."""
    async with client.app[DATABASE].session() as session:
        data = set()
        for model, fields in ((Hospital, ("name", "region", "timezone")), (User, ("username", "display_name")),
                              (Department, ("name",)), (Specialty, ("code", "name_en")), (Partnership, ("name",))):
            for row in (await session.exec(select(model))).all():
                data |= {str(getattr(row, f)) for f in fields}
    await form_login(client, "admin")
    refused = {"/admin/hospitals": {"name": "", "level": "county", "region": "x" * 300, "timezone": "Beijing"},
               "/admin/users/new": {"username": "a b", "display_name": "x", "role": "auditor", "hospital_id": "1",
                                    "password_mode": "set", "password": "short"},
               "/admin/specialties": {"code": "X!", "name_zh": "皮肤科", "name_en": "Skin", "slot_minutes": "7"}}
    for path in [*PAGES, "/admin/users?q=nobody", "/admin/users?role=king&page=0", *refused]:
        if path in refused:
            response = await client.post(path, data=refused[path], headers=ZH)
            assert response.status == 422
        else:
            response = await client.get(path, headers=ZH)
        assert response.headers["Content-Language"] == "zh-CN"
        parser = _Visible()
        parser.feed(await response.text())
        leftovers = []
        for text in parser.texts:
            for value in sorted(data, key=len, reverse=True):  # whole words only: "admin" is no licence for "Admin"
                text = re.sub(rf"(?<![A-Za-z]){re.escape(value)}(?![A-Za-z])", " ", text)
            text = re.sub(r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+", " ", text)  # time zones, as IANA names them
            leftovers += [w for w in re.findall(r"[A-Za-z][A-Za-z'’]+", text) if w not in {"English", "CST", "IANA"}]
        assert not leftovers, f"{path}: {leftovers}"


async def test_a_disabled_specialist_is_no_longer_offered_for_referrals(client: TestClient) -> None:
    """Once an administrator disables a specialist, the county doctor's new-referral form no longer offers them."""
    await form_login(client, "dr.li")
    assert "王芳 Wang Fang" in await (await client.get("/referrals/new", headers=EN)).text()
    client.session.cookie_jar.clear()
    await form_login(client, "admin")
    assert (await post(client, f"/admin/users/{(await _user(client, 'dr.wang')).id}/disable", {})).status == 303
    client.session.cookie_jar.clear()
    await form_login(client, "dr.li")
    assert "王芳 Wang Fang" not in await (await client.get("/referrals/new", headers=EN)).text()


async def test_an_administrator_who_gives_up_the_role_lands_on_the_dashboard(client: TestClient) -> None:
    """An administrator who makes themselves an auditor (another administrator remaining) is sent to the dashboard, not
    to a console page they may no longer open: /admin is then 403."""
    await form_login(client, "admin")
    created = await post(client, "/admin/users/new", {"username": "admin2", "display_name": "Second", "role": "admin",
                                                      "hospital_id": "1", "password_mode": "set",
                                                      "password": "second admin password"})
    assert created.status == 303
    me = await _user(client, "admin")
    response = await post(client, f"/admin/users/{me.id}", {"display_name": me.display_name, "role": "auditor",
                                                             "hospital_id": "1"})
    assert response.status == 303 and response.headers["Location"] == "/"
    assert (await client.get("/admin", headers=EN)).status == 403


async def test_every_admin_page_has_a_plain_title_and_each_section_once(client: TestClient) -> None:
    """A merge once copied the partnership page's Supervisors card into its <title> block: the tab read as a
    form, and the card's ids stood twice. Each page's title is plain text, and no id is used twice."""
    await form_login(client, "admin")
    for path in PAGES:
        page = await (await client.get(path, headers=EN)).text()
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        assert title and "<" not in title.group(1) and len(title.group(1)) < 200, path
        ids = re.findall(r'\sid="([^"]+)"', page)
        assert len(ids) == len(set(ids)), (path, sorted(i for i in ids if ids.count(i) > 1))


async def test_a_licence_is_entered_then_verified_and_its_clinician_told_until_then(client: TestClient) -> None:
    """The account page saves a clinician's licence (a malformed number is refused beside its field, keeping what
    was typed), which leaves it unverified: the list and the page say so, and the clinician's dashboard tells them
    what it keeps from them; verifying names the administrator, and the notice goes."""
    await form_login(client, "admin")
    he = await _user(client, "dr.he")
    refused = await post(client, f"/admin/users/{he.id}/licence",
                         {"licence_number": "12345", "professional_title": "chief"})
    text = await refused.text()
    assert refused.status == 422 and "Licence number: A practising licence number" in text
    assert 'name="licence_number" maxlength="32" inputmode="numeric" autocomplete="off" value="12345"' in text
    saved = await post(client, f"/admin/users/{he.id}/licence",
                       {"licence_number": "110320000601234", "professional_title": "chief"})
    assert saved.headers["Location"] == f"/admin/users/{he.id}?done=licence-saved"
    page = await (await client.get(saved.headers["Location"], headers=EN)).text()
    assert 'id="licence-state">Not verified' in page and 'id="licence-unverified"' in page
    listed = await (await client.get("/admin/users?q=dr.he", headers=EN)).text()
    assert re.search(r'data-username="dr.he".*?licence-unverified', listed, re.S)

    clinician = await client.get("/", headers={**EN, **await login(client, "dr.he")})
    assert "Your licence has not been verified by an administrator yet" in await clinician.text()

    verified = await post(client, f"/admin/users/{he.id}/licence/verify",
                          {"licence_number": "110320000601234", "professional_title": "chief"})
    assert verified.headers["Location"] == f"/admin/users/{he.id}?done=licence-verified"
    page = await (await client.get(verified.headers["Location"], headers=EN)).text()
    assert 'id="licence-state">Verified' in page and "Verified by 系统管理员 Administrator on" in page
    assert 'id="verify-licence"' not in page, "nothing left to verify"
    clinician = await client.get("/", headers={**EN, **await login(client, "dr.he")})
    assert "Your licence has not been verified" not in await clinician.text()
