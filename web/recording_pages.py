"""The recordings pages: a consultation's recordings, and the player that shows every participant side by
side under one clock. Who may see them, and the one audit entry of each viewing, are in
``server/consultations/playback.py``."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from server.appkeys import DATABASE, KEYS, RECORDING_KEY, SETTINGS
from server.consultations import playback
from server.consultations.playback import RecordedParticipant
from server.consultations.service import ConsultationView
from server.errors import N_
from server.http import path_id, translator
from server.identity.auth import caller
from server.models import Recording, RecordingStatus
from server.permissions import can_join_consultation
from server.retention import holds

from .clock import zoned
from .render import RENDERER

routes = web.RouteTableDef()

RECORDING_STATUS_LABELS = {
    RecordingStatus.RECORDING: N_("Still recording"),
    RecordingStatus.READY: N_("Ready"),
    RecordingStatus.INTERRUPTED: N_("Cut short by a server restart; what was saved plays"),
    RecordingStatus.FAILED: N_("Failed; nothing was saved"),
}
ROLE_LABELS = {
    "county_doctor": N_("County doctor"),
    "specialist": N_("Specialist"),
    "patient": N_("Patient"),
}


def clock(seconds: float | None) -> str:
    """A duration as a player shows it: 4:05, or 1:02:03 past an hour."""
    if seconds is None:
        return "–"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def participant_label(request: web.Request, participant: RecordedParticipant) -> dict[str, str]:
    """The name under a participant's video, and their role, in the caller's language."""
    _ = translator(request)
    name = participant.name or _(N_("Participant %(number)s")) % {"number": participant.number + 1}
    role = _(ROLE_LABELS[participant.role]) if participant.role in ROLE_LABELS else ""
    return {"name": name, "role": role}


def _consultation_title(request: web.Request, view: ConsultationView) -> str:
    return view.title or translator(request)(N_("Consultation #%(number)s")) % {"number": view.consultation.id}


@routes.get("/consultations/{consultation_id}/recordings", name="consultation_recordings")
async def recordings_page(request: web.Request) -> web.Response:
    who = caller(request).principal
    shelf = await playback.shelf(request.app[DATABASE], who, path_id(request, "consultation_id"),
                                 request.app[SETTINGS].default_timezone)
    _ = translator(request)
    rows = [{
        "id": row.id,
        "started": zoned(row.started_at, shelf.timezone),
        "started_iso": row.started_at.isoformat(),
        "duration": clock(row.duration),
        "participants": [participant_label(request, p) for p in participants],
        "status": row.status.value,
        "status_label": _(N_("Deleted at the end of its retention period")) if row.purged_at is not None
        else _(RECORDING_STATUS_LABELS[row.status]),
        "playable": row.status in playback.PLAYABLE and row.purged_at is None,
        "download": _download_url(row),
    } for row, participants in shelf.recordings]
    view = shelf.consultation
    async with request.app[DATABASE].session() as session:
        held = await holds.standing_on(session, patient_id=view.consultation.patient_id,
                                       consultation_id=view.consultation.id)
    return request.app[RENDERER].render(request, "recordings.html", {
        "held_since": zoned(min(h.placed_at for h in held), shelf.timezone) if held else None,
        "title": _consultation_title(request, view), "consultation_id": view.consultation.id,
        "hospital": view.hospital.name, "recordings": rows,
        "may_join": can_join_consultation(who, view.scope),
    })


@routes.get("/recordings/{recording_id}", name="recording_player")
async def player_page(request: web.Request) -> web.Response:
    """Opening this page is the viewing: audited once, whatever the player then asks for."""
    settings = request.app[SETTINGS]
    viewing = await playback.open_viewing(request.app[DATABASE], caller(request).principal,
                                          path_id(request, "recording_id"), root=settings.recordings_dir,
                                          key=request.app[RECORDING_KEY], keys=request.app[KEYS],
                                          issuer=settings.jwt_issuer, fallback=settings.default_timezone)
    row = viewing.recording
    tiles = [{
        **participant_label(request, p), "number": p.number, "has_video": p.has_video,
        "media_type": p.format.media_type,
        "src": f"/api/recordings/{row.id}/participants/{p.number}/media?" + urlencode({"viewing": viewing.token}),
    } for p in viewing.participants]
    return request.app[RENDERER].render(request, "recording_player.html", {
        "title": _consultation_title(request, viewing.consultation),
        "consultation_id": row.consultation_id, "recording": row, "tiles": tiles,
        "started": zoned(row.started_at, viewing.timezone),
        "duration": clock(row.duration), "download": _download_url(row),
        "config": {"duration": row.duration or 0, "viewing": viewing.id},
    })


def _download_url(row: Recording) -> str:
    return f"/api/recordings/{row.id}/media?download=1"
