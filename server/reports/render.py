"""The consultation report as a PDF, in the reader's language: pure, facts in and bytes out.

Chinese is set in WenQuanYi Micro Hei, a TrueType collection shipped by the ``paperang-p2-fonts-cjk`` package
(a declared dependency, so a fresh ``pip install`` provides it): TrueType embeds in any PDF library and its
text extracts back as written, where the CFF-outlined Noto CJK fonts on PyPI came back letter-spaced. Latin
text is set in the same face, so a report that mixes the two languages (a Chinese name in an English report)
reads in one face.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

from ..i18n import translations

FONT = "wqy"


def font_path() -> str:
    return str(resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc")


@dataclass(frozen=True)
class Consent:
    purpose: str  # already in words, in the report's language
    given_at: datetime
    how: str  # "clicked by the patient" / "verbal, recorded by Dr …", in words


@dataclass(frozen=True)
class ReportFacts:
    """Everything a report shows, as the service gathered it."""

    report_id: int
    version: int
    referral_id: int
    requesting_hospital: str
    requesting_zone: str  # IANA zone of the requesting hospital: the report's times are on its clock
    consulting_hospital: str
    patient: str
    participants: tuple[str, ...]  # "Name (role)", already in words
    consultation_at: datetime | None  # the consultation's start (or its planned start), aware
    signed_at: datetime
    specialist: str
    findings: str
    diagnosis_code: str
    diagnosis_text: str
    recommendations: str
    consents: tuple[Consent, ...]
    supersedes_version: int | None = None


def on_clock(at: datetime, zone: str) -> str:
    """A time on the requesting hospital's clock, labelled with the zone (its name and its offset)."""
    local = at.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} ({zone}, UTC{offset[:3]}:{offset[3:]})"


class FormPdf:
    """An A4 form in one language (the report, the consultation request): the CJK font, lines broken as the
    language breaks them, label-and-value rows and titled sections."""

    def __init__(self, title: str, locale: str) -> None:
        self.wrap = WrapMode.CHAR if locale.startswith("zh") else WrapMode.WORD
        self.pdf = pdf = FPDF(format="A4")
        pdf.set_title(title)
        pdf.set_creator("telemed")
        pdf.set_lang("zh-CN" if locale.startswith("zh") else "en")
        pdf.set_auto_page_break(True, margin=18)
        pdf.add_font(FONT, "", font_path())
        pdf.add_page()

    def row(self, label: str, value: str) -> None:
        pdf = self.pdf
        pdf.set_font(FONT, size=10)
        pdf.set_text_color(90, 90, 90)
        pdf.cell(48, 6, label)
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 6, value or "—", wrapmode=self.wrap, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def section(self, title: str, text: str) -> None:
        pdf = self.pdf
        pdf.ln(3)
        pdf.set_font(FONT, size=13)
        pdf.cell(0, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(180, 180, 180)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1)
        pdf.set_font(FONT, size=11)
        pdf.multi_cell(0, 6, text or "—", wrapmode=self.wrap, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render(facts: ReportFacts, locale: str) -> bytes:
    """The report's PDF (not yet signed), every label in ``locale``."""
    _ = translations(locale).gettext
    form = FormPdf(_("Consultation report"), locale)
    pdf, wrap = form.pdf, form.wrap
    pdf.set_font(FONT, size=18)
    pdf.cell(0, 10, _("Consultation report"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=9)
    version = _("Report {report} · version {version} · referral {referral}").format(
        report=facts.report_id, version=facts.version, referral=facts.referral_id)
    if facts.supersedes_version is not None:
        version += " · " + _("amends version {version}").format(version=facts.supersedes_version)
    pdf.cell(0, 6, version, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    row, section = form.row, form.section

    row(_("Requesting hospital"), facts.requesting_hospital)
    row(_("Consulting hospital"), facts.consulting_hospital)
    row(_("Patient"), facts.patient)
    row(_("Participants"), "; ".join(facts.participants))
    row(_("Consultation"), on_clock(facts.consultation_at, facts.requesting_zone) if facts.consultation_at
        else _("No video consultation was held"))
    row(_("Signed"), on_clock(facts.signed_at, facts.requesting_zone))
    row(_("Consulting specialist"), facts.specialist)
    consents = [f"{c.purpose}: {on_clock(c.given_at, facts.requesting_zone)}, {c.how}" for c in facts.consents]
    row(_("Consent on record"), "\n".join(consents) or _("None on record"))
    section(_("Findings"), facts.findings)
    section(_("Diagnosis"), f"{facts.diagnosis_code}  {facts.diagnosis_text}")
    section(_("Recommendations"), facts.recommendations)
    pdf.ln(6)
    pdf.set_font(FONT, size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(0, 5, _("This report is signed digitally by the consulting specialist's hospital. A printed copy "
                           "proves nothing by itself: check the signature of the PDF file."), wrapmode=wrap,
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
