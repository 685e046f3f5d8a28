"""The pages' defences (web/pages.py): no open redirect, no markup or 500 from an error message, no login CSRF."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select
from yarl import URL

from server.appkeys import DATABASE
from server.models import User
from web.pages import safe_next

EN = {"Accept-Language": "en"}


async def form_login(client: TestClient, username: str, next_path: str = "/", password: str = "telemed-demo",
                     headers: dict[str, str] | None = None):
    return await client.post("/login", data={"username": username, "password": password, "next": next_path},
                             allow_redirects=False, headers={**EN, **(headers or {})})


# ---- open redirect ----

OFF_SITE = [
    None, "", " ", "\t",
    "//evil.example", "///evil.example", "////evil.example",
    "/\\evil.example", "\\/evil.example", "\\\\evil.example", "/\\/evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", " //evil.example",
    "\x00//evil.example", "//evil.example\x1f", "/\t\\evil.example",
    "https://evil.example", "http:evil.example", "https:/evil.example", "HTTPS://evil.example",
    "javascript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>",
    "evil.example", "evil.example/path", ".//evil.example", "%2F%2Fevil.example",
    "/x\x00y", "/x\x0by", "/x\x7fy",
]
ON_SITE = [
    ("/", "/"),
    ("/consultations/1", "/consultations/1"),
    ("/referrals?state=sent&page=2", "/referrals?state=sent&page=2"),
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # a path on this site: browsers do not decode it
    ("/%09/evil.example", "/%09/evil.example"),
    ("/a\\b", "/a/b"),  # the browser would follow /a/b
    ("  /consultations/1\t", "/consultations/1"),
    ("/consul\ttations/1", "/consultations/1"),
    ("/visit/x#done", "/visit/x#done"),
    ("/a//b", "/a//b"),
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_safe_next_refuses_every_way_off_the_site(target: str | None) -> None:
    """Anything a browser would read as another host, a scheme or not a path becomes the dashboard."""
    assert safe_next(target) == "/"


@pytest.mark.parametrize(("target", "expected"), ON_SITE)
def test_safe_next_keeps_paths_on_this_site(target: str, expected: str) -> None:
    """A path on this site survives, as the browser will read it."""
    assert safe_next(target) == expected


async def test_login_page_does_not_redirect_a_logged_in_user_off_site(client: TestClient) -> None:
    """GET /login?next=/%09/evil.example: the query decodes to "/<tab>/evil", which browsers read as //evil."""
    assert (await form_login(client, "dr.li")).status == 303
    for raw in ("/%09/evil.example", "/%5C/evil.example", "%09//evil.example", "/%0A/evil.example"):
        response = await client.get(URL(f"/login?next={raw}", encoded=True), allow_redirects=False)
        assert response.status == 303, raw
        assert response.headers["Location"] == "/", raw


async def test_login_page_form_carries_only_a_safe_next(client: TestClient) -> None:
    """The login form's hidden next field never holds an off-site target to post back."""
    response = await client.get(URL("/login?next=/%09/evil.example", encoded=True), headers=EN)
    text = await response.text()
    assert 'name="next" value="/"' in text and "evil.example" not in text


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\\/evil.example", "\t//evil.example", "/\r\n/evil.example"])
async def test_login_form_does_not_redirect_off_site(client: TestClient, target: str) -> None:
    """POST /login with a next that browsers normalise into //evil.example lands on the dashboard."""
    response = await form_login(client, "dr.li", target)
    assert response.status == 303
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\\/evil.example", "\t//evil.example", "https://evil.example"])
async def test_language_choice_does_not_redirect_off_site(client: TestClient, target: str) -> None:
    """The public POST /language sends the browser back only to a path on this site."""
    response = await client.post("/language", data={"locale": "en", "next": target}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"
    response = await client.post("/language", data={"locale": "fr", "next": target}, allow_redirects=False)
    assert response.headers["Location"] == "/"


# ---- error page ----

META = "%3Cmeta%20http-equiv=%22refresh%22%20content=%220;url=https:%2F%2Fevil.example%22%3E"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("path", [f"/referrals/{META}", f"/consultations/{META}", "/referrals/%25d",
                                  "/consultations/%25(x)s", "/referrals/%25s%25s%25s",
                                  "/consultations/%25(msg)r%25%25"])
async def test_error_page_shows_a_bad_address_as_text(client: TestClient, lang: str, path: str) -> None:
    """A path segment lands in the error message: it is shown escaped and never %-formatted (no markup, no 500)."""
    await form_login(client, "dr.li")
    response = await client.get(URL(path, encoded=True), headers={"Accept-Language": lang})
    assert response.status == 400
    text = await response.text()
    assert "<meta http-equiv" not in text and 'content="0;url' not in text
    assert response.headers["Content-Language"] == lang
    if "meta" in path:
        assert "&lt;meta http-equiv=&#34;refresh&#34;" in text, "the input is still shown, as text"


async def test_error_page_still_translates_known_messages(client: TestClient) -> None:
    """Rendering the message as plain text keeps its translation."""
    await form_login(client, "dr.chen")
    response = await client.get("/consultations/1", headers={"Accept-Language": "zh-CN"})
    assert response.status == 403
    assert "您不是此会诊的参会者。" in await response.text()


# ---- login CSRF ----

CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "not a url at all"},
    {"Referer": "https://evil.example/login-trap.html"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
]


def _same_site(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("/")).rstrip("/")}


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_login_form_refuses_a_post_from_another_site(client: TestClient, headers: dict[str, str]) -> None:
    """Login CSRF: another site's page must not leave the victim logged in as the attacker."""
    response = await form_login(client, "dr.li", headers=headers)
    assert response.status == 403
    assert "set-cookie" not in response.headers
    assert "This form was sent from another site." in await response.text()
    assert (await client.get("/", allow_redirects=False)).status == 303, "still logged out"


async def test_login_form_refusal_is_translated(client: TestClient) -> None:
    """The refusal speaks the visitor's language."""
    response = await form_login(client, "dr.li", headers={"Origin": "https://evil.example",
                                                          "Accept-Language": "zh-CN"})
    assert response.status == 403
    assert "此表单来自其他网站" in await response.text()


async def test_login_form_from_this_site_or_without_origin_still_logs_in(client: TestClient) -> None:
    """The site's own form (same Origin, Referer or Sec-Fetch-Site) and non-browser clients are let in."""
    own = str(client.make_url("/login"))
    for headers in ({}, _same_site(client), {"Referer": own}, {"Sec-Fetch-Site": "same-origin"},
                    {**_same_site(client), "Sec-Fetch-Site": "same-origin", "Referer": own}):
        client.session.cookie_jar.clear()
        response = await form_login(client, "dr.li", headers=headers)
        assert response.status == 303, headers
        assert "set-cookie" in response.headers, headers


async def test_origin_on_another_port_is_another_site(client: TestClient) -> None:
    """Same host, other port: another origin, refused."""
    url = client.make_url("/")
    response = await form_login(client, "dr.li", headers={"Origin": f"http://{url.host}:{url.port + 1}"})
    assert response.status == 403


async def test_a_proxy_writing_the_default_port_into_host_serves_the_same_site(client: TestClient) -> None:
    """deploy/nginx.conf.template writes Host as ``name:443`` (HTTP/2 requests carry no Host of their own, and
    a port other than 443 must reach the app): the browser's Origin ``https://name``, without the port, and
    its Referer are still this site; another port or scheme is not."""
    for origin in ("https://telemed.example", "https://telemed.example/login"):
        client.session.cookie_jar.clear()
        header = "Origin" if origin.count("/") == 2 else "Referer"
        response = await form_login(client, "dr.li", headers={"Host": "telemed.example:443", header: origin})
        assert response.status == 303, origin
    for origin in ("http://telemed.example", "https://telemed.example:8443"):
        response = await form_login(client, "dr.li", headers={"Host": "telemed.example:443", "Origin": origin})
        assert response.status == 403, origin


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_language_choice_refuses_a_post_from_another_site(client: TestClient, headers: dict[str, str]) -> None:
    """Another site cannot change a logged-in user's language, on the browser or on the account."""
    await form_login(client, "dr.wang")
    response = await client.post("/language", data={"locale": "en", "next": "/"}, allow_redirects=False,
                                 headers={**EN, **headers})
    assert response.status == 403
    assert "This form was sent from another site." in await response.text()
    assert "telemed_lang" not in response.cookies
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == "dr.wang"))).one()
    assert user.locale != "en"


async def test_language_choice_from_this_site_still_works(client: TestClient) -> None:
    """The language menu of the site's own pages keeps working."""
    response = await client.post("/language", data={"locale": "en", "next": "/"}, allow_redirects=False,
                                 headers=_same_site(client))
    assert response.status == 303 and response.cookies["telemed_lang"].value == "en"


async def test_api_login_sets_no_cookie(client: TestClient) -> None:
    """The JSON login returns a bearer token and sets no cookie, so a cross-site post cannot log a browser in."""
    response = await client.post("/api/auth/login", json={"username": "dr.li", "password": "telemed-demo"},
                                 headers={"Origin": "https://evil.example"})
    assert response.status == 200
    assert "set-cookie" not in response.headers
    assert "access-control-allow-origin" not in response.headers, "nor can that page read the token"


@pytest.mark.parametrize("path", ["/login", "/language"])
async def test_a_malformed_multipart_form_is_a_400_not_a_500(client: TestClient, path: str) -> None:
    """A multipart body with a valid boundary but a part without headers made aiohttp raise ValueError from
    request.post(), which reached the error middleware as a 500; every page form is read through
    read_form, which answers 400."""
    body = b"--b\r\nnot a header\r\n\r\nx\r\n--b--\r\n"
    response = await client.post(path, data=body, allow_redirects=False,
                                 headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status == 400
