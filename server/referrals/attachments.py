"""Referral attachments: test results and images, checked by what their bytes are (not by what the
browser says they are), sealed on disk beside the recordings, each under a data key of its own
(``server/retention/data_keys.py``; files from before per-file keys stay under the recordings' key).

A file is written sealed to a temporary name and renamed into place before its row is committed; if the
commit fails the file is removed, so there is never a row without a file nor a file without a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from media.sealed import SealedReader, SealedWriter

from .. import storage
from ..audit import trail as audit
from ..db import Database
from ..errors import N_, BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from ..models import Attachment, ReferralState
from ..outputs import Instant, Out
from ..permissions import Principal, can_attach, require
from ..retention import data_keys
from . import dicom
from . import service as referrals

ATTACHMENTS_DIR = "attachments"
SNIFF_BYTES = 132  # enough for a DICOM file's preamble and magic


@dataclass(frozen=True)
class Kind:
    content_type: str
    extension: str


def sniff(head: bytes) -> Kind | None:
    """What a file is, from its first bytes: PDF, PNG, JPEG, WebP or DICOM (the formats of results and images)."""
    if head.startswith(b"%PDF-"):
        return Kind("application/pdf", "pdf")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind("image/png", "png")
    if head.startswith(b"\xff\xd8\xff"):
        return Kind("image/jpeg", "jpg")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Kind("image/webp", "webp")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Kind("application/dicom", "dcm")
    return None


def safe_filename(name: str) -> str:
    """The name as the user gave it, without any path, control characters or quotes (for Content-Disposition).
    Some clients percent-encode non-ASCII names (aiohttp does; browsers send UTF-8): decode first."""
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '"<>|:*?').strip()
    return cleaned[:200] or "attachment"


class SealedUpload:
    """Receives an upload chunk by chunk: checks its type on the first bytes and its size as it grows."""

    def __init__(self, directory: Path, key: bytes, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.name = f"{secrets.token_hex(12)}.sealed"
        self.path = directory / self.name
        self._temp = directory / f".{self.name}.part"
        self._writer = SealedWriter(self._temp, key)
        self._head = b""
        self._digest = hashlib.sha256()
        self.size, self.max_bytes, self.kind = 0, max_bytes, None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(N_("The file is larger than the hospital allows for an attachment."),
                                  max_bytes=self.max_bytes)
        if self.kind is None and len(self._head) < SNIFF_BYTES:
            self._head += chunk[:SNIFF_BYTES - len(self._head)]
        self._digest.update(chunk)
        self._writer.write(chunk)

    def finish(self) -> tuple[Kind, str]:
        """Close the file and move it into place; (kind, SHA-256). Refuses a type that is not allowed."""
        kind = sniff(self._head)
        if kind is None:
            raise UnsupportedMediaType(N_("Attach PDF reports or PNG, JPEG, WebP or DICOM images."))
        if self.size == 0:
            raise UnsupportedMediaType(N_("The file is empty."))
        self._writer.close()
        os.replace(self._temp, self.path)
        return kind, self._digest.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # already failing: the partial file goes below anyway
            self._writer.close()
        self._temp.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


CLOSED = (ReferralState.COMPLETED, ReferralState.CANCELLED, ReferralState.DECLINED)
# Reads the upload when asked: after the caller is known to be allowed, not before.
UploadReader = Callable[[], Awaitable[tuple[str, AsyncIterator[bytes]]]]


class AttachmentShown(Out):
    """An attachment of a referral: ``url`` downloads it, until its retention ends (``purged_at``; the url
    answers 404 from then on)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: int
    uploaded_at: Instant
    url: str
    purged_at: Instant | None


class AttachmentList(Out):
    attachments: list[AttachmentShown]


def describe(row: Attachment) -> AttachmentShown:
    assert row.id is not None
    return AttachmentShown(id=row.id, filename=row.filename, content_type=row.content_type, size=row.size,
                           sha256=row.sha256, uploaded_by=row.uploaded_by, uploaded_at=row.uploaded_at,
                           url=f"/api/attachments/{row.id}", purged_at=row.purged_at)


async def list_for(session: AsyncSession, who: Principal, referral_id: int) -> Sequence[Attachment]:
    """A referral's attachments, oldest first, for whoever sees its patient's records (403 otherwise)."""
    await referrals.load_with_records(session, who, referral_id)
    return (await session.exec(select(Attachment).where(Attachment.referral_id == referral_id)
                               .order_by(col(Attachment.id)))).all()


async def _allowed(database: Database, who: Principal, attachment_id: int) -> Attachment:
    """The one gate to an attachment, for downloads and previews alike: 404 if there is none, 403 for whoever
    does not see its referral's records."""
    async with database.session() as session:
        row = await session.get(Attachment, attachment_id)
        if row is None:
            raise NotFound(N_("There is no such attachment."))
        await referrals.load_with_records(session, who, row.referral_id)
    return row


async def _read(database: Database, who: Principal, row: Attachment, *, root: Path, key: bytes, action: str,
                **detail: int) -> bytes:
    """The file decrypted in memory (nothing is written in clear) with its own key, and the audit entry saying
    who read it; 404 once its retention period ended and it was purged (its key is gone with it)."""
    async with database.session() as session:
        try:
            if row.purged_at is not None:
                raise data_keys.KeyShredded(row.id)
            own = await data_keys.key_of(session, key, row.data_key_id)
        except data_keys.KeyShredded:
            raise NotFound(N_("This attachment was deleted when its retention period ended.")) from None
    try:
        data = await asyncio.to_thread(lambda: SealedReader(root / row.file, own).read_all())
    except OSError as exc:
        raise await storage.unreadable(root, exc, N_("This attachment's file is missing on this server.")) from None
    await audit.record(database, actor=f"user:{who.user_id}", action=action,
                       subject=f"referral:{row.referral_id}", detail={"attachment": row.id, **detail})
    return data


async def download(database: Database, who: Principal, attachment_id: int, *, root: Path,
                   key: bytes) -> tuple[Attachment, bytes]:
    """An attachment and its bytes, decrypted, for whoever sees its referral's records (403 otherwise); every
    download goes into the audit trail."""
    row = await _allowed(database, who, attachment_id)
    return row, await _read(database, who, row, root=root, key=key, action="attachment.downloaded")


async def preview(database: Database, who: Principal, attachment_id: int, *, frame: int = 0, root: Path,
                  key: bytes) -> dicom.Rendering:
    """A DICOM attachment's frame drawn as PNG, with the facts the specialist reads it by (never the patient's
    name or ID from the file), for whoever may download it (the same checks), audited as a download is.
    Drawn in memory and cached nowhere: the file stays sealed at rest. 422 ``no-preview`` for another type."""
    row = await _allowed(database, who, attachment_id)
    if row.content_type != "application/dicom":
        raise dicom.NoPreview(N_("Only DICOM images have a preview; open the file itself."))
    data = await _read(database, who, row, root=root, key=key, action="attachment.previewed", frame=frame)
    return await asyncio.to_thread(dicom.render, data, frame)


def upload_filename(raw: str) -> str:
    """The name to keep for an uploaded file: 422 if it is a path or holds control characters (a NUL cuts a
    name short in C; a path means the client sent something no browser does), else ``safe_filename``'s."""
    name = unquote(raw)  # as safe_filename reads it: some clients percent-encode names
    if "/" in name or "\\" in name:
        raise ValidationFailed({"file": N_("a file name without a path (no / or \\)")})
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValidationFailed({"file": N_("a file name without control characters (such as NUL)")})
    return safe_filename(raw)


async def attach(database: Database, who: Principal, referral_id: int, read: UploadReader, *, root: Path,
                 key: bytes, max_bytes: int) -> Attachment:
    """The one way in for an attachment, from the API and the referral page alike: the referring doctor adds
    a file to an open referral; it is sealed on disk and its row committed with its audit entry, or neither."""
    async with database.session() as session:
        referral = await referrals.load_with_records(session, who, referral_id)
    require(can_attach(who, referrals.scope_of(referral, None)), N_("Only the referring doctor adds attachments."))
    if referral.state in CLOSED:
        raise BadRequest(N_("This referral is closed; nothing more can be attached."), code="referral-closed")
    await storage.ensure_usable(root)
    raw_name, chunks = await read()
    filename = upload_filename(raw_name)
    own = data_keys.new_key()
    upload = SealedUpload(root / ATTACHMENTS_DIR / str(referral.id), own, max_bytes)
    try:
        async for chunk in chunks:
            await asyncio.to_thread(upload.write, chunk)
        kind, digest = await asyncio.to_thread(upload.finish)
        row = Attachment(referral_id=referral.id, file=f"{ATTACHMENTS_DIR}/{referral.id}/{upload.name}",
                         filename=filename, content_type=kind.content_type, size=upload.size,
                         sha256=digest, uploaded_by=who.user_id)
        async with database.session() as session:
            row.data_key_id = await data_keys.keep(session, key, own)
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
