"""The clinic-hours editor through a real server: the week as rows to strike out or add to, sent whole as
the API takes it; refusals beside the row in the reader's language; time off as runs of days; and only the
specialist and their hospital's coordinators get in."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from ..conftest import login
from .test_pages import EN, form_login
from .test_patient_pages import ZH

WANG = 2  # demo ids
ZHOU = 7


def _week_form(page: str) -> dict[str, str]:
    """The week's inputs as the page fills them in."""
    form = dict(re.findall(r'name="(rows-\d)" value="(\d+)"', page))
    form.update(re.findall(r'name="((?:start|end)-\d-\d+)" value="([^"]*)"', page))
    return form


async def _hours(client: TestClient, specialist: int = WANG) -> list[dict]:
    shown = await client.get(f"/api/specialists/{specialist}/availability", headers=await login(client, "coord.zhao"))
    return (await shown.json())["hours"]


async def test_a_specialist_strikes_out_a_period_and_adds_one(client: TestClient) -> None:
    """A specialist's hours link leads to their own week, on the hospital's clock and saying so;
    striking out Monday afternoon and adding a Sunday period saves the whole week as the API
    then reads it, and the page says it was saved."""
    await form_login(client, "dr.wang")
    index = await client.get("/hours", headers=EN, allow_redirects=False)
    assert index.status == 303 and index.headers["Location"] == f"/specialists/{WANG}/hours"
    page = await (await client.get(f"/specialists/{WANG}/hours", headers=EN)).text()
    assert "Times are on the hospital's clock: Asia/Shanghai, CST." in page
    form = _week_form(page)
    assert form["rows-0"] == "2" and form["start-0-0"] == "08:00" and form["end-0-1"] == "18:00"
    assert "rows-6" in form and form["rows-6"] == "0", "Sunday: no hours"
    form.update({"remove-0-1": "1", "start-6-new": "09:00", "end-6-new": "11:30"})
    saved = await client.post(f"/specialists/{WANG}/hours", data=form, headers=EN, allow_redirects=False)
    assert saved.status == 303
    hours = await _hours(client)
    assert [h for h in hours if h["weekday"] == 0] == [{"weekday": 0, "start": "08:00", "end": "12:00"}]
    assert [h for h in hours if h["weekday"] == 6] == [{"weekday": 6, "start": "09:00", "end": "11:30"}]
    assert len(hours) == 12
    assert "The weekly hours are saved." in await (await client.get(saved.headers["Location"], headers=EN)).text()


@pytest.mark.parametrize(("headers", "overlap", "order"), [
    (EN, "This period overlaps another one on the same day.", "The start must come before the end."),
    (ZH, "该时段与同一天的另一时段重叠。", "开始时间必须早于结束时间。"),
])
async def test_refusals_are_shown_beside_the_row_and_nothing_changes(client: TestClient, headers: dict,
                                                                      overlap: str, order: str) -> None:
    """Each row, a language: a new period overlapping another, or a period changed to start after it ends, is refused
    with the reason beside its row (422), keeping what was typed, and the stored hours do not change."""
    await form_login(client, "dr.wang")
    before = await _hours(client)
    form = _week_form(await (await client.get(f"/specialists/{WANG}/hours", headers=headers)).text())
    refused = await client.post(f"/specialists/{WANG}/hours", headers=headers,
                                data={**form, "start-1-new": "11:00", "end-1-new": "13:00"})
    page = await refused.text()
    assert refused.status == 422
    assert f'<span class="field-error" id="error-1-new">{overlap}</span>' in page
    assert 'name="start-1-new" value="11:00"' in page, "what was typed is kept"
    refused = await client.post(f"/specialists/{WANG}/hours", headers=headers,
                                data={**form, "start-2-0": "12:00", "end-2-0": "08:00"})
    assert f'<span class="field-error" id="error-2-0">{order}</span>' in await refused.text()
    assert await _hours(client) == before


async def test_time_off_as_a_run_of_days(client: TestClient) -> None:
    """A coordinator finds their hospital's specialists listed, adds time off over a run of days (a day each, shown as
    one run with its note), is refused a run ending before it starts (422, in Chinese beside the last day), and
    removes the run whole; a tampered list of ids is a 400."""
    await form_login(client, "coord.zhao")
    index = await (await client.get("/hours", headers=EN)).text()
    assert f'href="/specialists/{ZHOU}/hours"' in index and f'href="/specialists/{WANG}/hours"' in index
    empty = await (await client.get(f"/specialists/{ZHOU}/hours", headers=EN)).text()
    assert "No time off planned." in empty
    added = await client.post(f"/specialists/{ZHOU}/time-off", headers=EN, allow_redirects=False,
                              data={"first_day": "2030-05-03", "last_day": "2030-05-07", "note": "学术会议 congress"})
    assert added.status == 303
    page = await (await client.get(f"/specialists/{ZHOU}/hours", headers=EN)).text()
    assert "2030-05-03 to 2030-05-07" in page and "学术会议 congress" in page
    ids = re.search(r'name="ids" value="([\d,]+)"', page)
    assert ids and len(ids[1].split(",")) == 5
    refused = await client.post(f"/specialists/{ZHOU}/time-off", headers=ZH,
                                data={"first_day": "2030-05-07", "last_day": "2030-05-03"})
    assert refused.status == 422
    assert '<span class="field-error" id="error-last_day">结束日期不能早于开始日期。</span>' in await refused.text()
    removed = await client.post(f"/specialists/{ZHOU}/time-off/remove", data={"ids": ids[1]}, headers=EN,
                                allow_redirects=False)
    assert removed.status == 303
    assert "No time off planned." in await (await client.get(f"/specialists/{ZHOU}/hours", headers=EN)).text()
    tampered = await client.post(f"/specialists/{ZHOU}/time-off/remove", data={"ids": "1,x"}, headers=EN)
    assert tampered.status == 400


@pytest.mark.parametrize(("username", "path", "status"), [
    ("dr.li", "/hours", 403), ("auditor", "/hours", 403),
    ("dr.zhou", f"/specialists/{WANG}/hours", 403),  # another specialist's
    ("dr.li", f"/specialists/{WANG}/hours", 403),
    ("dr.wang", "/specialists/1/hours", 404),  # not a specialist
])
async def test_others_are_refused(client: TestClient, username: str, path: str, status: int) -> None:
    """Each row: a county doctor or an auditor on the hours index, another specialist or a county doctor on a
    specialist's hours, a specialist on the hours of an account that is no specialist (404): the page answers with that
    status, and for a specialist's page so does its time-off form."""
    await form_login(client, username)
    assert (await client.get(path, headers=EN)).status == status
    if path.startswith("/specialists/"):
        posted = await client.post(f"{path.rsplit('/', 1)[0]}/time-off", data={"first_day": "2030-05-03"}, headers=EN)
        assert posted.status == status


async def test_the_editor_speaks_chinese(client: TestClient) -> None:
    """The hours editor is in Chinese: its heading with the specialist's name, the weekdays and its buttons."""
    await form_login(client, "dr.wang")
    page = await (await client.get(f"/specialists/{WANG}/hours", headers=ZH)).text()
    assert "王芳 Wang Fang的出诊时间" in page and "星期一" in page and "保存每周出诊时间" in page and "添加停诊" in page
