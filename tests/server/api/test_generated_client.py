"""An integrator's view of the API: a Python client generated from /api/openapi.json by openapi-python-client
drives a real server through a referral's whole journey with its typed functions and models."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.demo import DEMO_PASSWORD

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "telemed_generated_client"
# The generator reads JSON answers and application/octet-stream ones; told so, it hands back the PDF, the
# attachments and the recordings as bytes (the README's "Generating a client" gives the same file).
CONFIG = {"content_type_overrides": {kind: "application/octet-stream" for kind in (
    "application/pdf", "image/png", "image/jpeg", "image/webp", "application/dicom", "video/webm", "video/mp4")},
          "post_hooks": []}  # no formatting of the generated code: it is imported, not read


@pytest.fixture
def generate(tmp_path: Path) -> Iterator[Any]:
    """Generates the client from a document into tmp_path (failing on any warning of the generator: a
    schema it cannot read) and imports it; forgets it afterwards."""
    def run(document: dict[str, Any]) -> ModuleType:
        (tmp_path / "openapi.json").write_text(json.dumps(document))
        (tmp_path / "config.json").write_text(json.dumps(CONFIG))
        done = subprocess.run(
            [str(GENERATOR), "generate", "--path", str(tmp_path / "openapi.json"), "--meta", "none",
             "--output-path", str(tmp_path / PACKAGE), "--config", str(tmp_path / "config.json"),
             "--fail-on-warning"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, f"the generator refused the document:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        sys.path.insert(0, str(tmp_path))
        importlib.invalidate_caches()
        return importlib.import_module(PACKAGE)
    yield run
    sys.path.remove(str(tmp_path)) if str(tmp_path) in sys.path else None
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def part(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_carries_a_referral_from_patient_to_acknowledged_report(
        client: TestClient, generate: Any) -> None:
    """Guards the document as a contract an integrator builds on: it generates a client without a warning,
    and that client's typed functions log in, register a patient, create and submit a referral, accept it,
    find a free slot and book it, sign the report, acknowledge it and fetch its PDF, each answer read into
    the generated models (the fixture's server also checks every answer against the document)."""
    document = await (await client.get("/api/openapi.json")).json()
    generate(document)
    api = {name: part(f"api.{name}") for name in ("auth", "patients", "referrals", "slots", "reports")}
    models, types = part("models"), part("types")
    base = str(client.make_url("")).rstrip("/")

    async def log_in(username: str) -> tuple[Any, Any]:
        login = importlib.import_module(f"{PACKAGE}.api.auth.login")
        token = await login.asyncio(client=part("client").Client(base_url=base),
                                    body=models.LoginRequest(username=username, password=DEMO_PASSWORD))
        assert isinstance(token, models.TokenShown), token
        return part("client").AuthenticatedClient(base_url=base, token=token.access_token), token.user

    def op(tag: str, name: str) -> ModuleType:
        assert tag in api
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")

    li, li_user = await log_in("dr.li")
    zhao, _ = await log_in("coord.zhao")
    wang, wang_user = await log_in("dr.wang")
    assert li_user.role == models.Role.COUNTY_DOCTOR and wang_user.hospital_id

    patient = await op("patients", "register_patient").asyncio(client=li, body=models.NewPatient(
        name="Zhang Wei", sex=models.Sex.MALE, birth_year=1957))
    assert isinstance(patient, models.PatientShown) and patient.name == "Zhang Wei"
    found = await op("patients", "list_patients").asyncio(client=li, name="Zhang")
    assert isinstance(found, models.PatientPage) and patient.id in [p.id for p in found.patients]

    draft = await op("referrals", "create_referral").asyncio(client=li, body=models.ReferralCreate(
        patient_id=patient.id, specialty="cardiology", urgency=models.Urgency.URGENT,
        reason="Chest pain on exertion", summary="ST depression in V4-V6.",
        question="Is there myocardial ischaemia?", working_diagnosis="Stable angina?", diagnosis_code="I20.8",
        title_wanted=models.TitleWanted.ASSOCIATE_CHIEF,
        target_hospital_id=wang_user.hospital_id, target_specialist_id=wang_user.id, submit=False,
        sharing_consent="verbal"))
    assert isinstance(draft, models.ReferralDetail), draft
    assert draft.state == models.ReferralState.DRAFT and models.ReferralAction.SUBMIT in draft.actions
    act = op("referrals", "act_on_referral")
    submitted = await act.asyncio(referral_id=draft.id, client=li,
                                  body=models.ReferralActionBody(action=models.ReferralAction.SUBMIT))
    assert isinstance(submitted, models.ReferralDetail) and submitted.state == models.ReferralState.SUBMITTED

    inbox = await op("referrals", "list_referrals").asyncio(client=zhao, inbox=True)
    assert isinstance(inbox, models.ReferralList) and draft.id in [r.id for r in inbox.referrals]
    accepted = await act.asyncio(referral_id=draft.id, client=zhao,
                                 body=models.ReferralActionBody(action=models.ReferralAction.ACCEPT))
    assert isinstance(accepted, models.ReferralDetail) and accepted.can_book

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    slots = await op("slots", "free_slots").asyncio(client=zhao, specialty="cardiology", date=tomorrow, days=7)
    assert isinstance(slots, models.FreeSlots), slots
    [wangs, *_] = [s for s in slots.specialists if s.specialist.id == wang_user.id]
    slot = wangs.slots[0]
    assert isinstance(slot.starts_at, datetime)
    booked = await op("referrals", "book_appointment").asyncio(
        referral_id=draft.id, client=zhao, body=models.Booking(specialist_id=wang_user.id, starts_at=slot.starts_at))
    assert isinstance(booked, models.ReferralDetail), booked
    assert booked.state == models.ReferralState.SCHEDULED and booked.appointment.starts_at == slot.starts_at

    asked = await op("referrals", "get_request").asyncio(referral_id=draft.id, client=wang)
    assert isinstance(asked, models.RequestShown), asked
    assert asked.question == "Is there myocardial ischaemia?" and asked.working_diagnosis.code == "I20.8"
    assert asked.title_wanted == models.TitleWanted.ASSOCIATE_CHIEF and asked.sharing_consent.status == "given"
    mine = await op("referrals", "get_referral").asyncio(referral_id=draft.id, client=wang)
    assert mine.can_sign_report and models.ReferralAction.COMPLETE not in mine.actions
    signed = await op("referrals", "sign_report").asyncio(referral_id=draft.id, client=wang, body=models.ReportInput(
        findings="Stable angina.", diagnosis_code="I20.8", recommendations="Exercise ECG in 4 weeks."))
    assert isinstance(signed, models.ReportShown), signed
    assert signed.diagnosis.code == "I20.8" and signed.acknowledged_at is None

    reports = await op("referrals", "list_reports").asyncio(referral_id=draft.id, client=li)
    assert isinstance(reports, models.ReportList) and [r.id for r in reports.reports] == [signed.id]
    acknowledged = await op("reports", "acknowledge_report").asyncio(report_id=signed.id, client=li)
    assert isinstance(acknowledged, models.ReportShown)
    assert acknowledged.acknowledged_by == li_user.id and isinstance(acknowledged.acknowledged_at, datetime)
    done = await op("referrals", "get_referral").asyncio(referral_id=draft.id, client=li)
    assert done.state == models.ReferralState.COMPLETED

    pdf = await op("reports", "download_report").asyncio(report_id=signed.id, client=li)
    assert isinstance(pdf, types.File) and pdf.payload.read().startswith(b"%PDF-")
