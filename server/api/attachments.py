"""REST: attachments of a referral. The referring doctor adds them; those who see the referral's records
list and download them (each download audited)."""

from __future__ import annotations

from urllib.parse import quote

import pydantic
from aiohttp import web

from ..appkeys import DATABASE, RECORDING_KEY, SETTINGS
from ..errors import ValidationFailed
from ..http import file_upload, json_response, path_id, translator
from ..identity.auth import caller
from ..models import Attachment
from ..openapi import accepts_upload, answers, answers_media, queries
from ..parsing import parse_whole
from ..referrals import attachments, dicom
from .referrals import referral_id

routes = web.RouteTableDef()


# The query of an attachment's preview. (No docstring: see reports.Icd10Query.)
class PreviewQuery(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    frame: int = pydantic.Field(default=0, ge=0, description="which frame of a multi-frame DICOM image")
INLINE = ("application/pdf", "image/png", "image/jpeg", "image/webp")
MAX_FRAME = 65_535
# The file alone, sandboxed: whatever it holds runs nothing here. Framed only by our own pages, where the
# attachment viewer shows PDFs (the pages' own policy allows same-origin frames through default-src 'self').
ATTACHMENT_POLICY = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"


async def receive(request: web.Request, number: int) -> Attachment:
    """Store the one file of a multipart upload (field ``file``) as an attachment of the referral."""
    settings = request.app[SETTINGS]
    return await attachments.attach(request.app[DATABASE], caller(request).principal, number,
                                    lambda: file_upload(request), root=settings.recordings_dir,
                                    key=request.app[RECORDING_KEY], max_bytes=settings.attachment_max_bytes)


@routes.post("/api/referrals/{referral_id}/attachments")
@accepts_upload()
@answers(attachments.AttachmentShown, status=201, description="The attachment, stored.")
async def add_attachment(request: web.Request) -> web.Response:
    """Attach a test result or image (PDF, PNG, JPEG, WebP or DICOM, as ``multipart/form-data`` field ``file``),
    checked by its content, up to TELEMED_ATTACHMENT_MAX_BYTES; 413 if larger, 415 if another type."""
    return json_response(attachments.describe(await receive(request, referral_id(request))), status=201)


@routes.get("/api/referrals/{referral_id}/attachments")
@answers(attachments.AttachmentList)
async def list_attachments(request: web.Request) -> web.Response:
    async with request.app[DATABASE].session() as session:
        rows = await attachments.list_for(session, caller(request).principal, referral_id(request))
    return json_response(attachments.AttachmentList(attachments=[attachments.describe(row) for row in rows]))


@routes.get("/api/attachments/{attachment_id}")
@answers_media("application/pdf", description="The file as uploaded.")
@answers_media("image/png", description="The file as uploaded.")
@answers_media("image/jpeg", description="The file as uploaded.")
@answers_media("image/webp", description="The file as uploaded.")
@answers_media("application/dicom", description="The file as uploaded.")
async def download_attachment(request: web.Request) -> web.Response:
    """The file, decrypted, to those who see the referral's records; every download is audited."""
    row, data = await attachments.download(request.app[DATABASE], caller(request).principal,
                                           path_id(request, "attachment_id"),
                                           root=request.app[SETTINGS].recordings_dir, key=request.app[RECORDING_KEY])
    disposition = "inline" if row.content_type in INLINE else "attachment"
    plain = row.filename.encode("ascii", "replace").decode().replace("?", "_")  # Chinese names go in filename*
    return web.Response(body=data, content_type=row.content_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(row.filename)}",
        "Content-Security-Policy": ATTACHMENT_POLICY})


@routes.get("/api/attachments/{attachment_id}/preview")
@queries(PreviewQuery)
@answers(dicom.DicomPreview)
async def preview_attachment(request: web.Request) -> web.Response:
    """A DICOM attachment's frame (``frame``, from 0) drawn as PNG, with the facts to read it by.

    JSON: ``width``, ``height``, ``frame``, ``frames``, ``window`` (``center``, ``width``, ``source``: ``file``
    or ``min-max``; null for colour), ``modality``, ``study_date``, ``body_part``, ``series_description`` when
    the file has them (never the patient's name or ID), and ``image``, the PNG as a ``data:`` URL. For those
    who may download the file, audited as a download; 422 ``no-preview`` for a file that is not DICOM or
    holds no image, 422 ``dicom-compressed`` for a compression the server cannot decode."""
    frame = parse_whole(request.query.get("frame", "0"), 0, MAX_FRAME)
    if frame is None:
        raise ValidationFailed({"frame": f"a whole number from 0 to {MAX_FRAME}"})
    try:
        rendering = await attachments.preview(request.app[DATABASE], caller(request).principal,
                                              path_id(request, "attachment_id"), frame=frame,
                                              root=request.app[SETTINGS].recordings_dir,
                                              key=request.app[RECORDING_KEY])
    except (dicom.NoPreview, dicom.DicomCompressed) as refused:
        # Said in the reader's language: a person reads this one, beside the file they wanted to see.
        refused.message = translator(request)(refused.message)
        raise
    return json_response(rendering.shown())

