"""The patient pages through a real server: registering (the API's model and refusals, shown beside the
fields in the reader's language), finding by name or national ID a page at a time, and a chart only for
those who may see the record."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from ..conftest import login
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}
NATIONAL_ID = "11010519491231002X"


async def _register(client: TestClient, headers: dict[str, str] = EN, **fields: str):
    form = {"name": "王秀英 Wang Xiuying", "sex": "female", "birth_year": "1949", "phone": "138 0000 0000",
            "national_id": NATIONAL_ID, **fields}
    return await client.post("/patients/new", data=form, headers=headers, allow_redirects=False)


def _error_beside(page: str, field: str) -> str:
    """The error shown beside ``field``'s input (the span the input's aria-describedby names)."""
    found = re.search(rf'name="{field}"[^>]*aria-describedby="error-{field}"[^>]*>\s*'
                      rf'<span class="field-error" id="error-{field}">([^<]*)</span>', page)
    assert found, f"no error beside {field}"
    return found[1]


async def test_a_doctor_registers_finds_and_opens_a_patient(client: TestClient) -> None:
    """A county doctor registers a patient and lands on the chart, which shows the national ID only by its
    last four characters and offers to set up a consultation; the patient is found by part of the name or
    by the national ID in lower case (not shown back), an ID with a wrong check character is refused
    beside its field, and a search that finds no one says so."""
    await form_login(client, "dr.li")
    registered = await _register(client)
    assert registered.status == 303
    chart_path = registered.headers["Location"]
    chart = await (await client.get(chart_path, headers=EN)).text()
    assert "王秀英 Wang Xiuying" in chart and "ending 002X" in chart and NATIONAL_ID not in chart
    assert "No consultations for this patient that you may see." in chart
    assert f'href="/consultations/new?patient_id={chart_path.rsplit("/", 1)[1]}"' in chart

    by_name = await (await client.get("/patients?name=xiuying", headers=EN)).text()
    assert f'href="{chart_path}"' in by_name and "Zhang Wei" not in by_name
    by_id = await (await client.post("/patients", data={"national_id": NATIONAL_ID.lower()}, headers=EN)).text()
    assert f'href="{chart_path}"' in by_id and NATIONAL_ID.lower() not in by_id, "found, and not shown again"
    wrong = await client.post("/patients", data={"national_id": "110105194912310021"}, headers=EN)
    assert wrong.status == 422
    assert _error_beside(await wrong.text(), "national_id").startswith("the check character does not match")
    nobody = await (await client.get("/patients?name=nobody", headers=EN)).text()
    assert "No patient of your hospital matches this search." in nobody


async def test_refusals_are_shown_beside_the_fields_in_the_readers_language(client: TestClient) -> None:
    """The model's limits first (as the API's 422), then the operation's own check of the national ID."""
    await form_login(client, "dr.li")
    english = await _register(client, birth_year="1850", name="")
    page = await english.text()
    assert english.status == 422
    assert _error_beside(page, "birth_year") == "At least 1900."
    assert _error_beside(page, "name") == "Please fill this in."
    assert 'value="11010519491231002X"' in page, "what was typed is kept"
    checked = await (await _register(client, national_id="110105194912310021")).text()
    assert _error_beside(checked, "national_id") == "the check character does not match: please check the number"
    chinese = await (await _register(client, ZH, birth_year="1850")).text()
    assert _error_beside(chinese, "birth_year") == "不能小于 1900。"
    assert "请修改下方标出的内容。" in chinese
    chinese = await (await _register(client, ZH, national_id="110105194912310021")).text()
    assert _error_beside(chinese, "national_id") == "校验码不符，请核对号码"
    headers = await login(client, "dr.li")
    for body, field in [({"name": "x", "birth_year": 1850}, "birth_year"),
                        ({"name": "x", "national_id": "110105194912310021"}, "national_id")]:
        api = await client.post("/api/patients", headers=headers, json=body)
        assert list((await api.json())["error"]["fields"]) == [field], "the API refuses alike"


async def test_a_second_record_of_one_person_points_to_the_first(client: TestClient) -> None:
    """Registering the same national ID again under another name is a 409 whose page links to the first record."""
    await form_login(client, "dr.li")
    first = (await _register(client)).headers["Location"]
    again = await _register(client, name="another spelling")
    assert again.status == 409
    assert f'href="{first}"' in await again.text()


async def test_the_list_is_paged(client: TestClient) -> None:
    """The patient list shows a page at a time, with the total and links between the pages (22 patients: 20,
    then 2), and a page number below 1 is a 422 saying so."""
    headers = await login(client, "dr.li")
    for n in range(21):
        assert (await client.post("/api/patients", json={"name": f"Liu {n:02d}"}, headers=headers)).status == 201
    await form_login(client, "dr.li")
    first = await (await client.get("/patients", headers=EN)).text()
    assert "Page 1 of 2; 22 in all" in first and 'href="/patients?page=2"' in first
    second = await (await client.get("/patients?page=2", headers=EN)).text()
    assert second.count("data-patient-id") == 2 and 'href="/patients?page=1"' in second
    bad = await client.get("/patients?page=0", headers=EN)
    assert bad.status == 422 and "At least 1." in await bad.text()


@pytest.mark.parametrize(("username", "path", "status"), [
    ("admin", "/patients", 403), ("auditor", "/patients/new", 403), ("auditor", "/patients/1", 403),
    ("dr.chen", "/patients/1", 403),  # another county hospital's doctor
    ("dr.wang", "/patients/1", 403),  # the partner hospital, with no referral the patient agreed to share
    ("dr.li", "/patients/999", 404),
])
async def test_others_are_refused(client: TestClient, username: str, path: str, status: int) -> None:
    """Each row: an administrator or an auditor on the patient pages, a doctor of another county hospital or the partner
    hospital's specialist with no shared referral on the demo patient's chart, is refused (403), and a chart that does
    not exist is a 404; no answer shows the patient's name."""
    await form_login(client, username)
    response = await client.get(path, headers=EN)
    assert response.status == status
    assert "张伟" not in await response.text()


async def test_the_chart_lists_the_patients_consultations(client: TestClient) -> None:
    """The patient's chart lists their consultation with its start on the hospital's clock, the zone named (CST)."""
    await form_login(client, "dr.li")
    chart = await (await client.get("/patients/1", headers=EN)).text()
    assert 'data-consultation-id="1"' in chart and "Chest pain follow-up" in chart
    assert re.search(r">\d{4}-\d\d-\d\d \d\d:\d\d CST</time>", chart), "in the hospital's zone, named"


async def test_the_pages_speak_chinese(client: TestClient) -> None:
    """The patient list and the registration form are in Chinese for a Chinese reader."""
    await form_login(client, "dr.li")
    listed = await (await client.get("/patients", headers=ZH)).text()
    assert "<h1>患者</h1>" in listed and "登记患者" in listed and "张伟 Zhang Wei" in listed
    new = await (await client.get("/patients/new", headers=ZH)).text()
    assert "身份证号（可选）" in new and "出生年份" in new
