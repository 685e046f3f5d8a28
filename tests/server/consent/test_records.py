"""Consent rules and templates: which records may exist, and texts that cannot change once published."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.consent import templates as consent_templates
from server.consent.rules import Consenter, How, Scope, check
from server.db import Database
from server.errors import SettingsError, ValidationFailed
from server.models import ConsentMethod, ConsentPurpose, ConsentSubject

PATIENT = Consenter(ConsentSubject.PATIENT, "patient:1", "张伟", patient_id=1)
DOCTOR = Consenter(ConsentSubject.PARTICIPANT, "user:1", "李明", user_id=1)
CLICKED = How(ConsentMethod.CLICKED)
VERBAL = How(ConsentMethod.VERBAL, recorded_by=1)
CONSULTATION = Scope(consultation_id=1)
REFERRAL = Scope(referral_id=1)


@pytest.mark.parametrize(("purpose", "consenter", "scope", "how", "problem"), [
    (ConsentPurpose.VIDEO, PATIENT, CONSULTATION, CLICKED, None),
    (ConsentPurpose.VIDEO, PATIENT, CONSULTATION, VERBAL, None),
    (ConsentPurpose.VIDEO, DOCTOR, CONSULTATION, CLICKED, "subject"),
    (ConsentPurpose.VIDEO, PATIENT, REFERRAL, CLICKED, "consultation"),
    (ConsentPurpose.RECORDING, DOCTOR, CONSULTATION, CLICKED, None),
    (ConsentPurpose.RECORDING, PATIENT, CONSULTATION, VERBAL, None),
    (ConsentPurpose.RECORDING, DOCTOR, CONSULTATION, VERBAL, "method"),
    (ConsentPurpose.RECORDING, PATIENT, Scope(), CLICKED, "consultation"),
    (ConsentPurpose.RECORD_SHARING, PATIENT, REFERRAL, VERBAL, None),
    (ConsentPurpose.RECORD_SHARING, PATIENT, CONSULTATION, CLICKED, None),  # one set up without a referral
    (ConsentPurpose.RECORD_SHARING, PATIENT, Scope(), CLICKED, "referral"),
    (ConsentPurpose.RECORD_SHARING, DOCTOR, REFERRAL, CLICKED, "subject"),
    (ConsentPurpose.RECORD_SHARING, PATIENT, REFERRAL, How(ConsentMethod.VERBAL), "recorded_by"),
])
def test_consent_rules(purpose: ConsentPurpose, consenter: Consenter, scope: Scope, how: How,
                       problem: str | None) -> None:
    """Each row: which consent records may exist. Consent to video is the patient's, for a consultation, clicked or
    verbal; to recording, for a consultation, a participant's own only by clicking; to sharing records, the patient's,
    for a referral or a consultation; a verbal consent names who recorded it. A row that breaks a rule is refused
    naming the field at fault."""
    if problem is None:
        check(purpose, consenter, scope, how)
        return
    with pytest.raises(ValidationFailed) as caught:
        check(purpose, consenter, scope, how)
    assert problem in caught.value.details["fields"]


def test_every_purpose_has_a_text_in_both_languages() -> None:
    """The consent texts shipped cover every purpose in Chinese and English, each with a title and a body long enough
    (over 120 characters) to consent to."""
    texts = consent_templates.read_texts()
    assert {(t.purpose, t.locale) for t in texts} == {(p, loc) for p in ConsentPurpose for loc in ("zh_CN", "en")}
    for text in texts:
        assert text.title and len(text.body) > 120, f"{text.purpose} {text.locale} is too thin to consent to"


def _write(directory: Path, name: str, text: str = "# Title\n\nBody of the text.") -> None:
    (directory / name).write_text(text, encoding="utf-8")


def _complete(directory: Path) -> None:
    for purpose in ConsentPurpose:
        for locale in ("zh_CN", "en"):
            _write(directory, f"{purpose}.v1.{locale}.md")


@pytest.mark.parametrize(("name", "text", "complaint"), [
    ("video.v2.en.md", "# Title\n\nBody", "missing in zh_CN"),
    ("video.v1.fr.md", "# Title\n\nBody", "named <purpose>.v<version>.<locale>.md"),
    ("marketing.v1.en.md", "# Title\n\nBody", "named <purpose>.v<version>.<locale>.md"),
    ("video.v0.en.md", "# Title\n\nBody", "named <purpose>.v<version>.<locale>.md"),
    ("video.v1.en.md", "No title line\n\nBody", "first line is the title"),
])
def test_malformed_texts_stop_the_start(tmp_path: Path, name: str, text: str, complaint: str) -> None:
    """Each row: consent texts with a version missing in one language, an unknown language or purpose, version 0, or no
    title line are refused with a settings error saying what is wrong, which stops the start."""
    _complete(tmp_path)
    _write(tmp_path, name, text)
    with pytest.raises(SettingsError, match=complaint.replace("<", ".").replace(">", ".")):
        consent_templates.read_texts(tmp_path)


async def test_a_published_text_can_only_be_replaced_by_a_new_version(tmp_path: Path) -> None:
    """Publishing writes each text once (six, then none); a published text edited in place is refused, since people
    consented to its words, while a new version is published beside it; the newest version in the reader's language is
    current, and English serves a language without one."""
    _complete(tmp_path)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await database.upgrade()
    try:
        assert await consent_templates.publish(database, consent_templates.read_texts(tmp_path)) == 6
        assert await consent_templates.publish(database, consent_templates.read_texts(tmp_path)) == 0
        _write(tmp_path, "video.v1.en.md", "# Title\n\nA quietly changed body.")
        with pytest.raises(SettingsError, match="differs from the one published"):
            await consent_templates.publish(database, consent_templates.read_texts(tmp_path))
        _write(tmp_path, "video.v1.en.md")
        _write(tmp_path, "video.v2.en.md", "# Title\n\nThe changed body, as version 2.")
        _write(tmp_path, "video.v2.zh_CN.md", "# 标题\n\n第二版。")
        assert await consent_templates.publish(database, consent_templates.read_texts(tmp_path)) == 2
        async with database.session() as session:
            newest = await consent_templates.current(session, ConsentPurpose.VIDEO, "zh-CN")
            fallback = await consent_templates.current(session, ConsentPurpose.VIDEO, "fr")
        assert (newest.version, newest.locale, fallback.locale) == (2, "zh_CN", "en")
    finally:
        await database.close()
