"""A recording's player over HTTP: opening a viewing is the one audited access, and each participant's
stream answers byte ranges with the right lengths, without another audit entry, to its viewer alone."""

from __future__ import annotations

import io

import av
import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE

from ...conftest import login
from ...support.recorded_call import stored_call
from ..consultations.test_recordings import audit_tail, stored_recording


async def test_a_viewing_is_audited_once_whatever_ranges_the_player_asks_for(client: TestClient) -> None:
    """Opening a viewing lists each participant's stream by name and role and adds one audit entry; each stream then
    answers whole, in byte ranges and as a tail with the right lengths, adding up to a playable file, and 416 past its
    end, with no further audit entry: the player's range requests are not separate viewings."""
    database = client.app[DATABASE]
    row = await stored_call(client.app)
    wang = await login(client, "dr.wang")
    before = len(await audit_tail(database))
    opened = await client.post(f"/api/recordings/{row.id}/viewings", headers=wang)
    assert opened.status == 201, await opened.text()
    viewing = await opened.json()
    assert [(p["number"], p["name"], p["role"], p["kinds"], p["media_type"]) for p in viewing["participants"]] == [
        (0, "李明 Li Ming", "county_doctor", ["audio", "video"], "video/webm"),
        (1, "王芳 Wang Fang", "specialist", ["audio", "video"], "video/webm"),
        (2, "张伟 Zhang Wei", "patient", ["audio", "video"], "video/webm")]
    assert len(await audit_tail(database)) == before + 1

    for participant in viewing["participants"]:
        url = participant["media_url"]
        whole = await client.get(url, headers=wang)
        assert whole.status == 200 and whole.headers["Content-Type"] == "video/webm"
        body = await whole.read()
        assert int(whole.headers["Content-Length"]) == len(body) and whole.headers["Accept-Ranges"] == "bytes"
        pieces = []
        for first, last in ((0, 0), (1, 99), (100, len(body) - 1)):
            part = await client.get(url, headers={**wang, "Range": f"bytes={first}-{last}"})
            assert part.status == 206
            assert part.headers["Content-Range"] == f"bytes {first}-{last}/{len(body)}"
            pieces.append(await part.read())
            assert int(part.headers["Content-Length"]) == len(pieces[-1]) == last - first + 1
        assert b"".join(pieces) == body
        tail = await client.get(url, headers={**wang, "Range": "bytes=-16"})
        assert tail.status == 206 and await tail.read() == body[-16:]
        assert [s.type for s in av.open(io.BytesIO(body)).streams] == ["audio", "video"]
        outside = await client.get(url, headers={**wang, "Range": f"bytes={len(body)}-"})
        assert outside.status == 416
    assert len(await audit_tail(database)) == before + 1, "ranges are not viewings"


async def test_a_participants_stream_needs_the_viewers_own_viewing(client: TestClient) -> None:
    """A participant's stream answers 401 without a viewing, with a forged one, with someone else's, with one for
    another recording or with no login, and 404 for a participant number that is not there or not in ASCII digits; each
    refusal carries a message."""
    row = await stored_call(client.app, seconds=1.5)
    wang, auditor = await login(client, "dr.wang"), await login(client, "auditor")
    viewing = await (await client.post(f"/api/recordings/{row.id}/viewings", headers=wang)).json()
    url = viewing["participants"][0]["media_url"]
    bare = url.split("?", 1)[0]
    for path, headers, status in [
        (bare, wang, 401),  # no viewing
        (f"{bare}?viewing=forged", wang, 401),
        (url, auditor, 401),  # someone else's viewing
        (url.replace(f"/recordings/{row.id}/", f"/recordings/{row.id + 1}/"), wang, 401),  # of another recording
        (url.replace("/participants/0/", "/participants/3/"), wang, 404),
        (url.replace("/participants/0/", "/participants/x/"), wang, 404),
        (url.replace("/participants/0/", "/participants/%D9%A1/"), wang, 404),  # an Arabic-Indic digit one
        (url, {}, 401),  # not logged in
    ]:
        response = await client.get(path, headers=headers)
        assert response.status == status, (path, await response.text())
        assert "message" in (await response.json())["error"]


@pytest.mark.parametrize(("username", "status"), [("dr.li", 201), ("auditor", 201), ("dr.chen", 403),
                                                  ("coord.zhao", 403), ("admin", 403)])
async def test_viewings_are_for_participants_and_auditors(client: TestClient, username: str, status: int) -> None:
    """Each row: a participating doctor or an auditor opens a viewing, audited once; another county's doctor, a
    coordinator and an administrator are refused 403 and nothing is audited."""
    row = await stored_recording(client)
    headers = await login(client, username)  # a login is audited too: count after it
    before = len(await audit_tail(client.app[DATABASE]))
    response = await client.post(f"/api/recordings/{row.id}/viewings", headers=headers)
    assert response.status == status, await response.text()
    assert len(await audit_tail(client.app[DATABASE])) == before + (1 if status == 201 else 0)


async def test_the_list_points_at_the_player(client: TestClient) -> None:
    """The consultation's list of recordings gives each one's viewings endpoint and its player page."""
    row = await stored_recording(client)
    listed = await (await client.get("/api/consultations/1/recordings", headers=await login(client, "auditor"))).json()
    assert listed["recordings"][0]["viewings_url"] == f"/api/recordings/{row.id}/viewings"
    assert listed["recordings"][0]["player_url"] == f"/recordings/{row.id}"
