"""Consultation reports: signing one (which completes the referral), amending it (a new signed version that
keeps the old), the referring doctor's acknowledgement, reading and verifying them.

Signing is one transaction: the referral's completion (through the flow, so only the booked specialist and
only from a scheduled or running consultation), the report's row and its audit entry, with the PDF's SHA-256,
land together or not at all; the sealed PDF is written before the commit and removed if the commit fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from media.errors import TamperedRecording
from media.sealed import SealedReader, SealedWriter

from .. import storage
from ..audit import trail as audit
from ..db import Database
from ..errors import N_, Conflict, NotFound, Unavailable, ValidationFailed
from ..i18n import SUPPORTED_LOCALES, translations
from ..models import (
    AuditEvent,
    Consent,
    ConsentMethod,
    ConsentSubject,
    Consultation,
    ConsultationParticipant,
    ConsultationReport,
    Hospital,
    Patient,
    Referral,
    ReferralAction,
    ReferralEvent,
    ReportRendition,
    Role,
    User,
    utcnow,
)
from ..notices import Notice
from ..outputs import Out
from ..permissions import Principal, can_acknowledge_report, is_report_signer, require, require_licence
from ..referrals import service as referrals
from ..referrals.flow import Request
from ..retention import data_keys
from . import icd10, render, signing
from .inputs import ReportInput

REPORTS_DIR = "reports"
ROLE_WORDS = {Role.COUNTY_DOCTOR: N_("County doctor"), Role.SPECIALIST: N_("Specialist"),
              Role.COORDINATOR: N_("Coordinator")}
PURPOSE_WORDS = {"video": N_("Taking part by video"), "recording": N_("Being recorded"),
                 "record_sharing": N_("Sharing records with the partner hospital")}
METHOD_WORDS = {ConsentMethod.CLICKED: N_("Agreed on a page"),
                ConsentMethod.VERBAL: N_("Said to a doctor, who recorded it")}


@dataclass(frozen=True)
class ReportTools:
    """What signing and reading reports needs beside the database: the signers, and where sealed files go."""

    signer: signing.ReportSigner  # the deployment's: for a hospital without a pair of its own
    root: Path  # the recordings directory: reports are sealed under it, like attachments
    key: bytes
    default_locale: str = "zh-CN"
    hospitals: dict[int, signing.ReportSigner] = dataclasses.field(default_factory=dict)  # their own pairs

    def signer_for(self, hospital_id: int) -> signing.ReportSigner:
        return self.hospitals.get(hospital_id, self.signer)

    @property
    def others(self) -> tuple[signing.ReportSigner, ...]:
        return tuple(self.hospitals.values())


class Diagnosis(Out):
    code: str
    text: str


class ReportShown(Out):
    """One signed version of a consultation report. ``url`` is its PDF (``?locale=`` one of ``languages``),
    ``verification_url`` the check of its signature."""

    id: int
    languages: list[str]
    referral_id: int
    consultation_id: int | None
    version: int
    author_id: int
    findings: str
    diagnosis: Diagnosis
    recommendations: str
    locale: str
    created_at: datetime
    pdf_sha256: str
    signer_subject: str
    acknowledged_by: int | None
    acknowledged_at: datetime | None
    supersedes_id: int | None
    url: str
    verification_url: str


class ReportList(Out):
    reports: list[ReportShown]


class SignatureCheck(Out):
    signed: bool
    intact: bool
    covers_whole_file: bool
    trusted: bool


class VerifiedReport(Out):
    id: int
    referral_id: int
    version: int
    locale: str | None


class VerificationShown(Out):
    """Whether a signed PDF holds: its signature, who signed it and when, and its hash against the audit trail."""

    holds: bool
    signature: SignatureCheck
    signer: str
    signed_at: datetime | None
    sha256: str
    hash_matches: bool
    in_audit_trail: bool
    report: VerifiedReport | None


def describe(row: ConsultationReport, renditions: Sequence[str] = ()) -> dict:
    """A version as the API shows it; ``renditions``: the other languages its PDF is in (``?locale=``)."""
    return {"id": row.id, "languages": [row.locale, *renditions], "referral_id": row.referral_id,
            "consultation_id": row.consultation_id,
            "version": row.version, "author_id": row.author_id, "findings": row.findings,
            "diagnosis": {"code": row.diagnosis_code, "text": row.diagnosis_text},
            "recommendations": row.recommendations, "locale": row.locale, "created_at": row.created_at.isoformat(),
            "pdf_sha256": row.pdf_sha256, "signer_subject": row.signer_subject,
            "acknowledged_by": row.acknowledged_by,
            "acknowledged_at": row.acknowledged_at.isoformat() if row.acknowledged_at else None,
            "supersedes_id": row.supersedes_id, "url": f"/api/reports/{row.id}/pdf",
            "verification_url": f"/api/reports/{row.id}/verification"}


async def shown(session: AsyncSession, row: ConsultationReport) -> dict:
    """``describe`` with the languages the version's PDF is in."""
    assert row.id is not None
    return describe(row, await languages(session, row.id))


async def versions(session: AsyncSession, referral_id: int) -> Sequence[ConsultationReport]:
    return (await session.exec(select(ConsultationReport).where(ConsultationReport.referral_id == referral_id)
                               .order_by(col(ConsultationReport.version)))).all()


async def list_for(session: AsyncSession, who: Principal, referral_id: int) -> Sequence[ConsultationReport]:
    """Every signed version of a referral's report, oldest first, for whoever sees its patient's records. The
    findings are the patient's record: reading them is a view of it, audited as the referral page's is."""
    referral = await referrals.load_with_records(session, who, referral_id)
    rows = await versions(session, referral_id)
    if rows:
        audit.with_commit(session, audit.Entry(
            f"user:{who.user_id}", "patient.viewed", referral.consultation_id, f"patient:{referral.patient_id}",
            {"via": f"referral:{referral_id}", "reports": len(rows)}))
        await session.commit()
    return rows


async def sign(session: AsyncSession, who: Principal, referral_id: int, body: ReportInput, *,
               tools: ReportTools) -> ConsultationReport:
    """The booked specialist signs the report, which completes the referral; committed. 409 if it already has
    one (amend it instead).

    Signing does not need the patient's records to be shared with the specialist's hospital at that moment
    (consent withdrawn after the call, say): the report is the specialist's own words, and it goes into the
    requesting hospital's record, which holds the patient's data by right. The PDF names the patient, so the
    specialist's side reads it back (``download``) only while the records are shared, like everything else
    about the patient."""
    referral, appointment = await referrals.load_visible(session, who, referral_id)
    require(is_report_signer(who, referrals.scope_of(referral, appointment)),
            N_("Only the specialist booked for this referral signs its report."))
    require_licence(who)  # theirs to sign, once an administrator has verified their licence
    if await versions(session, referral_id):
        raise Conflict(N_("This referral's report is already signed; amend it instead."), code="report-exists")
    diagnosis = await _diagnosis(session, body)
    await referrals.apply(session, who, referral, appointment, Request(ReferralAction.COMPLETE, report_signed=True),
                          changes={"opinion": body.findings, "recommendations": body.recommendations})
    return await _issue(session, who, referral, body, diagnosis, tools=tools, previous=None)


async def amend(session: AsyncSession, who: Principal, report_id: int, body: ReportInput, *,
                tools: ReportTools, of_referral: int | None = None) -> ConsultationReport:
    """A new signed version of a completed referral's report, superseding the latest (which stays, as every
    version does); committed. Only from the latest version (409 otherwise: someone amended it meanwhile).
    ``of_referral``: the referral an address names it under (404 if it is another's)."""
    previous = await session.get(ConsultationReport, report_id)
    if previous is None or of_referral not in (None, previous.referral_id):
        raise NotFound(N_("There is no such report."))
    referral, appointment = await referrals.load_visible(session, who, previous.referral_id)
    require(is_report_signer(who, referrals.scope_of(referral, appointment)),
            N_("Only the specialist booked for this referral signs its report."))
    require_licence(who)  # theirs to sign, once an administrator has verified their licence
    latest = (await versions(session, previous.referral_id))[-1]
    if latest.id != previous.id:
        raise Conflict(N_("This is not the latest version of the report; amend the latest."), code="report-superseded")
    diagnosis = await _diagnosis(session, body)
    await session.exec(sa.update(Referral).where(col(Referral.id) == referral.id).values(  # type: ignore[call-overload]
        opinion=body.findings, recommendations=body.recommendations, updated_at=utcnow()))
    amended = Notice.report("report.amended", previous.referral_id, previous.version + 1)
    session.add(amended.to(referral.referring_doctor_id))  # the requesting hospital's record changed
    return await _issue(session, who, referral, body, diagnosis, tools=tools, previous=previous)


async def acknowledge(session: AsyncSession, who: Principal, report_id: int, *,
                      of_referral: int | None = None) -> ConsultationReport:
    """The referring doctor acknowledges receipt of a report version, once (again: unchanged); committed.
    ``of_referral``: the referral an address names it under (404 if it is another's)."""
    row = await session.get(ConsultationReport, report_id)
    if row is None or of_referral not in (None, row.referral_id):
        raise NotFound(N_("There is no such report."))
    referral, appointment = await referrals.load_visible(session, who, row.referral_id)
    require(can_acknowledge_report(who, referrals.scope_of(referral, appointment)),
            N_("Only the referring doctor acknowledges a report."))
    if row.acknowledged_at is None:
        row.acknowledged_by, row.acknowledged_at = who.user_id, utcnow()
        session.add(row)
        session.add(Notice.report("report.acknowledged", row.referral_id, row.version).to(row.author_id))
        audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "report.acknowledged", row.consultation_id,
                                               f"report:{row.id}", {"referral": row.referral_id,
                                                                    "version": row.version}))
        await session.commit()
        await session.refresh(row)
    return row


async def languages(session: AsyncSession, report_id: int) -> list[str]:
    """The languages a version's PDF was rendered in besides its record copy's."""
    return list((await session.exec(select(ReportRendition.locale).where(ReportRendition.report_id == report_id)
                                    .order_by(col(ReportRendition.locale)))).all())


async def _file_in(session: AsyncSession, row: ConsultationReport, locale: str | None) -> tuple[str, str]:
    """(file, locale) of the version in ``locale`` if it was rendered in it, else its record copy."""
    if locale is not None and locale != row.locale:
        other = (await session.exec(select(ReportRendition).where(ReportRendition.report_id == row.id,
                                                                  ReportRendition.locale == locale))).first()
        if other is not None:
            return other.file, other.locale
    return row.file, row.locale


async def download(database: Database, who: Principal, report_id: int, *, tools: ReportTools,
                   locale: str | None = None) -> tuple[ConsultationReport, str, bytes]:
    """A report version's signed PDF in ``locale`` (else its record copy's language), for whoever sees the
    referral's records, with the language it is in; every download is audited."""
    async with database.session() as session:
        row = await _visible(session, who, report_id)
        file, shown = await _file_in(session, row, locale)
        own = await _key_of(session, row, tools)
    data = await _read_sealed(tools.root, file, own)
    if data is None:
        raise Unavailable(N_("This report's stored file failed its integrity check."), code="report-tampered")
    await audit.record(database, actor=f"user:{who.user_id}", action="report.downloaded",
                       consultation_id=row.consultation_id, subject=f"report:{row.id}",
                       detail={"referral": row.referral_id, "version": row.version, "locale": shown})
    return row, shown, data


@dataclass(frozen=True)
class Verification:
    """Whether a signed report holds: its signature (``check``), and its hash against the one recorded."""

    check: signing.Check
    report: ConsultationReport | None  # the report whose recorded hash this file has, if any
    in_audit_trail: bool  # the audit trail recorded this hash when the report was signed
    locale: str | None = None  # the language of the recorded PDF this file is

    @property
    def hash_matches(self) -> bool:
        return self.report is not None and self.in_audit_trail

    @property
    def holds(self) -> bool:
        return self.check.holds and self.hash_matches

    def to_json(self) -> dict:
        c = self.check
        return {"holds": self.holds, "signature": {"signed": c.signed, "intact": c.intact,
                                                   "covers_whole_file": c.whole_file, "trusted": c.trusted},
                "signer": c.signer, "signed_at": c.signed_at.isoformat() if c.signed_at else None,
                "sha256": c.sha256, "hash_matches": self.hash_matches, "in_audit_trail": self.in_audit_trail,
                "report": {"id": self.report.id, "referral_id": self.report.referral_id,
                           "version": self.report.version, "locale": self.locale} if self.report else None}


async def verify_bytes(session: AsyncSession, pdf: bytes, signer: signing.ReportSigner,
                       *others: signing.ReportSigner) -> Verification:
    """Check a PDF as it is now against what was recorded when a report was signed (for the CLI and the API),
    trusting the certificates of ``signer`` and ``others``."""
    found = await asyncio.to_thread(signing.check, pdf, signer, *others)
    report = (await session.exec(select(ConsultationReport)
                                 .where(ConsultationReport.pdf_sha256 == found.sha256))).first()
    locale = report.locale if report else None
    if report is None:
        other = (await session.exec(select(ReportRendition)
                                    .where(ReportRendition.pdf_sha256 == found.sha256))).first()
        if other is not None:
            report, locale = await session.get(ConsultationReport, other.report_id), other.locale
    in_trail = False
    if report is not None:
        entries = (await session.exec(select(AuditEvent.detail).where(
            AuditEvent.subject == f"report:{report.id}",
            col(AuditEvent.action).in_(["report.signed", "report.amended"])))).all()
        in_trail = any(f'"{found.sha256}"' in detail for detail in entries)
    return Verification(found, report, in_trail, locale)


async def verification(database: Database, who: Principal, report_id: int, *, tools: ReportTools,
                       locale: str | None = None) -> Verification:
    """The stored PDF of a report version (in ``locale``, as ``download`` picks it), checked: its signature,
    and its hash against the one recorded for that version and language in the database and the audit trail
    (a file changed or swapped on disk, or a row changed in the database, shows here)."""
    async with database.session() as session:
        row = await _visible(session, who, report_id)
        file, shown = await _file_in(session, row, locale)
        own = await _key_of(session, row, tools)
    data = await _read_sealed(tools.root, file, own)
    if data is None:  # changed on disk: it is no longer what was sealed, let alone what was signed
        return Verification(signing.Check("", False, False, False, False, "", None), None, False)
    async with database.session() as session:
        found = await verify_bytes(session, data, tools.signer, *tools.others)
    if found.report is not None and (found.report.id != row.id or found.locale != shown):
        return Verification(found.check, None, False)
    return found


async def _read_sealed(root: Path, file: str, key: bytes) -> bytes | None:
    """A sealed file's bytes; None if they fail its integrity check (changed or swapped on disk). 404 if the
    file is missing, 503 if the recordings directory ``root`` cannot be reached (``storage.unreadable``)."""
    try:
        return await asyncio.to_thread(lambda: SealedReader(root / file, key).read_all())
    except OSError as exc:
        raise await storage.unreadable(root, exc, N_("This report's file is missing on this server.")) from None
    except TamperedRecording:
        return None


async def _key_of(session: AsyncSession, row: ConsultationReport, tools: ReportTools) -> bytes:
    """The key the version's PDFs are sealed under; 404 once the records' retention ended and the purge deleted
    them (the row, and its hash in the audit trail, remain)."""
    try:
        if row.purged_at is not None:
            raise data_keys.KeyShredded(row.id or 0)
        return await data_keys.key_of(session, tools.key, row.data_key_id)
    except data_keys.KeyShredded:
        raise NotFound(N_("This report's PDF was deleted when its retention period ended.")) from None


async def _visible(session: AsyncSession, who: Principal, report_id: int) -> ConsultationReport:
    row = await session.get(ConsultationReport, report_id)
    if row is None:
        raise NotFound(N_("There is no such report."))
    await referrals.load_with_records(session, who, row.referral_id)
    return row


async def _diagnosis(session: AsyncSession, body: ReportInput) -> icd10.Diagnosis:
    found = await icd10.lookup(session, body.diagnosis_code)
    if found is None:
        raise ValidationFailed({"diagnosis_code": N_("not a code of the ICD-10 list in use; pick one from the list")})
    return found


async def _issue(session: AsyncSession, who: Principal, referral: Referral, body: ReportInput,
                 diagnosis: icd10.Diagnosis, *, tools: ReportTools,
                 previous: ConsultationReport | None) -> ConsultationReport:
    """Render, sign and seal a version, add its row and audit entry, and commit (uncommitted work included)."""
    assert referral.id is not None
    await storage.ensure_usable(tools.root)
    locale = await _reader_locale(session, referral, tools.default_locale)
    signer = tools.signer_for(who.hospital_id)  # the specialist's hospital's
    row = ConsultationReport(referral_id=referral.id, consultation_id=referral.consultation_id,
                             version=previous.version + 1 if previous else 1, author_id=who.user_id,
                             findings=body.findings, diagnosis_code=diagnosis.code,
                             diagnosis_text=diagnosis.title(locale), recommendations=body.recommendations,
                             locale=locale, file="", pdf_sha256="", signer_subject=signer.subject,
                             supersedes_id=previous.id if previous else None)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # the same version signed meanwhile by a request that read what this one did
        await session.rollback()
        raise _signed_meanwhile(previous) from None
    assert row.id is not None
    own = data_keys.new_key()  # this version's: the purge deletes it with the files when retention ends
    row.data_key_id = await data_keys.keep(session, tools.key, own)
    directory = tools.root / REPORTS_DIR / str(referral.id)
    written: list[Path] = []
    hashes: dict[str, str] = {}
    try:
        # The record copy in the requesting hospital's language, and the same facts in every other language,
        # each signed: a reader gets it in theirs.
        for shown in [locale, *(other for other in SUPPORTED_LOCALES if other != locale)]:
            facts = dataclasses.replace(await _facts(session, referral, row, shown, previous),
                                        diagnosis_text=diagnosis.title(shown))
            pdf = await asyncio.to_thread(_signed, signer, facts, shown)
            path = directory / f"{secrets.token_hex(12)}.sealed"
            await asyncio.to_thread(_seal, path, own, pdf)
            written.append(path)
            hashes[shown] = hashlib.sha256(pdf).hexdigest()
            file = str(path.relative_to(tools.root))
            if shown == locale:
                row.file, row.pdf_sha256 = file, hashes[shown]
            else:
                session.add(ReportRendition(report_id=row.id, locale=shown, file=file, pdf_sha256=hashes[shown]))
        session.add(row)
        action = "report.amended" if previous else "report.signed"
        audit.with_commit(session, audit.Entry(
            f"user:{who.user_id}", action, row.consultation_id, f"report:{row.id}",
            {"referral": referral.id, "version": row.version, "sha256": row.pdf_sha256, "locale": locale,
             "renditions": {k: v for k, v in hashes.items() if k != locale}, "signer": row.signer_subject,
             "diagnosis": row.diagnosis_code, **({"supersedes": previous.id} if previous else {})}))
        await session.commit()
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)  # no file without its row
        if isinstance(exc, IntegrityError):
            await session.rollback()
            raise _signed_meanwhile(previous) from None
        raise
    await session.refresh(row)
    return row


def _signed_meanwhile(previous: ConsultationReport | None) -> Conflict:
    """Two signatures of the same version raced: the one that lost is told as if it had come a moment later."""
    if previous is None:
        return Conflict(N_("This referral's report is already signed; amend it instead."), code="report-exists")
    return Conflict(N_("This is not the latest version of the report; amend the latest."), code="report-superseded")


def _signed(signer: signing.ReportSigner, facts: render.ReportFacts, locale: str) -> bytes:
    return signer.sign(render.render(facts, locale), name=facts.specialist,
                       reason=translations(locale).gettext("Consultation report"), location=facts.consulting_hospital)


def _seal(path: Path, key: bytes, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    writer = SealedWriter(path, key)
    writer.write(data)
    writer.close()


async def _reader_locale(session: AsyncSession, referral: Referral, default: str) -> str:
    """The report goes into the requesting hospital's record: it is written in the referring doctor's language."""
    doctor = await session.get(User, referral.referring_doctor_id)
    return doctor.locale if doctor and doctor.locale in SUPPORTED_LOCALES else default


async def _facts(session: AsyncSession, referral: Referral, row: ConsultationReport, locale: str,
                 previous: ConsultationReport | None) -> render.ReportFacts:
    _ = translations(locale).gettext
    requesting = await session.get(Hospital, referral.referring_hospital_id)
    consulting = await session.get(Hospital, referral.target_hospital_id)
    patient = await session.get(Patient, referral.patient_id)
    author = await session.get(User, row.author_id)
    assert requesting and consulting and patient and author
    people = {referral.referring_doctor_id, row.author_id}
    if referral.consultation_id is not None:
        people |= set((await session.exec(select(ConsultationParticipant.user_id).where(
            ConsultationParticipant.consultation_id == referral.consultation_id))).all())
    users = (await session.exec(select(User).where(col(User.id).in_(people)).order_by(col(User.id)))).all()
    participants = tuple(f"{u.display_name} ({_(ROLE_WORDS[u.role])})" if u.role in ROLE_WORDS else u.display_name
                         for u in users)
    started = (await session.exec(select(ReferralEvent.at).where(
        ReferralEvent.referral_id == referral.id, ReferralEvent.action == ReferralAction.START.value)
        .order_by(col(ReferralEvent.id)))).first()
    consultation_at: datetime | None = started
    if consultation_at is None and referral.consultation_id is not None:
        consultation = await session.get(Consultation, referral.consultation_id)
        consultation_at = consultation.planned_start if consultation else None
    scope = [col(Consent.referral_id) == referral.id]
    if referral.consultation_id is not None:
        scope.append(col(Consent.consultation_id) == referral.consultation_id)
    consent_rows = (await session.exec(select(Consent).where(
        sa.or_(*scope), Consent.subject == ConsentSubject.PATIENT, col(Consent.withdrawn_at).is_(None))
        .order_by(col(Consent.given_at)))).all()
    consents = tuple(render.Consent(_(PURPOSE_WORDS.get(c.purpose.value, c.purpose.value)), c.given_at,
                                    _(METHOD_WORDS[c.method])) for c in consent_rows)
    return render.ReportFacts(
        report_id=row.id or 0, version=row.version, referral_id=referral.id or 0,
        requesting_hospital=requesting.name, requesting_zone=requesting.timezone,
        consulting_hospital=consulting.name, patient=patient.name, participants=participants,
        consultation_at=consultation_at, signed_at=row.created_at, specialist=author.display_name,
        findings=row.findings, diagnosis_code=row.diagnosis_code, diagnosis_text=row.diagnosis_text,
        recommendations=row.recommendations, consents=consents,
        supersedes_version=previous.version if previous else None)

