"""REST: attachments of a referral. The referring doctor adds them; those who see the referral's records
list and download them (each download audited)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web
from sqlmodel import col, select

from media.sealed import SealedReader

from ..appkeys import DATABASE, RECORDING_KEY, SETTINGS
from ..audit import trail as audit
from ..errors import N_, NotFound
from ..http import file_upload, json_response, path_id
from ..identity.auth import caller
from ..models import Attachment, Referral
from ..referrals import attachments
from ..referrals import service as referrals
from .referrals import referral_id

routes = web.RouteTableDef()


async def visible_referral(request: web.Request, number: int) -> Referral:
    """The referral, if the caller sees it and its patient's records (403 otherwise)."""
    async with request.app[DATABASE].session() as session:
        return await referrals.load_with_records(session, caller(request).principal, number)


async def receive(request: web.Request, number: int) -> Attachment:
    """Store the one file of a multipart upload (field ``file``) as an attachment of the referral."""
    settings = request.app[SETTINGS]
    return await attachments.attach(request.app[DATABASE], caller(request).principal, number,
                                    lambda: file_upload(request), root=settings.recordings_dir,
                                    key=request.app[RECORDING_KEY], max_bytes=settings.attachment_max_bytes)


@routes.post("/api/referrals/{referral_id}/attachments")
async def add_attachment(request: web.Request) -> web.Response:
    """Attach a test result or image (PDF, PNG, JPEG or DICOM, as ``multipart/form-data`` field ``file``),
    checked by its content, up to TELEMED_ATTACHMENT_MAX_BYTES; 413 if larger, 415 if another type."""
    return json_response(attachments.describe(await receive(request, referral_id(request))), status=201)


@routes.get("/api/referrals/{referral_id}/attachments")
async def list_attachments(request: web.Request) -> web.Response:
    referral = await visible_referral(request, referral_id(request))
    async with request.app[DATABASE].session() as session:
        rows = (await session.exec(select(Attachment).where(Attachment.referral_id == referral.id)
                                   .order_by(col(Attachment.id)))).all()
    return json_response({"attachments": [attachments.describe(row) for row in rows]})


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

