"""Watching a recording: who is in it, a *viewing* (audited once, however many requests the player makes),
and each participant's own stream, cut from the recording without re-encoding (``media/remux.py``).

A viewing is a short-lived signed token naming the viewer, the recording and the viewing's id; opening one
is the access the audit trail records. The player's requests for each participant's stream (a browser
makes several, with byte ranges, to buffer and to seek) carry it and are not audited again; they are still
refused to anyone the rules refuse, and to anyone but the viewer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from media.errors import TamperedRecording
from media.remux import PartFormat, ensure_parts, part_format
from media.sealed import SealedReader

from .. import storage, zones
from ..audit import trail as audit
from ..db import Database
from ..errors import N_, NotFound, TokenExpired, Unauthenticated, Unavailable
from ..identity.tokens import AccessToken, KeyRing, TokenVerifier
from ..models import Recording, RecordingStatus
from ..parsing import Id
from ..permissions import Principal
from ..settings import DEFAULT_TIMEZONE
from .recordings import Playback, key_of, recordings_visible
from .service import ConsultationView

VIEWING_AUDIENCE = "telemed-recording-viewing"
VIEWING_TTL = 2 * 3600  # a viewing outlasts a paused 15-minute segment; after it, opening again is a new one
PLAYABLE = (RecordingStatus.READY, RecordingStatus.INTERRUPTED)
STREAMS_DIR = "streams/v1"  # under the recordings directory; derived, so safe to delete (rebuilt when played)


@dataclass(frozen=True)
class RecordedParticipant:
    """One participant's tracks in a recording, in the order the player shows them."""

    number: int  # its place in the recording's player, and in its stream's address
    participant_id: str | None  # None: an old recording recovered after a crash, which did not say whose
    name: str | None
    role: str | None  # "county_doctor", "specialist", "patient"
    streams: tuple[int, ...]  # indexes of its tracks in the recording's file
    kinds: tuple[str, ...]
    codecs: tuple[str, ...]

    @property
    def format(self) -> PartFormat:
        return part_format(self.codecs)

    @property
    def has_video(self) -> bool:
        return "video" in self.kinds


def participants_of(row: Recording) -> list[RecordedParticipant]:
    """Each participant's tracks, in the order they first appear in the file (the recorder keeps a
    participant's tracks together). Tracks are named by participant id; the names come from who was seated
    when the recording started. A recording recovered after a crash before tracks said whose they were has
    no ids: its tracks are grouped in file order, a new participant starting at a kind already taken."""
    tracks: list[dict[str, Any]] = json.loads(row.tracks)
    seated = {p.get("participant_id"): p for p in json.loads(row.participants)}
    groups: list[tuple[str | None, list[int]]] = []
    for index, track in enumerate(tracks):
        owner = track.get("participant_id") or None
        group = next((g for g in groups if owner is not None and g[0] == owner), None)
        if group is None and owner is None and groups and groups[-1][0] is None \
                and all(tracks[i].get("kind") != track.get("kind") for i in groups[-1][1]):
            group = groups[-1]
        if group is None:
            group = (owner, [])
            groups.append(group)
        group[1].append(index)
    result = []
    for number, (owner, indexes) in enumerate(groups):
        person = seated.get(owner, {}) if owner is not None else {}
        result.append(RecordedParticipant(
            number, owner, person.get("name"), person.get("role"), tuple(indexes),
            tuple(str(tracks[i].get("kind", "")) for i in indexes),
            tuple(str(tracks[i].get("codec", "")).lower() for i in indexes)))
    return result


# ---- viewing tokens: claims in, JWT out ----


@dataclass(frozen=True)
class ViewingClaims:
    viewing_id: str
    user_id: int
    recording_id: int


def viewing_token(keys: KeyRing, issuer: str, claims: ViewingClaims, *, ttl: int = VIEWING_TTL) -> str:
    return (AccessToken(issuer=issuer, audience=VIEWING_AUDIENCE, ttl=ttl)
            .with_identity(f"user:{claims.user_id}")
            .with_claims(viewing=claims.viewing_id, recording=claims.recording_id)
            .to_jwt(keys))


def verify_viewing(keys: KeyRing, issuer: str, token: str, *, now: float | None = None) -> ViewingClaims:
    """The viewing's claims; Unauthenticated if forged, of another audience, or expired."""
    try:
        payload = TokenVerifier(keys, issuer=issuer, audience=VIEWING_AUDIENCE).verify(token, now=now)
    except TokenExpired:
        raise Unauthenticated(N_("This viewing has expired: open the recording again."),
                              code="token-expired") from None
    subject, viewing, recording = payload.get("sub", ""), payload.get("viewing"), payload.get("recording")
    if not (isinstance(subject, str) and subject.startswith("user:") and subject[5:].isdigit()
            and isinstance(viewing, str) and isinstance(recording, int)):
        raise Unauthenticated("The viewing token lacks its viewer or recording.", code="token-invalid")
    return ViewingClaims(viewing, int(subject[5:]), recording)


# ---- the operations ----


@dataclass(frozen=True)
class Shelf:
    """A consultation's recordings as its page lists them."""

    consultation: ConsultationView
    recordings: list[tuple[Recording, list[RecordedParticipant]]]
    timezone: str  # of the viewer's hospital: times are shown as the viewer's wall clock shows them


@dataclass(frozen=True)
class Viewing:
    """A recording opened in the player for one viewer, already audited."""

    id: str
    token: str
    recording: Recording
    participants: list[RecordedParticipant]
    consultation: ConsultationView
    timezone: str


async def shelf(database: Database, who: Principal, consultation_id: int,
                fallback: str = DEFAULT_TIMEZONE) -> Shelf:
    """The consultation's recordings, oldest first, for its participants and auditors (listing opens no
    recording, so it is not audited)."""
    async with database.session() as session:
        view = await recordings_visible(session, who, consultation_id)
        rows = (await session.exec(select(Recording).where(Recording.consultation_id == consultation_id)
                                   .order_by(col(Recording.id)))).all()
        zone = await zones.reader_zone(session, who, fallback)
    return Shelf(view, [(row, participants_of(row)) for row in rows], zone)


async def open_viewing(database: Database, who: Principal, recording_id: Id, *, root: Path, key: bytes,
                       keys: KeyRing, issuer: str, fallback: str = DEFAULT_TIMEZONE) -> Viewing:
    """Open a finished recording in the player: one ``recording.viewed`` audit entry, written before any
    of it is sent, and a token for the player's stream requests. Nothing is audited if it is refused, not
    finished, or its file is missing or damaged."""
    async with database.session() as session:
        row = await session.get(Recording, recording_id)
        if row is None:
            raise NotFound(N_("No such recording."))
        view = await recordings_visible(session, who, row.consultation_id)
        zone = await zones.reader_zone(session, who, fallback)
        own = await key_of(session, row, key)
    if row.status not in PLAYABLE:
        raise Unavailable(N_("This recording is not finished yet."), code="recording-not-ready")
    await _open_sealed(root, row.file, own)
    participants = participants_of(row)
    viewing_id = secrets.token_urlsafe(9)
    await audit.record(database, actor=f"user:{who.user_id}", action="recording.viewed",
                       consultation_id=row.consultation_id, subject=f"recording:{row.id}",
                       detail={"viewing": viewing_id, "participants": len(participants)})
    token = viewing_token(keys, issuer, ViewingClaims(viewing_id, who.user_id, recording_id))
    return Viewing(viewing_id, token, row, participants, view, zone)


async def participant_stream(database: Database, who: Principal, recording_id: Id, number: int, token: str, *,
                             root: Path, key: bytes, keys: KeyRing, issuer: str,
                             span: Callable[[int], tuple[int, int]]) -> Playback:
    """One participant's audio and video of a recording, for the player of a viewing the caller opened:
    not audited again. The first request of any viewing splits the recording (once; ``media/remux.py``)."""
    claims = verify_viewing(keys, issuer, token)
    if claims.user_id != who.user_id or claims.recording_id != recording_id:
        raise Unauthenticated("This viewing is another person's, or of another recording.", code="token-invalid")
    async with database.session() as session:
        row = await session.get(Recording, recording_id)
        if row is None:
            raise NotFound(N_("No such recording."))
        await recordings_visible(session, who, row.consultation_id)
        own = await key_of(session, row, key)
    if row.status not in PLAYABLE:
        raise Unavailable(N_("This recording is not finished yet."), code="recording-not-ready")
    participants = participants_of(row)
    if not 0 <= number < len(participants):
        raise NotFound(N_("This recording has no such participant."))
    targets = [part_path(root, row, p) for p in participants]
    try:
        await asyncio.to_thread(ensure_parts, root / row.file, own, [p.streams for p in participants], targets)
    except OSError as exc:
        raise await storage.unreadable(root, exc, N_("The recording's file is missing on this server.")) from None
    except TamperedRecording:
        raise Unavailable(N_("The recording failed its integrity check."), code="recording-tampered") from None
    reader = await _open_sealed(root, targets[number].relative_to(root), own)
    start, end = span(reader.size)
    fmt = participants[number].format
    return Playback(row, reader, start, end, fmt.media_type, fmt.extension)


def part_path(root: Path, row: Recording, participant: RecordedParticipant) -> Path:
    """Where one participant's stream of a recording is kept, sealed like the recording."""
    return root / STREAMS_DIR / str(row.id) / f"{participant.number}.{participant.format.extension}.rec"


async def _open_sealed(root: Path, file: str | Path, key: bytes) -> SealedReader:
    """A sealed file under the recordings directory ``root``: 404 if it is missing, 503 if the directory's
    storage cannot be reached (``storage.unreadable``)."""
    try:
        return await asyncio.to_thread(SealedReader, root / file, key)
    except OSError as exc:
        raise await storage.unreadable(root, exc, N_("The recording's file is missing on this server.")) from None
    except TamperedRecording:
        raise Unavailable(N_("The recording failed its integrity check."), code="recording-tampered") from None

