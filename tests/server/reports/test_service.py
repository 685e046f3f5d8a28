"""Report service on SQLite and PostgreSQL: signing completes the referral and nothing else does; only the
booked specialist signs and amends, only the referring doctor acknowledges; amendments keep every version; the
PDF's hash is in the audit chain, and verification catches a file changed on disk."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pydantic
import pytest
from pypdf import PdfReader
from sqlmodel import select

from media.sealed import SealedReader, SealedWriter
from server import storage
from server.audit import trail as audit
from server.cli import main
from server.consent import templates as consent_templates
from server.db import Database
from server.demo import seed_demo
from server.errors import Conflict, Forbidden, NotFound, Unavailable, ValidationFailed
from server.models import (
    Appointment,
    AuditEvent,
    Consent,
    ConsentMethod,
    ConsentPurpose,
    ConsentSubject,
    ConsentTemplate,
    Consultation,
    ConsultationReport,
    DataKey,
    Hospital,
    Notification,
    Partnership,
    Patient,
    Referral,
    ReferralAction,
    ReferralState,
    ReportRendition,
    Specialty,
    Urgency,
    User,
    utcnow,
)
from server.referrals import service as referrals
from server.reports import service as reports
from server.reports import signing
from server.reports.inputs import ReportInput
from server.retention import data_keys, holds, purge
from server.retention.holds import PlaceHold, ReleaseHold
from server.settings import Settings

from ..referrals.test_views import BASE, principal

REPORT = ReportInput(findings="Exertional chest pain; ST depression V4-V6.", diagnosis_code="i20.8",
                     recommendations="Coronary angiography. Aspirin 100 mg daily.")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The demo partnership, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await database.upgrade()
    await seed_demo(database)
    await consent_templates.publish(database)
    yield database
    await database.close()


@pytest.fixture
def tools(tmp_path: Path) -> reports.ReportTools:
    settings = Settings.load(environ={}, data_dir=tmp_path / "var")
    storage.mark(settings.recordings_dir, b"k" * 32)  # as the first node of a new deployment does
    return reports.ReportTools(signing.load(settings), settings.recordings_dir, b"k" * 32, "zh-CN")


async def booked(database: Database, state: ReferralState = ReferralState.IN_CONSULTATION) -> int:
    """A referral from dr.li to the provincial hospital, booked with dr.wang, with the patient's consent."""
    async with database.session() as session:
        users = {u.username: u for u in (await session.exec(select(User))).all()}
        hospitals = {h.name.split()[0]: h for h in (await session.exec(select(Hospital))).all()}
        template = (await session.exec(select(ConsentTemplate).where(
            ConsentTemplate.purpose == ConsentPurpose.RECORD_SHARING))).first()
        patient = Patient(hospital_id=hospitals["青山县人民医院"].id, name="张伟")
        session.add(patient)
        consultation = Consultation(title="Cardiology", hospital_id=hospitals["青山县人民医院"].id,
                                    planned_start=BASE, created_by=users["coord.zhao"].id)
        session.add(consultation)
        await session.flush()
        referral = Referral(
            patient_id=patient.id, referring_doctor_id=users["dr.li"].id,
            referring_hospital_id=hospitals["青山县人民医院"].id,
            partnership_id=(await session.exec(select(Partnership))).one().id,
            specialty_id=(await session.exec(select(Specialty))).first().id,
            target_hospital_id=hospitals["江南省人民医院"].id, target_specialist_id=users["dr.wang"].id,
            urgency=Urgency.URGENT, reason="Chest pain", state=state, consultation_id=consultation.id,
            submitted_at=BASE - timedelta(days=1))  # (sent: the receiving side sees it)
        session.add(referral)
        await session.flush()
        session.add(Appointment(referral_id=referral.id, specialist_id=users["dr.wang"].id, starts_at=BASE,
                                ends_at=BASE + timedelta(minutes=30), booked_by=users["coord.zhao"].id,
                                consultation_id=consultation.id))
        session.add(Consent(purpose=ConsentPurpose.RECORD_SHARING, template_id=template.id,
                            subject=ConsentSubject.PATIENT, identity=f"patient:{patient.id}", patient_id=patient.id,
                            name="张伟", referral_id=referral.id, method=ConsentMethod.VERBAL,
                            recorded_by=users["dr.li"].id, given_at=BASE - timedelta(days=1)))
        await session.commit()
        return referral.id


async def pdf_of(database: Database, tools: reports.ReportTools, row: ConsultationReport) -> bytes:
    """A version's record copy as sealed on disk, under the version's own key."""
    async with database.session() as session:
        own = await data_keys.key_of(session, tools.key, row.data_key_id)
    assert row.data_key_id is not None and own != tools.key, "sealed under a key of its own"
    return SealedReader(tools.root / row.file, own).read_all()


def text_of(pdf: bytes) -> str:
    return re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))


async def test_signing_completes_the_referral_with_a_signed_pdf_in_the_readers_language(
        database: Database, tools: reports.ReportTools) -> None:
    """The booked specialist's report completes the referral; its PDF is sealed on disk, signed, in the referring
    doctor's language (the deployment's default here: Chinese), and its hash is in the audit chain."""
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, await principal(session, "dr.wang"), referral_id, REPORT, tools=tools)
    async with database.session() as session:
        referral = await session.get(Referral, referral_id)
        consultation = await session.get(Consultation, referral.consultation_id)
    assert referral.state is ReferralState.COMPLETED and referral.opinion == REPORT.findings
    assert consultation.status.value == "completed"
    assert row.version == 1 and row.diagnosis_code == "I20.8" and row.locale == "zh-CN"
    pdf = await pdf_of(database, tools, row)
    text = text_of(pdf)
    for expected in ["会诊报告", "青山县人民医院", "江南省人民医院", "张伟", "I20.8", "已记录的同意",
                     "向合作医院提供病历", "口头告知医生，由医生记录", "(Asia/Shanghai,UTC+08:00)"]:
        assert expected in text, expected
    trail = await audit.trail(database)
    signed = [e for e in trail if e.action == "report.signed"]
    assert len(signed) == 1 and f'"sha256": "{row.pdf_sha256}"' in signed[0].detail
    assert "referral.complete" in {e.action for e in trail} and audit.check(trail) is None
    found = await reports.verification(database, await _who(database, "dr.li"), row.id, tools=tools)
    assert found.holds and found.check.signer == tools.signer.subject

    # The same facts, signed at the same time, in English for an English reader; its hash is in the trail too.
    li = await _who(database, "dr.li")
    _, shown, english = await reports.download(database, li, row.id, tools=tools, locale="en")
    assert shown == "en" and hashlib.sha256(english).hexdigest() in signed[0].detail
    text = text_of(english)
    for expected in ["Consultationreport", "Requestinghospital", "Otherformsofanginapectoris", "Sharingrecords"]:
        assert expected in text, expected
    found = await reports.verification(database, li, row.id, tools=tools, locale="en")
    assert found.holds and found.locale == "en"


async def _who(database: Database, username: str):  # noqa: ANN202
    async with database.session() as session:
        return await principal(session, username)


@pytest.mark.parametrize("username", ["dr.li", "coord.zhao", "dr.zhou"])
async def test_only_the_booked_specialist_signs(database: Database, tools: reports.ReportTools,
                                                username: str) -> None:
    """The referring doctor, the coordinator and a colleague of the specialist are refused; nothing changes."""
    referral_id = await booked(database)
    async with database.session() as session:
        who = await principal(session, username)
        with pytest.raises(Forbidden):
            await reports.sign(session, who, referral_id, REPORT, tools=tools)
    async with database.session() as session:
        assert (await session.get(Referral, referral_id)).state is ReferralState.IN_CONSULTATION
        assert (await session.exec(select(ConsultationReport))).all() == []


async def test_completing_without_a_report_is_refused(database: Database) -> None:
    """The old way in, the ``complete`` action, no longer completes a referral: only signing does."""
    referral_id = await booked(database)
    async with database.session() as session:
        with pytest.raises(ValidationFailed) as caught:
            await referrals.act(session, await principal(session, "dr.wang"), referral_id, ReferralAction.COMPLETE)
    assert "report" in caught.value.details["fields"]


async def test_a_report_is_signed_once_and_only_from_a_consultation(database: Database,
                                                                    tools: reports.ReportTools) -> None:
    """A second signing is 409 (amend instead); an unknown diagnosis is 422 and leaves the referral open."""
    referral_id = await booked(database)
    async with database.session() as session:
        wang = await principal(session, "dr.wang")
        with pytest.raises(ValidationFailed):
            await reports.sign(session, wang, referral_id, REPORT.model_copy(update={"diagnosis_code": "Q99.99"}),
                               tools=tools)
    async with database.session() as session:
        assert (await session.get(Referral, referral_id)).state is ReferralState.IN_CONSULTATION
        await reports.sign(session, wang, referral_id, REPORT, tools=tools)
    async with database.session() as session:
        with pytest.raises(Conflict):
            await reports.sign(session, wang, referral_id, REPORT, tools=tools)


async def test_amendments_keep_every_version(database: Database, tools: reports.ReportTools) -> None:
    """An amendment is version 2 superseding version 1, both signed and kept; only the latest is amended."""
    referral_id = await booked(database)
    async with database.session() as session:
        wang = await principal(session, "dr.wang")
        first = await reports.sign(session, wang, referral_id, REPORT, tools=tools)
    async with database.session() as session:
        second = await reports.amend(session, wang, first.id, REPORT.model_copy(update={"diagnosis_code": "I20.9"}),
                                     tools=tools)
    async with database.session() as session:
        with pytest.raises(Conflict):
            await reports.amend(session, wang, first.id, REPORT, tools=tools)
        with pytest.raises(Forbidden):
            await reports.amend(session, await principal(session, "dr.li"), second.id, REPORT, tools=tools)
        kept = await reports.list_for(session, await principal(session, "dr.li"), referral_id)
    assert [(r.version, r.diagnosis_code, r.supersedes_id) for r in kept] == [(1, "I20.8", None),
                                                                             (2, "I20.9", first.id)]
    assert first.pdf_sha256 != second.pdf_sha256
    async with database.session() as session:
        told = (await session.exec(select(Notification).where(Notification.kind == "report.amended"))).all()
    assert [(n.user_id, n.link) for n in told] == [((await _who(database, "dr.li")).user_id,
                                                    f"/referrals/{referral_id}#report")]
    assert "修订第1版" in text_of(await pdf_of(database, tools, second))
    for row in kept:
        assert (await reports.verification(database, await _who(database, "dr.li"), row.id, tools=tools)).holds


async def test_the_referring_doctor_acknowledges_once(database: Database, tools: reports.ReportTools) -> None:
    """dr.li acknowledges receipt (audited, once); the specialist cannot acknowledge their own report."""
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, await principal(session, "dr.wang"), referral_id, REPORT, tools=tools)
    async with database.session() as session:
        with pytest.raises(Forbidden):
            await reports.acknowledge(session, await principal(session, "dr.wang"), row.id)
        li = await principal(session, "dr.li")
        done = await reports.acknowledge(session, li, row.id)
        again = await reports.acknowledge(session, li, row.id)
    assert done.acknowledged_by == li.user_id and again.acknowledged_at == done.acknowledged_at
    async with database.session() as session:
        acks = (await session.exec(select(AuditEvent).where(AuditEvent.action == "report.acknowledged"))).all()
        told = (await session.exec(select(Notification).where(Notification.kind == "report.acknowledged"))).all()
    assert len(acks) == 1 and [n.user_id for n in told] == [row.author_id]


async def test_the_specialists_hospital_signs_with_its_own_pair(database: Database, tools: reports.ReportTools,
                                                                tmp_path: Path) -> None:
    """A hospital with a pair of its own in TELEMED_REPORT_SIGNING_DIR signs its specialists' reports with it."""
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    async with database.session() as session:
        wang = await principal(session, "dr.wang")
    signing._write_self_signed(pairs / f"{wang.hospital_id}.crt.pem", pairs / f"{wang.hospital_id}.key.pem")
    own = signing.load_hospitals(Settings.load(environ={"TELEMED_REPORT_SIGNING_DIR": str(pairs)}))
    tools = dataclasses.replace(tools, hospitals=own)
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, wang, referral_id, REPORT, tools=tools)
    pdf = await pdf_of(database, tools, row)
    by_own, by_default = [await asyncio.to_thread(signing.check, pdf, s) for s in (own[wang.hospital_id], tools.signer)]
    assert by_own.trusted and not by_default.trusted and row.signer_subject == own[wang.hospital_id].subject
    assert (await reports.verification(database, await _who(database, "dr.li"), row.id, tools=tools)).holds


async def test_verification_catches_a_file_replaced_on_disk(database: Database, tools: reports.ReportTools) -> None:
    """A validly signed PDF that is not the one recorded (another version's, swapped in) fails the hash check."""
    referral_id = await booked(database)
    async with database.session() as session:
        wang = await principal(session, "dr.wang")
        first = await reports.sign(session, wang, referral_id, REPORT, tools=tools)
    async with database.session() as session:
        second = await reports.amend(session, wang, first.id, REPORT, tools=tools)
    async with database.session() as session:
        own = await data_keys.key_of(session, tools.key, first.data_key_id)
    swapped = await pdf_of(database, tools, second)
    (tools.root / first.file).unlink()
    writer = SealedWriter(tools.root / first.file, own)  # sealed as the first's, but the second's PDF
    writer.write(swapped)
    writer.close()
    found = await reports.verification(database, await _who(database, "dr.li"), first.id, tools=tools)
    assert found.check.holds and not found.hash_matches and not found.holds


async def test_telemed_report_verify(database: Database, tools: reports.ReportTools, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI says a downloaded report holds, and who signed it; a changed copy, or an unrecorded one, does not."""
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, await principal(session, "dr.wang"), referral_id, REPORT, tools=tools)
    pdf = await pdf_of(database, tools, row)
    good, appended = tmp_path / "good.pdf", tmp_path / "appended.pdf"
    good.write_bytes(pdf)
    appended.write_bytes(pdf + b"\n% a line added after signing\n")
    monkeypatch.setenv("TELEMED_DATABASE_URL", database.url)
    data = str(tmp_path / "var")

    def verify(path: Path) -> tuple[int, str]:
        code = main(["report", "verify", str(path), "--data-dir", data])
        return code, capsys.readouterr().out

    code, out = await asyncio.to_thread(verify, good)
    assert code == 0 and "The report holds." in out and tools.signer.subject in out
    assert f"report {row.id}, version 1 of referral {referral_id}; in the audit trail yes" in out
    code, out = await asyncio.to_thread(verify, appended)
    assert code == 1 and "Recorded:   NO" in out and "does NOT hold" in out


@pytest.mark.parametrize("field", ["findings", "diagnosis_code", "recommendations"])
def test_control_characters_are_refused(field: str) -> None:
    """What is signed is what prints: a NUL or an escape sequence in any field is a 422, line breaks are kept."""
    with pytest.raises(pydantic.ValidationError, match="only printable text"):
        ReportInput.model_validate({**REPORT.model_dump(), field: "x\x00y"})
    assert ReportInput.model_validate({**REPORT.model_dump(), "findings": "a\nb\tc"}).findings == "a\nb\tc"


async def test_two_amendments_of_the_same_version_one_is_told_it_came_late(
        database: Database, tools: reports.ReportTools, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two specialists' browsers amending version 1 at once both read it as the latest: the second to write
    version 2 meets the unique (referral, version) key. That once was a 500; it is the same 409
    ``report-superseded`` as coming a moment later, and leaves no sealed file behind."""
    referral_id = await booked(database)
    async with database.session() as session:
        wang = await principal(session, "dr.wang")
        first = await reports.sign(session, wang, referral_id, REPORT, tools=tools)
    async with database.session() as session:
        await reports.amend(session, wang, first.id, REPORT, tools=tools)
    directory = tools.root / reports.REPORTS_DIR / str(referral_id)
    files = sorted(directory.iterdir())

    async def as_read_before_the_other_wrote(session: object, referral: int) -> list:
        return [first]
    monkeypatch.setattr(reports, "versions", as_read_before_the_other_wrote)
    async with database.session() as session:
        with pytest.raises(Conflict) as late:
            await reports.amend(session, wang, first.id, REPORT, tools=tools)
    assert late.value.code == "report-superseded"
    assert sorted(directory.iterdir()) == files, "no file without its row"


async def test_the_purge_deletes_a_reports_pdfs_and_key_after_fifteen_years_unless_held(
        database: Database, tools: reports.ReportTools) -> None:
    """A signed report's PDFs (record copy and other languages) are kept with the records for 15 years, not the
    recordings' 3; then the purge deletes them and the version's key (a backup of the files cannot be read), the
    download says they were deleted, and the row and its hash stay. A legal hold on the patient keeps them."""
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, await principal(session, "dr.wang"), referral_id, REPORT, tools=tools)
    async with database.session() as session:
        auditor = await principal(session, "auditor")
        referral = await session.get(Referral, referral_id)
        hold = await holds.place(session, auditor, PlaceHold(patient_id=referral.patient_id, reason="court order"))
    async with database.session() as session:
        renditions = (await session.exec(select(ReportRendition).where(ReportRendition.report_id == row.id))).all()
    files = [tools.root / row.file, *(tools.root / r.file for r in renditions)]
    assert len(files) == 2 and all(f.exists() for f in files)
    periods = purge.periods_of(3 * 365, 15 * 365)
    later = utcnow() + timedelta(days=15 * 365 + 2)

    early = await purge.run(database, tools.root, periods, now=utcnow() + timedelta(days=4 * 365))
    assert early.purged == [] and early.held == [], "not after the recordings' three years"
    kept = await purge.run(database, tools.root, periods, now=later)
    assert kept.purged == [] and [(p["kind"], p["id"]) for p in kept.held] == [("report", row.id)]
    assert all(f.exists() for f in files), "held: untouched"
    async with database.session() as session:
        await holds.release(session, auditor, hold.id, ReleaseHold(reason="case closed"))
    outcome = await purge.run(database, tools.root, periods, now=later)
    assert [(p["kind"], p["id"]) for p in outcome.purged] == [("report", row.id)]
    assert not any(f.exists() for f in files)
    async with database.session() as session:
        gone = await session.get(ConsultationReport, row.id)
        assert gone.purged_at is not None and gone.data_key_id is None and gone.pdf_sha256 == row.pdf_sha256
        assert await session.get(DataKey, row.data_key_id) is None
    with pytest.raises(NotFound, match="retention period"):
        await reports.download(database, await _who(database, "dr.li"), row.id, tools=tools, locale="en")
    trail = await audit.trail(database)
    purged = [e for e in trail if e.action == "retention.purged"]
    assert [e.subject for e in purged] == [f"report:{row.id}"] and row.pdf_sha256 in purged[0].detail
    assert audit.check(trail) is None


async def test_a_report_file_changed_on_disk_is_said_so_not_a_server_error(
        database: Database, tools: reports.ReportTools) -> None:
    """A stored PDF whose sealed bytes were changed (or swapped for another version's, sealed under another key)
    fails its integrity check: verification says it does not hold, and a download is refused with
    ``report-tampered``, never a 500."""
    referral_id = await booked(database)
    async with database.session() as session:
        row = await reports.sign(session, await principal(session, "dr.wang"), referral_id, REPORT, tools=tools)
    path = tools.root / row.file
    sealed = bytearray(path.read_bytes())
    sealed[-40] ^= 0xFF
    path.write_bytes(bytes(sealed))
    li = await _who(database, "dr.li")
    found = await reports.verification(database, li, row.id, tools=tools)
    assert not found.holds and not found.hash_matches and not found.check.signed
    with pytest.raises(Unavailable) as refused:
        await reports.download(database, li, row.id, tools=tools)
    assert refused.value.code == "report-tampered"
