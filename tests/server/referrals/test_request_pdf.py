"""The consultation request's PDF in both languages: every field and label comes back out when the text is
extracted (Chinese as written), times on the reader's clock with the zone named, and a withheld request
carries nothing of the patient."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.models import ConsentMethod, Sex, TitleWanted, Urgency
from server.referrals.request import Clinical, RequestFacts, SharingConsent
from server.referrals.request_pdf import render

from ...support.pdf import pdf_text

CLINICAL = Clinical(
    patient_id=1, patient_name="张伟", sex=Sex.MALE, birth_year=1958, reason="胸痛三天",
    question="是否需要冠脉造影？", working_diagnosis="不稳定型心绞痛", diagnosis_code="I20.0",
    diagnosis_title_en="Unstable angina", diagnosis_title_zh="不稳定型心绞痛", history="高血压十年，吸烟四十年。",
    results="心电图：V4-V6导联ST段压低。肌钙蛋白阴性。", summary="68岁男性，活动后胸痛。")
FACTS = RequestFacts(
    referral_id=7, state="submitted", urgency=Urgency.URGENT, requesting_hospital="青山县人民医院",
    consulting_hospital="江南省人民医院", requesting_doctor="李明", specialty_zh="心血管内科",
    specialty_en="Cardiology", title_wanted=TitleWanted.ASSOCIATE_CHIEF, target_specialist="王芳",
    created_at=datetime(2030, 5, 3, 6, 0, tzinfo=UTC), submitted_at=datetime(2030, 5, 3, 6, 30, tzinfo=UTC),
    consent=SharingConsent("given", datetime(2030, 5, 3, 6, 25, tzinfo=UTC), ConsentMethod.VERBAL, "李明", None, 1),
    clinical=CLINICAL)
PRINTED = datetime(2030, 5, 4, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("locale", "labels"), [
    ("zh-CN", ["会诊申请单", "申请医生", "会诊目的", "初步诊断", "相关病史", "相关检查检验结果", "副主任医师",
               "患者对提供病历信息的同意", "已同意"]),
    ("en", ["Consultationrequest", "Requestingdoctor", "Questionforthespecialist", "Workingdiagnosis",
            "Relevanthistory", "Relevantresults", "Associatechiefphysician", "Given:"]),
])
def test_every_field_of_the_request_is_in_the_pdf(locale: str, labels: list[str]) -> None:
    """Guards the request's record: each Chinese field, the hospitals, the doctor and the code extract back
    out as written, under labels in the reader's language."""
    text = pdf_text(render(FACTS, locale, "Asia/Shanghai", printed_at=PRINTED))
    for value in ("青山县人民医院", "江南省人民医院", "李明", "张伟", "胸痛三天", "是否需要冠脉造影？",
                  "不稳定型心绞痛", "I20.0", "高血压十年，吸烟四十年。", "心电图：V4-V6导联ST段压低。肌钙蛋白阴性。",
                  "68岁男性，活动后胸痛。", *labels):
        assert value in text, (value, locale)


def test_times_are_on_the_readers_clock_with_the_zone_named() -> None:
    """A reader in Urumqi sees the submission time on their own clock (06:30 UTC printed as 12:30) with the zone and
    its offset named, not on Shanghai's clock."""
    text = pdf_text(render(FACTS, "en", "Asia/Urumqi", printed_at=PRINTED))
    assert "2030-05-0312:30(Asia/Urumqi,UTC+06:00)" in text, "submitted 06:30 UTC, read in Urumqi"
    assert "2030-05-0314:30" not in text, "not on another hospital's clock"


def test_a_withheld_request_carries_nothing_of_the_patient() -> None:
    """The receiving side after the patient withdrew: the heading and the consent's status, no patient."""
    withheld = RequestFacts(**{**FACTS.__dict__, "clinical": None,
                               "consent": SharingConsent("withdrawn", FACTS.consent.given_at, ConsentMethod.VERBAL,
                                                         "李明", datetime(2030, 5, 3, 8, 0, tzinfo=UTC), 1)})
    text = pdf_text(render(withheld, "zh-CN", "Asia/Shanghai", printed_at=PRINTED))
    assert "已撤回" in text and "江南省人民医院" in text and "副主任医师" in text
    for value in ("张伟", "胸痛三天", "是否需要冠脉造影？", "高血压", "I20.0"):
        assert value not in text, value
