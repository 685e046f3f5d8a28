"""The recordings pages through a real server: the list in the viewer's time zone, the player with a video
per participant, one audit entry per opening of the player, and the links that lead there."""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE
from server.models import Hospital, Recording, RecordingStatus, User

from ..server.consultations.test_recordings import audit_tail, stored_recording
from ..support.recorded_call import stored_call
from .test_pages import EN, form_login

ZH = {"Accept-Language": "zh-CN"}


async def _set_zone(client: TestClient, username: str, zone: str) -> None:
    async with client.app[DATABASE].session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
        hospital = await session.get(Hospital, user.hospital_id)
        assert hospital is not None
        hospital.timezone = zone
        session.add(hospital)
        await session.commit()


async def test_the_list_shows_each_recording_in_the_viewers_time_zone(client: TestClient) -> None:
    """The auditor's hospital keeps Kathmandu time (UTC+5:45, unlike the consultation's Shanghai): start
    times are the viewer's wall clock, labelled with the zone; participants and status are named."""
    row = await stored_call(client.app, seconds=1.5)
    failed = await stored_recording(client, RecordingStatus.FAILED)
    await _set_zone(client, "auditor", "Asia/Kathmandu")
    await form_login(client, "auditor")
    page = await client.get("/consultations/1/recordings", headers=EN)
    assert page.status == 200
    text = await page.text()
    local = row.started_at.astimezone(ZoneInfo("Asia/Kathmandu")).strftime("%Y-%m-%d %H:%M")
    assert f">{local} +0545</time>" in text, "each time carries its zone's short name (Kathmandu has only +0545)"
    names = ("李明 Li Ming", "王芳 Wang Fang", "张伟 Zhang Wei", "County doctor", "Patient")
    assert all(name in text for name in names)
    mine = text.split(f'data-recording-id="{row.id}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="/recordings/{row.id}"' in mine and "Ready" in mine
    assert f'href="/api/recordings/{row.id}/media?download=1"' in mine
    theirs = text.split(f'data-recording-id="{failed.id}"', 1)[1].split("</tr>", 1)[0]
    assert "/recordings/" not in theirs and "Failed; nothing was saved" in theirs
    assert 'href="/consultations/1"' not in text, "an auditor is not sent into the room"


async def test_the_list_speaks_chinese(client: TestClient) -> None:
    """A participant's recordings list is in Chinese for a Chinese reader and links back to the room."""
    await stored_call(client.app, seconds=1.5)
    await form_login(client, "dr.wang")
    text = await (await client.get("/consultations/1/recordings", headers=ZH)).text()
    assert "录像" in text and "播放" in text and "时长" in text and "县级医生" in text
    assert 'href="/consultations/1"' in text, "a participant can go back to the room"


@pytest.mark.parametrize("path", ["/consultations/1/recordings", "/recordings/{id}"])
async def test_the_pages_refuse_those_the_rules_refuse(client: TestClient, path: str) -> None:
    """Each row, the recordings list and the player: a doctor who takes no part in the consultation gets a 403 HTML
    page, and the refusal adds nothing to the audit trail."""
    row = await stored_recording(client)
    await form_login(client, "dr.chen")
    before = await audit_tail(client.app[DATABASE])
    response = await client.get(path.format(id=row.id), headers=EN)
    assert response.status == 403 and "text/html" in response.headers["Content-Type"]
    assert await audit_tail(client.app[DATABASE]) == before


async def test_opening_the_player_is_one_viewing_whatever_it_then_loads(client: TestClient) -> None:
    """The page's own stream addresses play without another audit entry, in as many ranges as the browser
    asks for; opening the page again is another viewing."""
    database = client.app[DATABASE]
    row = await stored_call(client.app, seconds=2)
    await form_login(client, "dr.wang")
    before = len(await audit_tail(database))
    page = await client.get(f"/recordings/{row.id}", headers=EN)
    assert page.status == 200
    text = await page.text()
    sources = re.findall(r'<video[^>]* src="([^"]+)"', text)
    assert len(sources) == 3 and all("viewing=" in s for s in sources)
    assert [n for n in ("李明 Li Ming", "王芳 Wang Fang", "张伟 Zhang Wei") if n in text] == [
        "李明 Li Ming", "王芳 Wang Fang", "张伟 Zhang Wei"]
    assert 'aria-label="Position in the recording"' in text and 'id="play"' in text
    entries = await audit_tail(database)
    assert len(entries) == before + 1 and entries[-1].action == "recording.viewed"
    viewing = json.loads(entries[-1].detail)["viewing"]
    config = json.loads(text.split('id="player-config">', 1)[1].split("</script>", 1)[0])
    assert config == {"duration": row.duration, "viewing": viewing}

    for source in sources:
        url = source.replace("&amp;", "&")
        for byte_range in ("bytes=0-", "bytes=0-1023", "bytes=1024-"):
            response = await client.get(url, headers={"Range": byte_range})
            assert response.status == 206, await response.text()
    assert len(await audit_tail(database)) == before + 1

    await client.get(f"/recordings/{row.id}", headers=EN)
    assert len(await audit_tail(database)) == before + 2


async def test_the_player_runs_no_inline_script(client: TestClient) -> None:
    """The CSP allows scripts from this site only: the page's data rides in JSON blocks."""
    row = await stored_recording(client)
    await form_login(client, "auditor")
    page = await client.get(f"/recordings/{row.id}", headers=ZH)
    text = await page.text()
    scripts = re.findall(r"<script([^>]*)>", text)
    assert scripts and all('type="application/json"' in s or ('type="module"' in s and "src=" in s) for s in scripts)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "播放" in text and "参会者 1" in text  # a participant of unknown name is numbered
    script = await client.get("/static/js/recording-player.js")
    assert script.status == 200 and "SyncGroup" in await script.text()


async def test_an_unfinished_recording_has_no_player(client: TestClient) -> None:
    """A recording still being made has no player: its page is a 503 saying it is not finished yet."""
    row = await stored_recording(client, RecordingStatus.RECORDING)
    await form_login(client, "dr.wang")
    response = await client.get(f"/recordings/{row.id}", headers=EN)
    assert response.status == 503 and "not finished yet" in await response.text()


async def test_the_room_and_the_audit_trail_lead_to_the_recordings(client: TestClient) -> None:
    """The room links to its recordings, and the auditor's trail of a recording viewed links to
    that recording and to the consultation's recordings."""
    row = await stored_recording(client)
    await form_login(client, "dr.li")
    room = await (await client.get("/consultations/1", headers=EN)).text()
    assert 'href="/consultations/1/recordings"' in room
    await client.get(f"/recordings/{row.id}", headers=EN)
    client.session.cookie_jar.clear()
    await form_login(client, "auditor")
    trail = await (await client.get("/audit?action=recording.viewed", headers=EN)).text()
    assert f'href="/recordings/{row.id}"' in trail and 'href="/consultations/1/recordings"' in trail


async def test_recording_rows_the_recorder_never_finished_still_list(client: TestClient) -> None:
    """A row with no duration, tracks or participants yet (still recording) lists without a player."""
    async with client.app[DATABASE].session() as session:
        session.add(Recording(consultation_id=1, file="1/live.rec", started_by="user:1"))
        await session.commit()
    await form_login(client, "dr.wang")
    text = await (await client.get("/consultations/1/recordings", headers=EN)).text()
    assert "Still recording" in text and "/recordings/" not in text.split('id="recordings"', 1)[1]
