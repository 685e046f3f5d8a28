"""The report's PDF in both languages: every fact and label is there when the text is extracted back out,
Chinese included (the CJK font is embedded), and times are on the requesting hospital's labelled clock."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from server.reports.render import Consent, ReportFacts, on_clock, render

FACTS = ReportFacts(
    report_id=7, version=2, referral_id=3, requesting_hospital="青山县人民医院", requesting_zone="Asia/Shanghai",
    consulting_hospital="江南省人民医院", patient="张伟", participants=("李明 (county doctor)", "王芳 (specialist)"),
    consultation_at=datetime(2026, 12, 5, 6, 30, tzinfo=UTC), signed_at=datetime(2026, 12, 5, 7, 15, tzinfo=UTC),
    specialist="王芳", findings="劳力性胸痛，V4-V6导联ST段压低。", diagnosis_code="I20.8",
    diagnosis_text="其他形式的心绞痛", recommendations="冠状动脉造影；阿司匹林100 mg每日一次。",
    consents=(Consent("Record sharing", datetime(2026, 12, 1, 2, 0, tzinfo=UTC), "verbal"),), supersedes_version=1)


def text_of(pdf: bytes) -> str:
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


@pytest.mark.parametrize(("locale", "labels"), [
    ("en", ["Consultationreport", "Requestinghospital", "Consultinghospital", "Participants", "Consentonrecord",
            "Findings", "Diagnosis", "Recommendations", "amendsversion1"]),
    ("zh-CN", ["会诊报告", "申请医院", "会诊医院", "参会者", "患者", "已记录的同意", "检查所见", "诊断", "建议",
               "修订第1版"]),
])
def test_every_fact_reads_back_in_the_readers_language(locale: str, labels: list[str]) -> None:
    """Labels in the reader's language and the facts as written (Chinese text embedded, not boxes)."""
    text = text_of(render(FACTS, locale))
    facts = ["青山县人民医院", "江南省人民医院", "张伟", "李明", "王芳", "I20.8", "其他形式的心绞痛",
             "劳力性胸痛，V4-V6导联ST段压低。", "阿司匹林100mg每日一次", "2026-12-0514:30(Asia/Shanghai,UTC+08:00)"]
    for expected in [*labels, *facts]:
        assert expected in text, (locale, expected)


def test_times_are_on_the_requesting_hospitals_clock() -> None:
    """The zone is named beside the time, so nobody reads Beijing time as their own."""
    noon = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert on_clock(noon, "Asia/Urumqi") == "2026-07-01 18:00 (Asia/Urumqi, UTC+06:00)"


def test_a_long_report_flows_onto_more_pages() -> None:
    """Findings longer than a page continue on the next one instead of being cut off."""
    long = FACTS.__class__(**{**FACTS.__dict__, "findings": "心电图改变。" * 800 + "结束标记"})
    pdf = render(long, "zh-CN")
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 1 and "结束标记" in text_of(pdf)
