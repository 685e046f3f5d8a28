"""REST: the bandwidth probe of the patient's device check. The check page downloads and uploads a known
number of bytes with the invitation link as credential and times them, to tell the patient whether their
link can carry video or an audio-only visit would serve them better. Bytes only: nothing is stored or
audited, and the answer proves nothing about the call itself."""

from __future__ import annotations

import os

import pydantic
from aiohttp import web

from ..errors import N_, PayloadTooLarge
from ..http import json_response, parse_body
from ..identity.auth import public
from ..openapi import accepts, answers, answers_media
from ..outputs import Out
from .visits import IDENTITY_FIELD, guest_pass

routes = web.RouteTableDef()

MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024  # enough to time a fast link for a moment, too little to be a burden
MAX_UPLOAD_BYTES = 512 * 1024  # of ``data``; the check sends about 256 KiB
# The rest of an upload's body: the link's token and the identity proof (4096 characters each at most) and
# the JSON around them.
_UPLOAD_OVERHEAD = 16 * 1024
# Incompressible, so that no proxy or encoding on the way can shrink what is timed; made once, sent to all.
# (What the probe sends is noise; a secret it is not.)
_NOISE = os.urandom(MAX_DOWNLOAD_BYTES)


class BandwidthDownload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    guest: str = pydantic.Field(min_length=1, max_length=4096, description="the invitation link's token")
    identity: str | None = IDENTITY_FIELD
    bytes: pydantic.StrictInt = pydantic.Field(ge=1, le=MAX_DOWNLOAD_BYTES,
                                               description="how many bytes to send back (at most 2 MiB)")


class BandwidthUpload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    guest: str = pydantic.Field(min_length=1, max_length=4096, description="the invitation link's token")
    identity: str | None = IDENTITY_FIELD
    data: str = pydantic.Field(max_length=MAX_UPLOAD_BYTES,
                               description="filler to be timed on its way up, ASCII (at most 512 KiB)")


class BandwidthReceived(Out):
    bytes: int = pydantic.Field(description="how many bytes of ``data`` arrived")


@routes.post("/api/guest/bandwidth/download")
@answers_media("application/octet-stream", description="``bytes`` random bytes, never cached or compressed.")
@public
@accepts(BandwidthDownload)
async def bandwidth_download(request: web.Request) -> web.Response:
    """The device check times this download: ``bytes`` of random data (at most 2 MiB; more is 422 naming
    ``bytes``), for a holder of an invitation link who has confirmed who they are."""
    body = await parse_body(request, BandwidthDownload)
    await guest_pass(request, body.guest, body.identity)
    # Sent as it is: 2 MiB is written to the socket without holding the event loop for long.
    return web.Response(body=memoryview(_NOISE)[:body.bytes], content_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})


@routes.post("/api/guest/bandwidth/upload")
@answers(BandwidthReceived)
@public
@accepts(BandwidthUpload)
async def bandwidth_upload(request: web.Request) -> web.Response:
    """The device check times this upload: ``data`` of up to 512 KiB, counted and dropped. A body larger than
    that allows is 413 ``too-large`` before it is read."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + _UPLOAD_OVERHEAD:
        raise PayloadTooLarge(N_("The bandwidth probe takes at most 512 KiB."), max_bytes=MAX_UPLOAD_BYTES)
    body = await parse_body(request, BandwidthUpload)
    await guest_pass(request, body.guest, body.identity)
    return json_response(BandwidthReceived(bytes=len(body.data.encode())))
