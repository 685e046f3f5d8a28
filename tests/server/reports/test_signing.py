"""Signing reports: a fresh data directory gets a self-signed pair once; a signed PDF checks out as intact,
whole and ours; a changed byte, bytes added after signing, another party's certificate, or no signature at all
each fail the check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.errors import SettingsError
from server.reports import signing
from server.reports.render import render
from server.settings import Settings

from .test_render import FACTS


@pytest.fixture
def signer(tmp_path: Path) -> signing.ReportSigner:
    return signing.load(Settings.load(environ={}, data_dir=tmp_path / "var"))


def test_a_fresh_data_directory_gets_one_self_signed_pair(tmp_path: Path) -> None:
    """The demo signs on a fresh machine; the pair is made once and kept (a restart signs with the same)."""
    settings = Settings.load(environ={}, data_dir=tmp_path / "var")
    first, again = signing.load(settings), signing.load(settings)
    assert signing.DEMO_SUBJECT in first.subject
    assert first.certificates[0].dump() == again.certificates[0].dump()
    assert oct((tmp_path / "var" / signing.DEMO_KEY_FILE).stat().st_mode)[-3:] == "600"


def test_the_certificate_and_key_come_from_settings(tmp_path: Path, signer: signing.ReportSigner) -> None:
    """Configured paths are used as given; one without the other, or an unreadable file, stops start-up."""
    var = tmp_path / "var"
    configured = Settings.load(environ={"TELEMED_REPORT_SIGNING_CERT": str(var / signing.DEMO_CERT_FILE),
                                        "TELEMED_REPORT_SIGNING_KEY": str(var / signing.DEMO_KEY_FILE)},
                               data_dir=tmp_path / "elsewhere")
    assert signing.load(configured).subject == signer.subject
    with pytest.raises(SettingsError, match="both"):
        signing.load(Settings.load(environ={"TELEMED_REPORT_SIGNING_CERT": "x.pem"}, data_dir=tmp_path))
    signing.load(Settings.load(environ={}, data_dir=tmp_path / "other"))
    with pytest.raises(SettingsError, match="do not hold a certificate and its private key"):
        signing.load(Settings.load(environ={  # a certificate with another pair's key
            "TELEMED_REPORT_SIGNING_CERT": str(var / signing.DEMO_CERT_FILE),
            "TELEMED_REPORT_SIGNING_KEY": str(tmp_path / "other" / signing.DEMO_KEY_FILE)}))
    with pytest.raises(SettingsError, match="cannot read"):
        signing.load(Settings.load(environ={"TELEMED_REPORT_SIGNING_CERT": str(tmp_path / "no.pem"),
                                            "TELEMED_REPORT_SIGNING_KEY": str(tmp_path / "no.pem")}))


def test_a_signed_report_holds(signer: signing.ReportSigner) -> None:
    """PAdES over the whole file, made by our certificate, with the signer's subject read back."""
    signed = signer.sign(render(FACTS, "zh-CN"), name="王芳", reason="会诊报告", location="江南省人民医院")
    found = signing.check(signed, signer)
    assert found.holds and found.signer == signer.subject and found.signed_at is not None


def test_a_changed_byte_breaks_the_signature(signer: signing.ReportSigner) -> None:
    """Altering one byte of what the report's page draws (inside its compressed content stream, where the text,
    diagnosis included, is drawn; in the signed range) leaves a signature that no longer checks out."""
    signed = bytearray(signer.sign(render(FACTS, "en"), name="x", reason="r", location="l"))
    contents = re.search(rb"/Contents (\d+) 0 R", signed)
    assert contents, "the page names the stream that draws it"
    drawing = signed.index(b"stream\n", signed.index(b"\n" + contents[1] + b" 0 obj\n")) + len(b"stream\n")
    signed[drawing + 100] ^= 0x01  # a bit of the compressed drawing, well inside the stream
    found = signing.check(bytes(signed), signer)
    assert found.signed and not found.intact and not found.holds


def test_bytes_added_after_signing_are_caught(signer: signing.ReportSigner) -> None:
    """An incremental update appended after the signature leaves it intact but no longer covering the file."""
    signed = signer.sign(render(FACTS, "en"), name="x", reason="r", location="l")
    appended = signed + b"\n1 0 obj\n<< >>\nendobj\n"
    found = signing.check(appended, signer)
    assert found.intact and not found.whole_file and not found.holds


def test_another_partys_certificate_is_not_trusted(tmp_path: Path, signer: signing.ReportSigner) -> None:
    """A report signed with someone else's (self-signed) certificate is intact but not ours."""
    stranger = signing.load(Settings.load(environ={}, data_dir=tmp_path / "stranger"))
    signed = stranger.sign(render(FACTS, "en"), name="x", reason="r", location="l")
    found = signing.check(signed, signer)
    assert found.intact and not found.trusted and not found.holds


def test_an_unsigned_or_unreadable_file(signer: signing.ReportSigner) -> None:
    """An unsigned report, and bytes that are no PDF at all, both check as not signed."""
    assert not signing.check(render(FACTS, "en"), signer).signed
    assert not signing.check(b"not a pdf", signer).signed


def test_hospitals_sign_with_their_own_pairs(tmp_path: Path, signer: signing.ReportSigner) -> None:
    """TELEMED_REPORT_SIGNING_DIR: <hospital id>.crt.pem and .key.pem, by hospital; their signatures are trusted
    beside the deployment's; a file not named by a hospital id stops start-up."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    signing._write_self_signed(pairs / "2.crt.pem", pairs / "2.key.pem")
    settings = Settings.load(environ={"TELEMED_REPORT_SIGNING_DIR": str(pairs)}, data_dir=tmp_path / "var")
    hospitals = signing.load_hospitals(settings)
    assert set(hospitals) == {2} and hospitals[2].subject == signer.subject  # both demo pairs, named alike
    assert hospitals[2].certificates[0].dump() != signer.certificates[0].dump()
    signed = hospitals[2].sign(render(FACTS, "en"), name="x", reason="r", location="l")
    assert signing.check(signed, signer, *hospitals.values()).holds
    assert not signing.check(signed, signer).trusted  # without the hospital's pair, not ours
    assert signing.load_hospitals(Settings.load(environ={}, data_dir=tmp_path)) == {}
    (pairs / "provincial.crt.pem").write_text("x")
    with pytest.raises(SettingsError, match="hospital id"):
        signing.load_hospitals(settings)
