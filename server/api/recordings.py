"""REST: recording consent, the list of a consultation's recordings, and playback with range requests.
Who may do each, and the audit entry of every playback, are in ``consultations/recordings.py`` (the
whole file) and ``consultations/playback.py`` (a viewing, and each participant's stream); this parses,
and streams."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Literal
from urllib.parse import urlencode

import pydantic
from aiohttp import web

from media.errors import TamperedRecording

from ..appkeys import DATABASE, KEYS, RECORDING_KEY, ROOMS, SETTINGS
from ..consent.records import How
from ..consultations import playback, recordings
from ..consultations.recordings import ConsentAnswer
from ..errors import N_, NotFound, RangeNotSatisfiable
from ..http import json_response, locale_for, parse_body, path_id
from ..identity.auth import caller, public
from ..models import Consent, Recording, RecordingStatus
from ..openapi import accepts, answers, answers_media, queries
from ..outputs import Instant, Out
from .consultations import consultation_id
from .visits import IDENTITY_FIELD, guest_pass

routes = web.RouteTableDef()


# The query of a recording's media. (No docstring: see reports.Icd10Query.)
class MediaQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    download: Literal["1"] | None = pydantic.Field(default=None, description="1: as an attachment, to save")


# The query of a participant's media. (No docstring: see reports.Icd10Query.)
class ViewingQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    viewing: str = pydantic.Field(default="", description="the viewing token from POST .../viewings")

READ_BYTES = 1024 * 1024  # decrypted per step while streaming a response
# ASCII digits only (\d takes other scripts' digits), and few enough that int() is quick and never refuses.
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})$")


class GuestConsentAnswer(ConsentAnswer):
    guest: str = pydantic.Field(min_length=1, max_length=4096)
    identity: str | None = IDENTITY_FIELD


class RecordingConsentShown(Out):
    """The consent to being recorded as it now stands: given (``at`` it was given), or withdrawn (``at`` it was
    withdrawn; ``id`` and ``at`` null when none stood)."""

    id: int | None
    given: bool
    at: Instant | None


class RecordingShown(Out):
    """A recording: its file's state, length (seconds), size and SHA-256; the tracks and participants it holds
    and the consents it relied on; where to play it (``media_url``, ``player_url``) or open it in a viewing."""

    id: int
    status: RecordingStatus
    started_at: Instant
    ended_at: Instant | None
    duration: float | None
    size: int | None
    sha256: str | None
    tracks: list[dict[str, Any]]
    participants: list[dict[str, Any]]
    consent_ids: list[int]
    media_url: str
    viewings_url: str
    player_url: str
    media_type: str


class RecordingList(Out):
    recordings: list[RecordingShown]


class ViewedParticipant(Out):
    """One participant of a recording in a viewing: their stream's address carries the viewing's token."""

    number: int
    participant_id: str | None
    name: str | None
    role: str | None
    kinds: list[str]
    media_type: str
    media_url: str


class ViewingShown(Out):
    viewing: str
    recording: RecordingShown
    participants: list[ViewedParticipant]


@routes.post("/api/consultations/{consultation_id}/recording-consent")
@answers(RecordingConsentShown, status=201, description="Consent given.")
@answers(RecordingConsentShown, description="Consent withdrawn (or none stood).")
@accepts(ConsentAnswer)
async def clinician_recording_consent(request: web.Request) -> web.Response:
    """A participating clinician gives or withdraws consent to being recorded in this consultation."""
    number = consultation_id(request)
    body = await parse_body(request, ConsentAnswer)
    answered = await recordings.clinician_consent(request.app[DATABASE], request.app[ROOMS],
                                                  caller(request).principal, number, body,
                                                  locale=locale_for(request), how=How.clicked(request))
    return _answer(body, answered)


@routes.post("/api/guest/recording-consent")
@answers(RecordingConsentShown, status=201, description="Consent given.")
@answers(RecordingConsentShown, description="Consent withdrawn (or none stood).")
@public
@accepts(GuestConsentAnswer)
async def guest_recording_consent(request: web.Request) -> web.Response:
    """A patient invited by link gives or withdraws consent (the link's token is the credential)."""
    body = await parse_body(request, GuestConsentAnswer)
    visit = await guest_pass(request, body.guest, body.identity)
    assert visit.consultation.id is not None
    answered = await recordings.answer_consent(request.app[DATABASE], request.app[ROOMS], visit.consultation.id,
                                               visit.consenter, body, locale=locale_for(request),
                                               how=How.clicked(request))
    return _answer(body, answered)


def _answer(body: ConsentAnswer, consent: Consent | None) -> web.Response:
    if body.given:
        assert consent is not None
        return json_response(RecordingConsentShown(id=consent.id, given=True, at=consent.given_at), status=201)
    if consent is None or consent.withdrawn_at is None:  # nothing stood: nothing to withdraw
        return json_response(RecordingConsentShown(id=None, given=False, at=None))
    return json_response(RecordingConsentShown(id=consent.id, given=False, at=consent.withdrawn_at))


def _recording_shown(row: Recording) -> RecordingShown:
    assert row.id is not None
    return RecordingShown(
        id=row.id, status=row.status, started_at=row.started_at, ended_at=row.ended_at, duration=row.duration,
        size=row.size, sha256=row.sha256, tracks=json.loads(row.tracks), participants=json.loads(row.participants),
        consent_ids=json.loads(row.consent_ids), media_url=f"/api/recordings/{row.id}/media",
        viewings_url=f"/api/recordings/{row.id}/viewings", player_url=f"/recordings/{row.id}",
        media_type=recordings.media_type(row)[0])


@routes.get("/api/consultations/{consultation_id}/recordings")
@answers(RecordingList)
async def list_recordings(request: web.Request) -> web.Response:
    rows = await recordings.list_for(request.app[DATABASE], caller(request).principal, consultation_id(request))
    return json_response(RecordingList(recordings=[_recording_shown(r) for r in rows]))


@routes.get("/api/recordings/{recording_id}/media")
@queries(MediaQuery)
@answers_media("video/webm", description="The recording.")
@answers_media("video/webm", status=206, description="The byte range asked for.")
async def recording_media(request: web.Request) -> web.StreamResponse:
    """The recording as WebM or Matroska, decrypted as it is sent; honours one byte range so players can seek."""
    download = request.query.get("download") == "1"
    playback = await recordings.play(request.app[DATABASE], caller(request).principal,
                                     path_id(request, "recording_id"), root=request.app[SETTINGS].recordings_dir,
                                     key=request.app[RECORDING_KEY], download=download,
                                     span=lambda size: _byte_range(request.headers.get("Range"), size))
    name = f"consultation-{playback.recording.consultation_id}-recording-{playback.recording.id}.{playback.extension}"
    return await _send(request, playback, attachment=name if download else None)


@routes.post("/api/recordings/{recording_id}/viewings")
@answers(ViewingShown, status=201, description="The viewing, opened.")
async def open_viewing(request: web.Request) -> web.Response:
    """Open a recording in a player: audited once, here; the answer names each participant's stream,
    whose requests carry the viewing and are not audited again."""
    settings = request.app[SETTINGS]
    viewing = await playback.open_viewing(request.app[DATABASE], caller(request).principal,
                                          path_id(request, "recording_id"), root=settings.recordings_dir,
                                          key=request.app[RECORDING_KEY], keys=request.app[KEYS],
                                          issuer=settings.jwt_issuer)
    return json_response(viewing_shown(viewing), status=201)


@routes.get("/api/recordings/{recording_id}/participants/{number}/media")
@queries(ViewingQuery)
@answers_media("video/webm", description="The participant's media (or video/mp4).")
@answers_media("video/mp4", description="The participant's media (H.264).")
@answers_media("video/webm", status=206, description="The byte range asked for.")
@answers_media("video/mp4", status=206, description="The byte range asked for.")
async def participant_media(request: web.Request) -> web.StreamResponse:
    """One participant's audio and video of a recording (WebM, or MP4 for H.264), for a viewing's player:
    packets as recorded, never re-encoded; one byte range so the player can seek."""
    settings = request.app[SETTINGS]
    number = request.match_info["number"]
    if not number.isascii() or not number.isdigit() or len(number) > 3:
        raise NotFound(N_("This recording has no such participant."))
    opened = await playback.participant_stream(
        request.app[DATABASE], caller(request).principal, path_id(request, "recording_id"), int(number),
        request.query.get("viewing", ""), root=settings.recordings_dir, key=request.app[RECORDING_KEY],
        keys=request.app[KEYS], issuer=settings.jwt_issuer,
        span=lambda size: _byte_range(request.headers.get("Range"), size))
    return await _send(request, opened, attachment=None)


def viewing_shown(viewing: playback.Viewing) -> ViewingShown:
    """A viewing as the player needs it: the recording, and each participant with their stream's address."""
    row = viewing.recording
    return ViewingShown(viewing=viewing.id, recording=_recording_shown(row), participants=[ViewedParticipant(
        number=p.number, participant_id=p.participant_id, name=p.name, role=p.role, kinds=list(p.kinds),
        media_type=p.format.media_type,
        media_url=f"/api/recordings/{row.id}/participants/{p.number}/media?" + urlencode({"viewing": viewing.token}),
    ) for p in viewing.participants])


async def _send(request: web.Request, opened: recordings.Playback, *, attachment: str | None) -> web.StreamResponse:
    """Stream what a service opened, decrypting as it goes: 206 with Content-Range for a Range request."""
    reader, start, end = opened.reader, opened.start, opened.end
    partial = "Range" in request.headers
    response = web.StreamResponse(status=206 if partial else 200, headers={
        "Content-Type": opened.media_type, "Accept-Ranges": "bytes", "Content-Length": str(end - start),
        "Cache-Control": "private, no-store",
    })
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{reader.size}"
    if attachment is not None:
        response.headers["Content-Disposition"] = f'attachment; filename="{attachment}"'
    await response.prepare(request)
    position = start
    while position < end:
        step = min(end, position + READ_BYTES)
        try:
            data = await asyncio.to_thread(lambda a=position, b=step: b"".join(reader.read_range(a, b)))
        except TamperedRecording:
            break  # the headers are gone; cutting the body short tells the client something is wrong
        await response.write(data)
        position = step
    await response.write_eof()
    return response


def _byte_range(header: str | None, size: int) -> tuple[int, int]:
    """(start, end exclusive) for a Range header of one range, or the whole file."""
    if header is None:
        return 0, size
    match = _RANGE.match(header.strip())
    if match is None or not any(match.groups()):
        raise RangeNotSatisfiable("Only a single bytes=start-end range is supported.", size=size)
    first, last = match.groups()
    if first:
        start, end = int(first), (int(last) + 1 if last else size)
    else:  # bytes=-N: the last N bytes
        start, end = max(size - int(last), 0), size
    end = min(end, size)
    if start >= end:
        raise RangeNotSatisfiable(f"The range is outside the recording's {size} bytes.", size=size)
    return start, end
