"""DICOM attachments drawn for the viewer: behind exactly the download's checks (the partner hospital only
with the patient's consent, nobody else), audited as a download, PNGs of the size the file says, and each
refusal a 422 with its own code."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, RECORDING_KEY, SETTINGS
from server.audit import trail as audit
from server.db import Database
from server.errors import Forbidden
from server.models import User
from server.permissions import Principal
from server.referrals import attachments

from ...conftest import login
from ...support.dicom import JPEG_DICOM_SYNTAX, PATIENT_NAME, dicom_file, gradient, png_pixels
from .test_attachments import PNG, _upload
from .test_referrals import create, ids


async def principal(database: Database, username: str) -> Principal:
    async with database.session() as session:
        user = (await session.exec(select(User).where(User.username == username))).one()
    assert user.id is not None
    return Principal(user.id, user.role, user.hospital_id)


async def attached(client: TestClient, data: bytes, name: str = "胸部 CT.dcm") -> tuple[dict, dict]:
    referral = await create(client, await ids(client))
    status, row = await _upload(client, referral["id"], data, name)
    assert status == 201, row
    return referral, row


def image_of(answer: dict) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert answer["image"].startswith(prefix)
    return png_pixels(base64.b64decode(answer["image"][len(prefix):]))


async def test_the_partner_sees_the_frame_windowed_and_it_is_audited(client: TestClient) -> None:
    """The partner hospital's coordinator, with the patient's consent, gets the 64×64 frame under the file's
    window (black left, white right, half grey at the centre) and its facts, and the viewing is audited."""
    _referral, row = await attached(client, dicom_file(window=(2048, 1024)))
    assert row["content_type"] == "application/dicom"
    response = await client.get(f"/api/attachments/{row['id']}/preview", headers=await login(client, "coord.zhao"))
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert (answer["width"], answer["height"], answer["frame"], answer["frames"]) == (64, 64, 0, 1)
    assert answer["window"] == {"center": 2048.0, "width": 1024.0, "source": "file"}
    assert (answer["modality"], answer["study_date"], answer["body_part"]) == ("CT", "2026-12-01", "CHEST")
    assert PATIENT_NAME not in await response.text() and "Zhang San" not in await response.text()
    pixels = image_of(answer)
    assert pixels.shape == (64, 64)
    assert pixels[0, 0] == 0 and pixels[0, 32] == 128 and pixels[0, 63] == 255
    previews = [e for e in await audit.trail(client.app[DATABASE]) if e.action == "attachment.previewed"]
    assert [json.loads(e.detail) for e in previews] == [{"attachment": row["id"], "frame": 0}]


async def test_a_frame_of_three(client: TestClient) -> None:
    """Each frame of a three-frame DICOM is drawn on its own, the brighter frames brighter, with its number and the
    count; asking for a fourth frame answers 422 saying which frames there are."""
    frames = np.stack([gradient() // 4 + 1000 * k for k in range(3)])
    _referral, row = await attached(client, dicom_file(frames, window=(1500, 3000)))
    headers = await login(client, "coord.zhao")
    answers = [await (await client.get(f"/api/attachments/{row['id']}/preview?frame={n}", headers=headers)).json()
               for n in range(3)]
    assert [(a["frame"], a["frames"]) for a in answers] == [(0, 3), (1, 3), (2, 3)]
    means = [float(image_of(a).mean()) for a in answers]
    assert means[0] < means[1] < means[2]
    past = await client.get(f"/api/attachments/{row['id']}/preview?frame=3", headers=headers)
    assert past.status == 422 and (await past.json())["error"]["fields"]["frame"] == "a frame from 0 to 2"


async def test_the_service_refuses_whoever_may_not_download(client: TestClient) -> None:
    """Another county hospital is refused; so is the partner once the patient withdraws their consent; the
    referring doctor still sees their own. Nothing refused is audited as viewed."""
    database = client.app[DATABASE]
    referral, row = await attached(client, dicom_file())
    where = {"root": client.app[SETTINGS].recordings_dir, "key": client.app[RECORDING_KEY]}
    with pytest.raises(Forbidden):
        await attachments.preview(database, await principal(database, "dr.chen"), row["id"], **where)
    consent = referral["sharing_consent"]["id"]
    await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))
    with pytest.raises(Forbidden) as withheld:
        await attachments.preview(database, await principal(database, "coord.zhao"), row["id"], **where)
    assert withheld.value.code == "records-withheld"
    assert not [e for e in await audit.trail(database) if e.action == "attachment.previewed"]
    own = await attachments.preview(database, await principal(database, "dr.li"), row["id"], **where)
    assert (own.width, own.height) == (64, 64)


async def test_the_api_answers_as_the_download_does(client: TestClient) -> None:
    """The same status for the same caller on the file and on its preview."""
    _referral, row = await attached(client, dicom_file())
    for username, status in (("dr.chen", 403), ("coord.zhao", 200), ("dr.li", 200), ("auditor", 403)):
        headers = await login(client, username)
        download = await client.get(row["url"], headers=headers)
        preview = await client.get(f"/api/attachments/{row['id']}/preview", headers=headers)
        assert (download.status, preview.status) == (status, status), username
    missing = await client.get("/api/attachments/9999/preview", headers=await login(client, "dr.li"))
    assert missing.status == 404


@pytest.mark.parametrize(("data", "name", "code"), [
    (dicom_file(syntax=JPEG_DICOM_SYNTAX), "jpeg.dcm", "dicom-compressed"),
    (bytes(128) + b"DICM" + bytes(64), "empty.dcm", "no-preview"),
    (PNG, "photo.png", "no-preview"),
])
async def test_what_cannot_be_drawn_is_a_422_with_its_code(client: TestClient, data: bytes, name: str,
                                                           code: str) -> None:
    """Each row, a file the viewer cannot draw: a JPEG-compressed DICOM answers 422 `dicom-compressed`; a DICOM with no
    image in it, or a PNG, answers 422 `no-preview`."""
    _referral, row = await attached(client, data, name)
    response = await client.get(f"/api/attachments/{row['id']}/preview", headers=await login(client, "dr.li"))
    assert response.status == 422 and (await response.json())["error"]["code"] == code


@pytest.mark.parametrize("frame", ["-1", "one", "１", "99999999", ""])
async def test_a_frame_that_is_not_a_whole_number_is_a_422(client: TestClient, frame: str) -> None:
    """Each row, a frame that is negative, a word, a full-width digit, empty or far past the last: the preview answers
    422 naming the `frame` field."""
    _referral, row = await attached(client, dicom_file())
    response = await client.get(f"/api/attachments/{row['id']}/preview?frame={frame}",
                                headers=await login(client, "dr.li"))
    assert response.status == 422 and "frame" in (await response.json())["error"]["fields"]


async def test_what_cannot_be_drawn_is_said_in_the_reader_s_language(client: TestClient) -> None:
    """A compressed DICOM's refusal is said in the reader's language (Chinese for zh-CN) and names the file's transfer
    syntax, so the doctor learns why it cannot be shown."""
    _referral, row = await attached(client, dicom_file(syntax=JPEG_DICOM_SYNTAX), "jpeg.dcm")
    headers = {**await login(client, "dr.li"), "Accept-Language": "zh-CN"}
    answer = await (await client.get(f"/api/attachments/{row['id']}/preview", headers=headers)).json()
    assert answer["error"]["message"].startswith("此 DICOM 影像的压缩格式无法在查看器中显示")
    assert answer["error"]["transfer_syntax"] == "1.2.840.10008.1.2.4.80"
