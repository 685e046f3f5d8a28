"""The ICD-10 code list: the packaged WHO list searched by code and title, a hospital's own list loaded from
CSV replacing it (bad files refused with the line at fault), and the autocomplete's endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.cli import main
from server.db import Database
from server.errors import ValidationFailed
from server.models import AuditEvent
from server.reports import icd10

from ...conftest import login

HOSPITAL_LIST = "code,title_zh,title_en\nI10.x00,原发性高血压,Essential hypertension\nE11.900,2型糖尿病,\n"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'icd.db'}")
    await database.upgrade()
    yield database
    await database.close()


async def test_the_packaged_list_is_found_by_code_start_and_by_title(database: Database) -> None:
    """Out of the box the WHO list answers: a code's start finds it first, a word finds it in titles."""
    async with database.session() as session:
        by_code = await icd10.search(session, "i10")
        by_title = await icd10.search(session, "hypertension")
        nothing = await icd10.search(session, "  ")
        known = await icd10.lookup(session, "e11.9")
        unknown = await icd10.lookup(session, "Q99.99")
    assert by_code[0].code == "I10" and by_code[0].title_en == "Essential (primary) hypertension"
    assert "I10" in {d.code for d in by_title} and len(by_title) <= icd10.MAX_RESULTS
    assert nothing == []
    assert known is not None and known.code == "E11.9" and unknown is None


async def test_a_hospitals_list_replaces_the_packaged_one(database: Database) -> None:
    """Once a hospital loads its list, only its codes are found and accepted, in Chinese too; audited."""
    async with database.session() as session:
        assert await icd10.replace(session, icd10.parse_csv(HOSPITAL_LIST), actor="shell") == 2
    async with database.session() as session:
        assert [d.code for d in await icd10.search(session, "高血压")] == ["I10.X00"]
        assert (await icd10.search(session, "E11"))[0].title("zh-CN") == "2型糖尿病"
        assert (await icd10.search(session, "E11"))[0].title("en") == "2型糖尿病"  # no English title: the other
        assert await icd10.lookup(session, "I10") is None  # the WHO code is no longer the list in use
        assert [e.action for e in (await session.exec(select(AuditEvent))).all()] == ["icd10.loaded"]


@pytest.mark.parametrize(("text", "complaint"), [
    ("code,title\n", "no diagnoses"),
    ("name,description\nI10,x\n", "header row"),
    ("code,title\nI10,高血压\nhello,x\n", "line 3"),
    ("code,title\nI10,\n", "line 2: I10 has no title"),
])
def test_a_bad_list_is_refused_saying_where(text: str, complaint: str) -> None:
    """A malformed CSV is refused whole, naming the line at fault (nothing half-loaded)."""
    with pytest.raises(ValidationFailed) as caught:
        icd10.parse_csv(text)
    assert complaint in caught.value.message


def test_telemed_icd10_load(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI loads a UTF-8 CSV (with Excel's BOM) into the data directory's database, and refuses a bad one."""
    monkeypatch.delenv("TELEMED_DATABASE_URL", raising=False)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("\ufeff" + HOSPITAL_LIST, encoding="utf-8")
    bad.write_text("code,title\nnot a code,x\n", encoding="utf-8")
    data = str(tmp_path / "var")
    assert main(["icd10", "load", str(good), "--data-dir", data]) == 0
    assert "Loaded 2 ICD-10 diagnoses" in capsys.readouterr().out
    assert main(["icd10", "load", str(bad), "--data-dir", data]) == 1
    assert "line 2" in capsys.readouterr().err


async def test_the_autocomplete_endpoint(client: TestClient) -> None:
    """GET /api/icd10?q= answers codes and titles for a logged-in caller; 401 without; 422 for a long query."""
    headers = await login(client, "dr.wang")
    found = await client.get("/api/icd10?q=I10", headers=headers)
    assert found.status == 200
    assert (await found.json())["diagnoses"][0] == {"code": "I10", "title": "Essential (primary) hypertension"}
    assert (await client.get("/api/icd10?q=I10")).status == 401
    assert (await client.get("/api/icd10?q=" + "x" * 101, headers=headers)).status == 422
