"""REST: attachments of a referral. The referring doctor adds them; those who see the referral's records
list and download them (each download audited)."""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from sqlmodel import col, select

from media.sealed import SealedReader

from .. import audit
from ..appkeys import DATABASE, RECORDING_KEY, SETTINGS
from ..attachments import ATTACHMENTS_DIR, SealedUpload, safe_filename
from ..auth import caller
from ..errors import N_, BadRequest, NotFound, ValidationFailed
from ..http import json_response, path_id
from ..models import Attachment, Referral, ReferralState
from ..permissions import can_attach, require
from ..referrals import service as referrals
from .referrals import referral_id

routes = web.RouteTableDef()
CLOSED = (ReferralState.COMPLETED, ReferralState.CANCELLED, ReferralState.DECLINED)


def describe(row: Attachment) -> dict:
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size,
            "sha256": row.sha256, "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at.isoformat(),
            "url": f"/api/attachments/{row.id}"}


async def visible_referral(request: web.Request, number: int) -> Referral:
    """The referral, if the caller sees it and its patient's records (403 otherwise)."""
    async with request.app[DATABASE].session() as session:
        return await referrals.load_with_records(session, caller(request).principal, number)


def upload_filename(raw: str) -> str:
    """The name to keep for an uploaded file: 422 if it is a path or holds control characters (a NUL cuts a
    name short in C; a path means the client sent something no browser does), else ``safe_filename``'s."""
    name = unquote(raw)  # as safe_filename reads it: some clients percent-encode names
    if "/" in name or "\\" in name:
        raise ValidationFailed({"file": "a file name without a path (no / or \\)"})
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValidationFailed({"file": "a file name without control characters (such as NUL)"})
    return safe_filename(raw)


@contextlib.contextmanager
def _malformed_upload() -> Iterator[None]:
    """aiohttp's multipart reader says a body is malformed with ValueError or a 400 HttpProcessingError."""
    try:
        yield
    except (ValueError, HttpProcessingError):
        raise BadRequest(N_("The upload is not a well-formed multipart/form-data body."),
                         code="bad-upload") from None


async def _file_part(request: web.Request) -> tuple[BodyPartReader, str]:
    """The part named ``file`` of a multipart body, and the name to keep for it."""
    if not request.content_type.startswith("multipart/form-data"):  # error_middleware checked the boundary
        raise BadRequest(N_("Send the file as multipart/form-data, in a field named file."), code="bad-upload")
    with _malformed_upload():
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and not (isinstance(part, BodyPartReader) and part.name == "file"):
            part = await reader.next()
    if part is None or not isinstance(part, BodyPartReader) or not part.filename:
        raise BadRequest(N_("Send the file as multipart/form-data, in a field named file."), code="bad-upload")
    return part, upload_filename(part.filename)


async def _chunk(part: BodyPartReader) -> bytes:
    with _malformed_upload():
        chunk = await part.read_chunk(256 * 1024)
    if not chunk and not part.at_eof():  # the body stopped before the part's closing boundary
        raise BadRequest(N_("The upload ended before the file did; send it again."), code="upload-cut-short")
    return chunk


async def receive(request: web.Request, number: int) -> Attachment:
    """Store the one file of a multipart upload (field ``file``) as an attachment of the referral."""
    referral = await visible_referral(request, number)
    who = caller(request).principal
    require(can_attach(who, referrals.scope_of(referral, None)), N_("Only the referring doctor adds attachments."))
    if referral.state in CLOSED:
        raise BadRequest(N_("This referral is closed; nothing more can be attached."), code="referral-closed")
    part, filename = await _file_part(request)
    settings = request.app[SETTINGS]
    upload = SealedUpload(settings.recordings_dir / ATTACHMENTS_DIR / str(referral.id), request.app[RECORDING_KEY],
                          settings.attachment_max_bytes)
    try:
        while chunk := await _chunk(part):
            await asyncio.to_thread(upload.write, chunk)
        kind, digest = await asyncio.to_thread(upload.finish)
        row = Attachment(referral_id=referral.id, file=f"{ATTACHMENTS_DIR}/{referral.id}/{upload.name}",
                         filename=filename, content_type=kind.content_type, size=upload.size,
                         sha256=digest, uploaded_by=who.user_id)
        async with request.app[DATABASE].session() as session:
            session.add(row)
            audit.with_commit(session, lambda: audit.Entry(
                f"user:{who.user_id}", "attachment.added", subject=f"referral:{referral.id}",
                detail={"attachment": row.id, "type": row.content_type, "size": row.size, "sha256": digest}))
            await session.commit()
            await session.refresh(row)
    except (Exception, asyncio.CancelledError):
        await asyncio.to_thread(upload.discard)  # no file without its row, however the upload ended
        raise
    return row


@routes.post("/api/referrals/{referral_id}/attachments")
async def add_attachment(request: web.Request) -> web.Response:
    """Attach a test result or image (PDF, PNG, JPEG or DICOM, as ``multipart/form-data`` field ``file``),
    checked by its content, up to TELEMED_ATTACHMENT_MAX_BYTES; 413 if larger, 415 if another type."""
    return json_response(describe(await receive(request, referral_id(request))), status=201)


@routes.get("/api/referrals/{referral_id}/attachments")
async def list_attachments(request: web.Request) -> web.Response:
    referral = await visible_referral(request, referral_id(request))
    async with request.app[DATABASE].session() as session:
        rows = (await session.exec(select(Attachment).where(Attachment.referral_id == referral.id)
                                   .order_by(col(Attachment.id)))).all()
    return json_response({"attachments": [describe(row) for row in rows]})


@routes.get("/api/attachments/{attachment_id}")
async def download_attachment(request: web.Request) -> web.Response:
    """The file, decrypted, to those who see the referral's records; every download is audited."""
    async with request.app[DATABASE].session() as session:
        row = await session.get(Attachment, path_id(request, "attachment_id"))
    if row is None:
        raise NotFound(N_("There is no such attachment."))
    await visible_referral(request, row.referral_id)
    path = request.app[SETTINGS].recordings_dir / row.file
    data = await asyncio.to_thread(lambda: SealedReader(path, request.app[RECORDING_KEY]).read_all())
    await audit.record(request.app[DATABASE], actor=f"user:{caller(request).user.id}", action="attachment.downloaded",
                       subject=f"referral:{row.referral_id}", detail={"attachment": row.id})
    disposition = "inline" if row.content_type in ("application/pdf", "image/png", "image/jpeg") else "attachment"
    plain = row.filename.encode("ascii", "replace").decode().replace("?", "_")  # Chinese names go in filename*
    return web.Response(body=data, content_type=row.content_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(row.filename)}",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"})

