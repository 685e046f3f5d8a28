"""Every page as every role: each GET page route answers each role as the rules in server/permissions.py say
(a page a role may not use is a 403 in the reader's language, never a page), and the top bar links only to
pages its reader may use. A new page route fails here until the matrix says who may open it."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from server.identity.auth import PUBLIC_ATTRIBUTE

from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
ROLES = ("dr.li", "dr.wang", "coord.zhao", "admin", "auditor", "supervisor")  # county doctor, specialist, ...
CLINICAL = {"dr.li", "dr.wang", "coord.zhao"}
EVERYONE = set(ROLES)
ADMIN = {"admin"}

# path pattern -> (the path walked, who opens it). The demo's consultation 1 is dr.li's (Qingshan) with
# dr.wang (user 2, a provincial specialist); patient 1 is Qingshan's.
MATRIX: dict[str, tuple[str, set[str]]] = {
    "/": ("/", EVERYONE),
    "/account/password": ("/account/password", EVERYONE),
    "/notifications": ("/notifications", EVERYONE),
    "/admin": ("/admin", ADMIN),
    "/admin/hospitals": ("/admin/hospitals", ADMIN),
    "/admin/hospitals/{hospital_id}": ("/admin/hospitals/1", ADMIN),
    "/admin/partnerships": ("/admin/partnerships", ADMIN),
    "/admin/partnerships/{partnership_id}": ("/admin/partnerships/1", ADMIN),
    "/admin/specialties": ("/admin/specialties", ADMIN),
    "/admin/users": ("/admin/users", ADMIN),
    "/admin/users/new": ("/admin/users/new", ADMIN),
    "/admin/users/{user_id}": ("/admin/users/1", ADMIN),
    "/audit": ("/audit", {"auditor"}),
    "/holds": ("/holds", {"admin", "auditor"}),
    "/supervision": ("/supervision", {"supervisor"}),
    "/consultations": ("/consultations", CLINICAL),
    "/consultations/new": ("/consultations/new", CLINICAL),
    "/consultations/{consultation_id}": ("/consultations/1", {"dr.li", "dr.wang"}),
    "/consultations/{consultation_id}/invitations": ("/consultations/1/invitations", {"dr.li", "dr.wang"}),
    "/consultations/{consultation_id}/recordings": ("/consultations/1/recordings", {"dr.li", "dr.wang", "auditor"}),
    "/hours": ("/hours", {"dr.wang", "coord.zhao"}),
    "/specialists/{specialist_id}/hours": ("/specialists/2/hours", {"dr.wang", "coord.zhao"}),
    "/patients": ("/patients", CLINICAL),
    "/patients/new": ("/patients/new", CLINICAL),
    "/patients/{patient_id}": ("/patients/1", {"dr.li"}),
    "/referrals": ("/referrals", CLINICAL),
    "/referrals/new": ("/referrals/new", {"dr.li"}),
}
# Pages of one thing that the demo does not have: their own tests walk them with one at hand
# (tests/web/test_referral_pages.py, test_notification_pages.py, test_recording_pages.py).
ELSEWHERE = {"/referrals/{referral_id}", "/notifications/{notification_id}", "/recordings/{recording_id}",
             "/referrals/{referral_id}/reports/{report_id}/verification",  # (tests/web/test_report_pages.py)
             # the consultation request: as whoever may see the referral (its edit form: the referring doctor,
             # while a draft), tests/web/test_request_pages.py
             "/referrals/{referral_id}/request", "/referrals/{referral_id}/request.pdf",
             "/referrals/{referral_id}/request/edit"}


def page_routes(client: TestClient) -> set[str]:
    """Every GET route that is a logged-in user's page (not the API, static files or public pages)."""
    found = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method != "GET" or path.startswith(("/api/", "/fhir/", "/static")) or getattr(route.handler,
                                                                                      PUBLIC_ATTRIBUTE, False):
            continue
        found.add(path)
    return found


def test_the_matrix_names_every_page(client: TestClient) -> None:
    """Guards new pages: each needs a row here (and so a rule) before it ships."""
    assert page_routes(client) == set(MATRIX) | ELSEWHERE


@pytest.mark.parametrize("username", ROLES)
async def test_each_role_opens_what_the_rules_allow(client: TestClient, username: str) -> None:
    """Guards the role/page matrix: allowed pages answer (200, or a redirect to the role's own version) with a
    title of plain words (no markup in the browser's tab), the others 403 with the translated error page, and
    the top bar links to none of the forbidden ones."""
    await form_login(client, username)
    for path, allowed in sorted(MATRIX.values()):
        answer = await client.get(path, allow_redirects=False, headers=ZH)
        if username in allowed:
            assert answer.status in (200, 303), (username, path, answer.status)
            title = re.search(r"<title>(.*?)</title>", await answer.text(), re.S)
            assert answer.status == 303 or (title and not re.search(r"[<>]|&lt;|&gt;", title[1])), (path, title)
        else:
            assert answer.status == 403, (username, path, answer.status)
            page = await answer.text()
            assert '<html lang="zh-CN"' in page and "<h1>抱歉 (403)</h1>" in page, (username, path)
            assert not re.search(r'class="error" role="alert">[^<]*[A-Za-z]{3}', page), "the refusal in Chinese"
    home = await (await client.get("/", headers=EN)).text()
    topbar = home[home.index('<header class="topbar">'):home.index("</header>")]
    linked = set(re.findall(r'<a href="(/[^"]*)"', topbar))
    forbidden = {path for path, allowed in MATRIX.values() if username not in allowed}
    assert linked and not linked & forbidden, (username, linked & forbidden)
    assert {p for p, allowed in MATRIX.values() if username in allowed} >= linked - {"/"}
