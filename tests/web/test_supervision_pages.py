"""The supervision page in both languages: the filters, the per-month table and charts (titled and described
SVG, with the numbers as a table), the per-hospital rows of a crafted history, the export links under the same
filters; refusals in the reader's words; and administrators linking a supervisor to a partnership."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import PartnershipSupervisor, User

from ..server.supervision.history import SECRET_TEXT, craft
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}


@pytest.mark.parametrize(("headers", "words"), [
    (EN, ["Supervision", "Consultations held per month", "Median hours from submission to acceptance",
          "Per hospital and month", "From month", "Asia/Shanghai"]),
    (ZH, ["监管统计", "每月已完成会诊数", "从提交到接收的中位时长（小时）", "按医院和月份", "起始月份",
          "Asia/Shanghai"]),
])
async def test_the_page_shows_the_figures_in_the_readers_language(client: TestClient, headers: dict,
                                                                  words: list[str]) -> None:
    """The crafted March: three referrals received at the provincial hospital (median 4 h to acceptance), two
    consultations held at Qingshan, half of them recorded; charts are SVG images with a title and a description,
    and no patient's name or free text is on the page."""
    ids = await craft(client)
    await form_login(client, "supervisor")
    answer = await client.get("/supervision?from_month=2026-03&to_month=2026-04", headers=headers)
    page = await answer.text()
    assert answer.status == 200
    for word in words:
        assert word in page, word
    assert len(re.findall(r'<svg [^>]*role="img"', page)) == 3 and page.count("<desc id=") == 3
    provincial = re.search(rf'<tr data-month="2026-03" data-hospital-id="{ids["provincial"]}">(.*?)</tr>', page, re.S)
    assert provincial and "<td>3</td>" in provincial.group(1) and "4.0 / 6.0" in provincial.group(1)
    qingshan = re.search(rf'<tr data-month="2026-03" data-hospital-id="{ids["qingshan"]}">(.*?)</tr>', page, re.S)
    assert qingshan and "<td>50%</td>" in qingshan.group(1)
    assert 'href="/api/supervision/statistics?from_month=2026-03&amp;to_month=2026-04&amp;format=csv"' in page
    for datum in ("张伟", "钱秘密", "Qian Secret", SECRET_TEXT):
        assert datum not in page


@pytest.mark.parametrize(("query", "status", "zh_words"), [
    ("from_month=2026-05&to_month=2026-01", 422, "起始月份晚于截止月份。"),
    ("partnership_id=999", 403, "您不负责监管此医联体。"),
])
async def test_refusals_in_chinese(client: TestClient, query: str, status: int, zh_words: str) -> None:
    """Wrong months re-show the page with the reason beside the field; a partnership not overseen is a 403."""
    await form_login(client, "supervisor")
    answer = await client.get(f"/supervision?{query}", headers=ZH)
    assert answer.status == status and zh_words in await answer.text()


async def test_the_home_page_leads_a_supervisor_to_the_statistics(client: TestClient) -> None:
    """A supervisor has no consultations: their home page points them at the supervision page."""
    await form_login(client, "supervisor")
    home = await (await client.get("/", headers=EN)).text()
    assert 'href="/supervision"' in home and "Open the supervision statistics" in home


async def test_administrators_link_and_unlink_a_supervisor(client: TestClient) -> None:
    """From the partnership's console page: the demo supervisor is listed, removed (and then sees no
    partnership), and added back; a non-supervisor account is refused with a reason."""
    async with client.app[DATABASE].session() as session:
        supervisor = (await session.exec(select(User).where(User.username == "supervisor"))).one()
        doctor = (await session.exec(select(User).where(User.username == "dr.li"))).one()
    await form_login(client, "admin")
    page = await (await client.get("/admin/partnerships/1", headers=EN)).text()
    assert f'<li data-user-id="{supervisor.id}">' in page
    removed = await client.post(f"/admin/partnerships/1/supervisors/{supervisor.id}/remove", allow_redirects=False)
    assert removed.status == 303
    async with client.app[DATABASE].session() as session:
        assert (await session.exec(select(PartnershipSupervisor))).all() == []
    refused = await client.post("/admin/partnerships/1/supervisors", data={"user_id": str(doctor.id)}, headers=ZH)
    assert refused.status == 422 and "请选择一个监管人员账户。" in await refused.text()
    added = await client.post("/admin/partnerships/1/supervisors", data={"user_id": str(supervisor.id)},
                              allow_redirects=False)
    assert added.status == 303
    async with client.app[DATABASE].session() as session:
        assert [(r.partnership_id, r.user_id) for r in (await session.exec(select(PartnershipSupervisor))).all()] == [
            (1, supervisor.id)]
