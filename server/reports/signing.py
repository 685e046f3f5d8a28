"""Signing consultation reports (PAdES, with pyHanko) and checking a signed report later.

The certificate and key are the consulting hospital's, from settings: a hospital's own pair in
``TELEMED_REPORT_SIGNING_DIR`` (``<hospital id>.crt.pem`` and ``<hospital id>.key.pem``), else the deployment's
(``TELEMED_REPORT_SIGNING_CERT`` and ``_KEY``). Without those, a self-signed pair is generated once into
``keys/`` in the data directory, so the demo signs on a fresh machine; a report signed with it says so in its
signer's name.

A signature is *trusted* when the certificate that made it is one this deployment signs with, or chains to
one of the certificates that follow one in its file (its issuers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_certs_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from ..errors import SettingsError
from ..settings import Settings

DEMO_CERT_FILE = "keys/report-signing-cert.pem"
DEMO_KEY_FILE = "keys/report-signing-key.pem"
DEMO_SUBJECT = "Telemed demo report signing (self-signed, not for clinical use)"
FIELD = "ConsultationReport"


@dataclass(frozen=True)
class ReportSigner:
    """The key and certificate (and its issuers) reports are signed with."""

    signer: signers.SimpleSigner
    certificates: tuple[asn1_x509.Certificate, ...]  # the signing certificate first

    @property
    def subject(self) -> str:
        return self.certificates[0].subject.human_friendly

    def sign(self, pdf: bytes, *, name: str, reason: str, location: str) -> bytes:
        """``pdf`` with a PAdES signature over all of it (blocking: run it in a thread)."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(field_name=FIELD, subfilter=fields.SigSeedSubFilter.PADES,
                                            md_algorithm="sha256", name=name, reason=reason, location=location)
        return signers.sign_pdf(writer, meta, signer=self.signer).getvalue()


def load(settings: Settings) -> ReportSigner:
    """The configured certificate and key, else the data directory's self-signed pair, made on first use."""
    cert_path, key_path = settings.report_signing_cert, settings.report_signing_key
    if (cert_path is None) != (key_path is None):
        raise SettingsError("Set both TELEMED_REPORT_SIGNING_CERT and TELEMED_REPORT_SIGNING_KEY, or neither.")
    if cert_path is None or key_path is None:
        cert_path, key_path = settings.data_dir / DEMO_CERT_FILE, settings.data_dir / DEMO_KEY_FILE
        if not cert_path.exists() or not key_path.exists():
            _write_self_signed(cert_path, key_path)
    return _load_pair(cert_path, key_path)


def load_hospitals(settings: Settings) -> dict[int, ReportSigner]:
    """Each hospital's own pair from ``TELEMED_REPORT_SIGNING_DIR``, by hospital id (none if unset)."""
    directory = settings.report_signing_dir
    if directory is None:
        return {}
    if not directory.is_dir():
        raise SettingsError(f"TELEMED_REPORT_SIGNING_DIR: {directory} is not a directory.")
    found: dict[int, ReportSigner] = {}
    for cert_path in sorted(directory.glob("*.crt.pem")):
        stem = cert_path.name.removesuffix(".crt.pem")
        if not stem.isdigit():
            raise SettingsError(f"TELEMED_REPORT_SIGNING_DIR: {cert_path.name} is not named <hospital id>.crt.pem.")
        found[int(stem)] = _load_pair(cert_path, directory / f"{stem}.key.pem")
    return found


def _load_pair(cert_path: Path, key_path: Path) -> ReportSigner:
    try:
        certificates = tuple(load_certs_from_pemder([str(cert_path)]))
        signer = signers.SimpleSigner.load(str(key_path), str(cert_path), ca_chain_files=None)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read the report signing certificate or key ({cert_path}, {key_path}): "
                            f"{exc}") from exc
    if signer is None or not certificates or not _pair(cert_path, key_path):
        raise SettingsError(f"{cert_path} and {key_path} do not hold a certificate and its private key "
                            "(TELEMED_REPORT_SIGNING_CERT, TELEMED_REPORT_SIGNING_KEY).")
    return ReportSigner(signer, certificates)


def _pair(cert_path: Path, key_path: Path) -> bool:
    """Whether the key is the certificate's: found at start-up, not at the first report signed."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _write_self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEMO_SUBJECT),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Telemed demo")])
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The key first, then the certificate, each written aside and moved into place: a start that finds the
    # certificate finds its key too.
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Check:
    """What a signed PDF says for itself: whether its signature holds over the whole file, and who made it."""

    sha256: str
    signed: bool  # it carries a signature at all
    intact: bool  # the signed bytes are unchanged and the signature is cryptographically valid
    whole_file: bool  # the signature covers the whole file (nothing added after signing)
    trusted: bool  # made with this deployment's certificate, or one its configured issuers vouch for
    signer: str  # the signing certificate's subject
    signed_at: dt.datetime | None  # as the signer's clock said

    @property
    def holds(self) -> bool:
        return self.signed and self.intact and self.whole_file and self.trusted


def check(pdf: bytes, signer: ReportSigner, *others: ReportSigner) -> Check:
    """Validate the report's signature against this deployment's certificates (blocking: run it in a thread)."""
    digest = hashlib.sha256(pdf).hexdigest()
    try:
        signatures = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except Exception:  # noqa: BLE001  (any parse failure means: not a signed PDF we can read)
        signatures = []
    if not signatures:
        return Check(digest, False, False, False, False, "", None)
    embedded = signatures[-1]
    ours = {s.certificates[0].dump() for s in (signer, *others)}
    issuers = [issuer for s in (signer, *others) for issuer in s.certificates[1:]]
    try:
        status = validate_pdf_signature(embedded, ValidationContext(trust_roots=issuers, allow_fetching=False))
    except (SigningError, ValueError) as exc:
        return Check(digest, True, False, False, False, str(exc), None)
    cert = status.signing_cert
    trusted = bool(status.trusted) or cert.dump() in ours
    return Check(digest, True, bool(status.intact and status.valid),
                 status.coverage == SignatureCoverageLevel.ENTIRE_FILE, trusted, cert.subject.human_friendly,
                 status.signer_reported_dt)
