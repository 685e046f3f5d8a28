"""Watching a recording as a service: whose tracks are whose, a viewing is audited once and only for those
the rules let in, and each participant's stream needs the viewer's own viewing of that recording."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp.test_utils import TestClient

from server.appkeys import DATABASE, KEYS, RECORDING_KEY, SETTINGS
from server.consultations import playback
from server.consultations.playback import ViewingClaims, participants_of, verify_viewing, viewing_token
from server.errors import Forbidden, NotFound, Unauthenticated, Unavailable
from server.identity.tokens import AccessToken, KeyRing
from server.models import Recording, RecordingStatus
from server.settings import Secret

from ...support.recorded_call import stored_call
from .test_recordings import audit_tail, principal, stored_recording

KEYRING = KeyRing(Secret("a-test-signing-key-that-is-long-enough-for-hs256"))
ISSUER = "telemed-test"


def _row(tracks: list[dict], participants: list[dict] | None = None) -> Recording:
    return Recording(consultation_id=1, file="x.rec", started_by="user:1", tracks=json.dumps(tracks),
                     participants=json.dumps(participants or []))


A, V = {"kind": "audio", "codec": "opus"}, {"kind": "video", "codec": "VP8"}
SEATED = [{"participant_id": "p1", "identity": "user:1", "name": "李明", "role": "county_doctor"},
          {"participant_id": "p2", "identity": "guest:7", "name": "张伟", "role": "patient"}]


@pytest.mark.parametrize(("tracks", "expected"), [
    # tagged tracks: grouped by participant, in the order they first appear, named from who was seated
    ([{**A, "participant_id": "p1"}, {**V, "participant_id": "p1"}, {**A, "participant_id": "p2"},
      {**V, "participant_id": "p2"}],
     [("p1", "李明", "county_doctor", (0, 1), ("audio", "video")),
      ("p2", "张伟", "patient", (2, 3), ("audio", "video"))]),
    # a camera that was off: audio alone; and tracks need not alternate
    ([{**V, "participant_id": "p2"}, {**A, "participant_id": "p1"}, {**A, "participant_id": "p2"}],
     [("p2", "张伟", "patient", (0, 2), ("video", "audio")), ("p1", "李明", "county_doctor", (1,), ("audio",))]),
    # someone not among the seated at the start (no name known)
    ([{**A, "participant_id": "p9"}, {**V, "participant_id": "p9"}], [("p9", None, None, (0, 1), ("audio", "video"))]),
    # recovered before tracks were tagged: file order, a new participant at a kind already taken
    ([A, V, A, V, V], [(None, None, None, (0, 1), ("audio", "video")), (None, None, None, (2, 3), ("audio", "video")),
                       (None, None, None, (4,), ("video",))]),
    ([V, A, V, A], [(None, None, None, (0, 1), ("video", "audio")), (None, None, None, (2, 3), ("video", "audio"))]),
    ([], []),
])
def test_participants_of_a_recording(tracks: list[dict], expected: list[tuple]) -> None:
    """Each row: a recording's tracks grouped into participants, numbered in order, with their streams and kinds. Tagged
    tracks group by participant in order of first appearance, named from who was seated (someone not seated has no name;
    a camera off leaves audio alone); untagged tracks from before tagging go in file order, a repeated kind starting the
    next participant; no tracks, no participants."""
    found = participants_of(_row(tracks, SEATED))
    assert [(p.participant_id, p.name, p.role, p.streams, p.kinds) for p in found] == expected
    assert [p.number for p in found] == list(range(len(expected)))


def test_h264_participants_play_as_mp4() -> None:
    """A participant whose video is H.264 plays as video/mp4, with video."""
    found = participants_of(_row([{"kind": "audio", "codec": "opus", "participant_id": "p1"},
                                  {"kind": "video", "codec": "H264", "participant_id": "p1"}]))
    assert found[0].format.media_type == "video/mp4" and found[0].has_video


def test_a_viewing_token_names_its_viewer_recording_and_viewing() -> None:
    """A viewing token verifies back to the claims it was made with: the viewing, its viewer and the recording."""
    token = viewing_token(KEYRING, ISSUER, ViewingClaims("v1", 4, 12))
    assert verify_viewing(KEYRING, ISSUER, token) == ViewingClaims("v1", 4, 12)


def test_an_expired_viewing_says_so() -> None:
    """A viewing token past its lifetime is refused as token-expired, telling the viewer to open the recording again."""
    token = viewing_token(KEYRING, ISSUER, ViewingClaims("v1", 4, 12), ttl=60)
    with pytest.raises(Unauthenticated) as refused:
        verify_viewing(KEYRING, ISSUER, token, now=time.time() + 3600)
    assert refused.value.code == "token-expired" and "open the recording again" in refused.value.message


@pytest.mark.parametrize("token", [
    AccessToken(issuer=ISSUER).with_identity("4").with_claims(viewing="v1", recording=12).to_jwt(KEYRING),  # a login
    viewing_token(KeyRing(Secret("another-key-that-is-also-long-enough-for-hs256")), ISSUER, ViewingClaims("v", 4, 12)),
    "not-a-token",
])
def test_other_tokens_are_not_viewings(token: str) -> None:
    """Each row: a login token carrying viewing claims, a viewing signed with another key, and a string that is no token
    are each refused as a viewing (unauthenticated)."""
    with pytest.raises(Unauthenticated):
        verify_viewing(KEYRING, ISSUER, token)


def _opener(client: TestClient):  # type: ignore[no-untyped-def]
    app = client.app
    return dict(root=app[SETTINGS].recordings_dir, key=app[RECORDING_KEY], keys=app[KEYS],
                issuer=app[SETTINGS].jwt_issuer)


@pytest.mark.parametrize("username", ["dr.chen", "coord.zhao", "dr.zhou", "admin"])
async def test_only_participants_and_auditors_open_a_viewing(client: TestClient, username: str) -> None:
    """Refused callers open nothing and leave no audit entry."""
    database = client.app[DATABASE]
    row = await stored_recording(client)
    assert row.id is not None
    before = await audit_tail(database)
    with pytest.raises(Forbidden):
        await playback.open_viewing(database, await principal(database, username), row.id, **_opener(client))
    with pytest.raises(Forbidden):
        await playback.shelf(database, await principal(database, username), 1)
    assert await audit_tail(database) == before


async def test_nothing_is_audited_when_a_viewing_cannot_open(client: TestClient) -> None:
    """Unfinished, missing or damaged: refused before the audit entry, which records only real viewings."""
    database = client.app[DATABASE]
    wang = await principal(database, "dr.wang")
    live = await stored_recording(client, RecordingStatus.RECORDING)
    gone = await stored_recording(client, RecordingStatus.INTERRUPTED)
    (client.app[SETTINGS].recordings_dir / gone.file).unlink()
    before = await audit_tail(database)
    with pytest.raises(Unavailable):
        await playback.open_viewing(database, wang, live.id or 0, **_opener(client))
    with pytest.raises(NotFound):
        await playback.open_viewing(database, wang, gone.id or 0, **_opener(client))
    with pytest.raises(NotFound):
        await playback.open_viewing(database, wang, 999, **_opener(client))
    assert await audit_tail(database) == before


async def test_a_viewing_is_audited_once_however_many_streams_and_ranges(client: TestClient) -> None:
    """One ``recording.viewed`` entry when the viewing opens; then every participant's stream, whole and
    in ranges, adds none. The streams need the viewer's own viewing of this recording, and the rules are
    checked again on each (a viewing outlives no one's access)."""
    database = client.app[DATABASE]
    row = await stored_call(client.app)
    assert row.id is not None
    auditor, wang, chen = [await principal(database, u) for u in ("auditor", "dr.wang", "dr.chen")]
    before = len(await audit_tail(database))
    viewing = await playback.open_viewing(database, auditor, row.id, **_opener(client))
    entries = await audit_tail(database)
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.actor, entry.action, entry.consultation_id, entry.subject, json.loads(entry.detail)) == (
        f"user:{auditor.user_id}", "recording.viewed", 1, f"recording:{row.id}",
        {"viewing": viewing.id, "participants": 3})
    assert [p.name for p in viewing.participants] == ["李明 Li Ming", "王芳 Wang Fang", "张伟 Zhang Wei"]

    sizes = []
    for participant in viewing.participants:
        for span in (lambda size: (0, size), lambda size: (0, 2), lambda size: (size - 10, size)):
            opened = await playback.participant_stream(database, auditor, row.id, participant.number, viewing.token,
                                                       span=span, **_opener(client))
            assert opened.media_type == "video/webm" and opened.end - opened.start in (2, 10, opened.reader.size)
        sizes.append(opened.reader.size)
    assert len(await audit_tail(database)) == before + 1
    assert all(size > 1000 for size in sizes)

    whole = lambda size: (0, size)  # noqa: E731
    with pytest.raises(Unauthenticated):  # someone else's viewing
        await playback.participant_stream(database, wang, row.id, 0, viewing.token, span=whole, **_opener(client))
    with pytest.raises(Unauthenticated):  # a viewing of another recording
        await playback.participant_stream(database, auditor, row.id + 1, 0, viewing.token, span=whole,
                                          **_opener(client))
    with pytest.raises(NotFound):
        await playback.participant_stream(database, auditor, row.id, 3, viewing.token, span=whole, **_opener(client))
    forged = viewing_token(client.app[KEYS], client.app[SETTINGS].jwt_issuer, ViewingClaims("x", chen.user_id, row.id))
    with pytest.raises(Forbidden):  # a viewing alone is not access: the rules still refuse
        await playback.participant_stream(database, chen, row.id, 0, forged, span=whole, **_opener(client))
    assert len(await audit_tail(database)) == before + 1
