"""The consultations list page through a real server: searched and paged by ``consultations.find`` (the
API's search), in the reader's language, refused to those who see no health records."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE

from ..conftest import login
from ..server.consultations.test_search import add_consultations
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}


async def test_a_coordinator_pages_through_and_searches_their_consultations(client: TestClient) -> None:
    """Guards the list's paging and search: 20 a page, the search kept in the pager's links, a filter
    that finds nothing said plainly."""
    await add_consultations(client.app[DATABASE], 60)
    await form_login(client, "coord.zhao")
    first = await (await client.get("/consultations", headers=EN)).text()
    assert first.count("<tr data-consultation-id=") == 20 and re.search(r"Page 1 of \d+; \d+ in all", first)
    assert 'href="/consultations?page=2" rel="next"' in first and 'rel="prev"' not in first
    completed = await (await client.get("/consultations?q=title+2&status=completed", headers=EN)).text()
    rows = re.findall(r'<tr data-consultation-id="(\d+)">', completed)
    assert rows and completed.count('data-status="completed"') == len(rows)
    assert "Title 3<" not in completed and 'value="title 2"' in completed
    none = await (await client.get("/consultations?q=nobody", headers=EN)).text()
    assert "No consultation matches this search." in none and 'href="/consultations">Show all' in none


async def test_the_list_speaks_chinese_and_refuses_a_bad_range_beside_the_field(client: TestClient) -> None:
    """Guards the page's words and its refusals in zh-CN: headings, the zone line and the range's error."""
    await form_login(client, "dr.li")
    page = await (await client.get("/consultations", headers=ZH)).text()
    assert "<h1>会诊</h1>" in page and "日期和时间均为 Asia/Shanghai（CST）。" in page
    assert "张伟 Zhang Wei" in page, "the demo consultation and its patient"
    wrong = await client.get("/consultations?since=2030-03-05&until=2030-03-04", headers=ZH)
    assert wrong.status == 422
    assert '<span class="field-error" id="error-until">结束日期不能早于开始日期。</span>' in await wrong.text()
    english = await (await client.get("/consultations?since=2030-03-05&until=2030-03-04", headers=EN)).text()
    assert "The last day cannot come before the first." in english


@pytest.mark.parametrize("username", ["auditor", "admin"])
async def test_those_who_see_no_records_get_a_translated_403(client: TestClient, username: str) -> None:
    """Guards health records on the page as in the API: 403, in the reader's language, and no nav link."""
    await form_login(client, username)
    refused = await client.get("/consultations", headers=ZH)
    assert refused.status == 403 and "只有临床医生和协调员可以查看会诊列表。" in await refused.text()
    home = await (await client.get("/", headers=EN)).text()
    assert 'href="/consultations"' not in home


async def test_the_api_takes_the_same_search(client: TestClient) -> None:
    """Guards one way in: GET /api/consultations reads the page's parameters and refuses the same range."""
    headers = await login(client, "dr.li")
    found = await (await client.get("/api/consultations?q=zhang", headers=headers)).json()
    assert [c["patient"]["name"] for c in found["consultations"]] == ["张伟 Zhang Wei"]
    assert (found["page"], found["pages"], found["total"], found["has_next"]) == (1, 1, 1, False)
    wrong = await client.get("/api/consultations?since=2030-03-05&until=2030-03-04", headers=headers)
    assert wrong.status == 422 and "until" in (await wrong.json())["error"]["fields"]
