"""Referral attachments: checked by content, limited in size, sealed at rest, shown only with the patient's
consent to sharing, and never half-written."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from server.appkeys import DATABASE, SETTINGS
from server.audit import trail as audit
from server.http import MAX_JSON_BODY
from server.models import Attachment
from server.referrals.attachments import sniff

from ...conftest import _start, login
from .test_referrals import create, ids

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
PDF = b"%PDF-1.7\n" + "心电图报告 ECG report".encode() + bytes(100)
DICOM = bytes(128) + b"DICM" + bytes(64)


def test_types_are_told_by_their_bytes() -> None:
    """A file's type is told by its first bytes: PNG, PDF, JPEG, DICOM and WebP are recognised; a RIFF that is not WebP,
    an executable and HTML are not."""
    assert sniff(PNG).content_type == "image/png" and sniff(PDF).content_type == "application/pdf"
    assert sniff(b"\xff\xd8\xff\xe0" + bytes(10)).content_type == "image/jpeg"
    assert sniff(DICOM).content_type == "application/dicom"
    assert sniff(b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20)).content_type == "image/webp"
    assert sniff(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20)) is None, "RIFF alone is not enough"
    assert sniff(b"MZ\x90\x00 an executable") is None and sniff(b"<html><script>") is None


def _form(data: bytes, filename: str, content_type: str = "application/octet-stream") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    return form


async def _upload(client: TestClient, referral: int, data: bytes, filename: str, username: str = "dr.li",
                  content_type: str = "application/octet-stream") -> tuple[int, dict]:
    response = await client.post(f"/api/referrals/{referral}/attachments", data=_form(data, filename, content_type),
                                 headers=await login(client, username))
    return response.status, await response.json()


async def test_the_referring_doctor_attaches_and_the_partner_downloads(client: TestClient) -> None:
    """The referring doctor's upload is typed by its bytes, not by what the browser claimed, and sealed on disk; the
    partner's coordinator lists it and downloads the same bytes under its Chinese name in a sandbox, and both the adding
    and the download are audited."""
    referral = await create(client, await ids(client))
    status, attached = await _upload(client, referral["id"], PDF, "心电图 ECG.pdf", content_type="image/png")
    assert status == 201, attached
    assert attached["content_type"] == "application/pdf", "the bytes decide, not what the browser claimed"
    assert attached["filename"] == "心电图 ECG.pdf" and attached["size"] == len(PDF)

    async with client.app[DATABASE].session() as session:
        row = (await session.exec(select(Attachment))).one()
    on_disk = (client.app[SETTINGS].recordings_dir / row.file).read_bytes()
    assert PDF not in on_disk and b"ECG report" not in on_disk, "sealed at rest"

    listed = await client.get(f"/api/referrals/{referral['id']}/attachments", headers=await login(client, "coord.zhao"))
    assert [a["id"] for a in (await listed.json())["attachments"]] == [attached["id"]]
    download = await client.get(attached["url"], headers=await login(client, "coord.zhao"))
    assert download.status == 200 and await download.read() == PDF
    assert download.content_type == "application/pdf"
    assert "filename*=UTF-8''%E5%BF%83%E7%94%B5%E5%9B%BE%20ECG.pdf" in download.headers["Content-Disposition"]
    assert "sandbox" in download.headers["Content-Security-Policy"]
    actions = [e.action for e in await audit.trail(client.app[DATABASE])]
    assert "attachment.added" in actions and "attachment.downloaded" in actions


async def test_others_neither_attach_nor_read(client: TestClient) -> None:
    """Only the referring doctor attaches (the partner's coordinator and another county's doctor get 403); the other
    county's doctor cannot download, nor can the partner once the patient withdraws consent (403 `records-withheld`),
    while the referring doctor still can."""
    referral = await create(client, await ids(client))
    status, attached = await _upload(client, referral["id"], PNG, "x.png")
    assert status == 201
    for username in ("coord.zhao", "dr.chen"):
        assert (await _upload(client, referral["id"], PNG, "y.png", username))[0] == 403, username
    assert (await client.get(attached["url"], headers=await login(client, "dr.chen"))).status == 403
    consent = referral["sharing_consent"]["id"]
    await client.post(f"/api/consents/{consent}/withdraw", headers=await login(client, "dr.li"))
    withheld = await client.get(attached["url"], headers=await login(client, "coord.zhao"))
    assert withheld.status == 403 and (await withheld.json())["error"]["code"] == "records-withheld"
    own = await client.get(attached["url"], headers=await login(client, "dr.li"))
    assert own.status == 200


@pytest.mark.parametrize(("data", "name", "status", "code"), [
    (b"MZ\x90\x00 not an image", "scan.png", 415, "unsupported-type"),
    (b"", "empty.pdf", 415, "unsupported-type"),
])
async def test_refused_files_leave_nothing_behind(client: TestClient, data: bytes, name: str, status: int,
                                                  code: str) -> None:
    """Each row, an executable named .png or an empty file: 415 `unsupported-type`, and neither a row nor a file, not
    even a part of one, is left behind."""
    referral = await create(client, await ids(client))
    got, body = await _upload(client, referral["id"], data, name)
    assert (got, body["error"]["code"]) == (status, code)
    await _nothing_stored(client)


async def _nothing_stored(client: TestClient) -> None:
    async with client.app[DATABASE].session() as session:
        assert (await session.exec(select(Attachment))).all() == []
    folder = client.app[SETTINGS].recordings_dir / "attachments"
    assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()], "no file, not even a part"


async def test_a_file_over_the_limit_is_refused_and_leaves_nothing(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A file over the configured attachment limit answers 413 naming the limit and leaves nothing stored; a file within
    the limit, though larger than the JSON body limit (MAX_JSON_BODY, which uploads do not go by), is accepted whole."""
    from dataclasses import replace

    limit = 2 * MAX_JSON_BODY
    client = await _start(replace(settings, attachment_max_bytes=limit))
    try:
        referral = await create(client, await ids(client))
        got, body = await _upload(client, referral["id"], PNG + bytes(limit), "big.png")
        assert got == 413 and body["error"]["max_bytes"] == limit
        await _nothing_stored(client)
        data = PNG + bytes(MAX_JSON_BODY + 100_000)
        assert MAX_JSON_BODY < len(data) < limit
        fits, attached = await _upload(client, referral["id"], data, "fits.png")
        assert fits == 201, ("larger than the JSON body limit, within the attachment limit", attached)
        assert attached["size"] == len(data)
    finally:
        await client.close()


async def test_a_request_without_a_file_is_explained(client: TestClient) -> None:
    """An upload sent as JSON instead of a multipart file answers 400 `bad-upload` rather than failing obscurely."""
    referral = await create(client, await ids(client))
    response = await client.post(f"/api/referrals/{referral['id']}/attachments", json={"file": "x"},
                                 headers=await login(client, "dr.li"))
    assert response.status == 400 and (await response.json())["error"]["code"] == "bad-upload"


@pytest.mark.parametrize("name", ["../../心电图 ECG.pdf", "C:\\fakepath\\ecg.pdf", "/etc/ecg.pdf"])
async def test_a_file_name_that_is_a_path_is_422(client: TestClient, name: str) -> None:
    """Guards file names: a path (which no browser sends) is refused, naming the field, instead of being
    quietly cut to its last part; nothing is stored."""
    referral = await create(client, await ids(client))
    got, body = await _upload(client, referral["id"], PDF, name)
    assert (got, body["error"]["code"]) == (422, "validation-failed") and "file" in body["error"]["fields"]
    await _nothing_stored(client)


@pytest.mark.parametrize("disposition", [
    b'form-data; name="file"; filename="..%2Fecg.pdf"',  # as a browser sends it: % is not escaped
    b'form-data; name="file"; filename="ecg%00.exe.pdf"',  # a NUL cuts a name short wherever C reads it
    b"form-data; name=\"file\"; filename*=UTF-8''ecg%00.pdf",
    b"form-data; name=\"file\"; filename*=UTF-8''ecg%1B%5B31m.pdf",
])
async def test_a_file_name_with_control_characters_or_an_encoded_path_is_422(client: TestClient,
                                                                            disposition: bytes) -> None:
    """Guards file names as they are read (percent-decoded): a NUL, another control character or an encoded
    path is refused, naming the field; nothing is stored."""
    referral = await create(client, await ids(client))
    response = await client.post(f"/api/referrals/{referral['id']}/attachments", data=_raw_part(disposition),
                                 headers={**await login(client, "dr.li"),
                                          "Content-Type": "multipart/form-data; boundary=b"})
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (422, "validation-failed") and "file" in body["error"]["fields"]
    await _nothing_stored(client)


def _raw_part(disposition: bytes = b'form-data; name="file"; filename="ecg.pdf"', end: bytes = b"\r\n--b--\r\n"):
    return b"--b\r\nContent-Disposition: " + disposition + b"\r\nContent-Type: application/pdf\r\n\r\n" + PDF + end


@pytest.mark.parametrize(("content_type", "body", "code"), [
    ("multipart/form-data", _raw_part(), "bad-multipart"),  # no boundary: aiohttp raised ValueError
    ("multipart/form-data; boundary=", _raw_part(), "bad-multipart"),
    ("multipart/form-data; boundary=" + "b" * 71, _raw_part(), "bad-multipart"),
    ('multipart/form-data; boundary="a\\"b"', _raw_part(), "bad-multipart"),
    ("multipart/form-data; boundary=zzz", _raw_part(), "bad-upload"),  # not the boundary the body uses
    ("multipart/form-data; boundary=b", b"", "bad-upload"),
    ("multipart/form-data; boundary=b", b"--b\r\nnot a header\r\n\r\n%PDF\r\n--b--\r\n", "bad-upload"),
    ("multipart/form-data; boundary=b", _raw_part(b'form-data; name="file"; filename="ecg\x00.pdf"'), "bad-upload"),
    ("multipart/form-data; boundary=b",
     b'--b\r\nContent-Type: multipart/mixed\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--b--\r\n',
     "bad-upload"),
    ("multipart/form-data; boundary=b", _raw_part(end=b""), "upload-cut-short"),  # was stored, as if whole
    ("multipart/form-data; boundary=b", _raw_part(end=b"\r\n--"), "upload-cut-short"),
])
async def test_a_malformed_multipart_body_is_400(client: TestClient, content_type: str, body: bytes,
                                                 code: str) -> None:
    """Guards the multipart reader: each of these raised ValueError or InvalidHeader (a 500), or stored a
    file cut short; now each is a 400 saying so, and nothing is stored."""
    referral = await create(client, await ids(client))
    response = await client.post(f"/api/referrals/{referral['id']}/attachments", data=body,
                                 headers={**await login(client, "dr.li"), "Content-Type": content_type})
    assert response.status == 400 and (await response.json())["error"]["code"] == code
    await _nothing_stored(client)
