"""REST: recording consent, the list of a consultation's recordings, and playback with range requests."""

from __future__ import annotations

import asyncio
import json
import re

import pydantic
from aiohttp import web
from sqlmodel import col, select

from media.errors import TamperedRecording
from media.recorder import container_format
from media.sealed import SealedReader

from ..appkeys import DATABASE, RECORDING_KEY, ROOMS, SETTINGS
from ..audit import trail as audit
from ..consent import records as consents
from ..consent.records import Consenter, How, Scope
from ..errors import N_, NotFound, RangeNotSatisfiable, Unavailable
from ..http import json_response, locale_for, parse_body, path_id
from ..identity.auth import caller, public
from ..models import ConsentPurpose, ConsentSubject, Recording, RecordingStatus
from ..openapi import accepts
from ..parsing import Id
from ..permissions import can_access_recordings, can_join_consultation
from .consultations import authorize, load_authorized
from .visits import guest_pass

routes = web.RouteTableDef()

READ_BYTES = 1024 * 1024  # decrypted per step while streaming a response
# ASCII digits only (\d takes other scripts' digits), and few enough that int() is quick and never refuses.
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})$")


class ConsentAnswer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    given: pydantic.StrictBool  # a consent is a record: "yes" or 1 is not an answer
    template_id: Id | None = None  # the text shown; the current one if left out


class GuestConsentAnswer(ConsentAnswer):
    guest: str = pydantic.Field(min_length=1, max_length=4096)


@routes.post("/api/consultations/{consultation_id}/recording-consent")
@accepts(ConsentAnswer)
async def clinician_recording_consent(request: web.Request) -> web.Response:
    """A participating clinician gives or withdraws consent to being recorded in this consultation."""
    view = await load_authorized(request, can_join_consultation)
    body = await parse_body(request, ConsentAnswer)
    user = caller(request).user
    assert view.consultation.id is not None
    consenter = Consenter(ConsentSubject.PARTICIPANT, f"user:{user.id}", user.display_name, user_id=user.id)
    return await _answer(request, view.consultation.id, consenter, body)


@routes.post("/api/guest/recording-consent")
@public
@accepts(GuestConsentAnswer)
async def guest_recording_consent(request: web.Request) -> web.Response:
    """A patient invited by link gives or withdraws consent (the link's token is the credential)."""
    body = await parse_body(request, GuestConsentAnswer)
    visit = await guest_pass(request, body.guest)
    assert visit.consultation.id is not None
    return await _answer(request, visit.consultation.id, visit.consenter, body)


async def _answer(request: web.Request, consultation_id: int, consenter: Consenter,
                  body: ConsentAnswer) -> web.Response:
    scope = Scope(consultation_id=consultation_id)
    if body.given:
        consent, _ = await consents.give_clicked(request.app[DATABASE], request.app[ROOMS], ConsentPurpose.RECORDING,
                                                 consenter, scope, body.template_id, locale=locale_for(request),
                                                 how=How.clicked(request))
        return json_response({"id": consent.id, "given": True, "at": consent.given_at.isoformat()}, status=201)
    withdrawn = await consents.withdraw_own(request.app[DATABASE], request.app[ROOMS], ConsentPurpose.RECORDING,
                                            consenter, scope)
    if withdrawn is None or withdrawn.withdrawn_at is None:
        return json_response({"id": None, "given": False, "at": None})  # nothing stood: nothing to withdraw
    return json_response({"id": withdrawn.id, "given": False, "at": withdrawn.withdrawn_at.isoformat()})


def _media_type(row: Recording) -> tuple[str, str]:
    """(Content-Type, file extension): WebM for VP8 rooms, Matroska when a track is H.264."""
    codecs = {str(track.get("codec", "")).lower() for track in json.loads(row.tracks)}
    if container_format(codecs) == "matroska":
        return "video/x-matroska", "mkv"
    return "video/webm", "webm"


def _recording_json(row: Recording) -> dict[str, object]:
    return {
        "id": row.id, "status": row.status.value, "started_at": row.started_at.isoformat(),
        "ended_at": row.ended_at.isoformat() if row.ended_at else None, "duration": row.duration, "size": row.size,
        "sha256": row.sha256, "tracks": json.loads(row.tracks), "participants": json.loads(row.participants),
        "consent_ids": json.loads(row.consent_ids), "media_url": f"/api/recordings/{row.id}/media",
        "media_type": _media_type(row)[0],
    }


@routes.get("/api/consultations/{consultation_id}/recordings")
async def list_recordings(request: web.Request) -> web.Response:
    view = await load_authorized(request, can_access_recordings)
    async with request.app[DATABASE].session() as session:
        rows = (await session.exec(select(Recording).where(Recording.consultation_id == view.consultation.id)
                                   .order_by(col(Recording.id)))).all()
    return json_response({"recordings": [_recording_json(r) for r in rows]})


@routes.get("/api/recordings/{recording_id}/media")
async def recording_media(request: web.Request) -> web.StreamResponse:
    """The recording as WebM or Matroska, decrypted as it is sent; honours one byte range so players can seek."""
    async with request.app[DATABASE].session() as session:
        row = await session.get(Recording, path_id(request, "recording_id"))
    if row is None:
        raise NotFound(N_("No such recording."))
    await authorize(request, row.consultation_id, can_access_recordings)
    if row.status not in (RecordingStatus.READY, RecordingStatus.INTERRUPTED):
        raise Unavailable(N_("This recording is not finished yet."), code="recording-not-ready")
    path = request.app[SETTINGS].recordings_dir / row.file
    try:
        reader = await asyncio.to_thread(SealedReader, path, request.app[RECORDING_KEY])
    except FileNotFoundError:
        raise NotFound(N_("The recording's file is missing on this server.")) from None
    except TamperedRecording:
        raise Unavailable(N_("The recording failed its integrity check."), code="recording-tampered") from None
    start, end = _byte_range(request.headers.get("Range"), reader.size)
    download = request.query.get("download") == "1"
    await audit.record(request.app[DATABASE], actor=f"user:{caller(request).user.id}",
                       action="recording.downloaded" if download else "recording.viewed",
                       consultation_id=row.consultation_id, subject=f"recording:{row.id}",
                       detail={"range": [start, end]})
    partial = "Range" in request.headers
    media_type, extension = _media_type(row)
    response = web.StreamResponse(status=206 if partial else 200, headers={
        "Content-Type": media_type, "Accept-Ranges": "bytes", "Content-Length": str(end - start),
        "Cache-Control": "private, no-store",
    })
    if partial:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{reader.size}"
    if download:
        name = f"consultation-{row.consultation_id}-recording-{row.id}.{extension}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
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
