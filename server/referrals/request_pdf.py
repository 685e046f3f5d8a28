"""The consultation request (会诊申请单) as a PDF, laid out like the paper form, in the reader's language and
on their hospital's clock: pure, facts in and bytes out. Set in the report PDF's face
(``reports/render.py``), so Chinese extracts back as written."""

from __future__ import annotations

from datetime import datetime

from fpdf.enums import XPos, YPos

from ..i18n import translations
from ..reports.render import FONT, FormPdf, on_clock
from .request import CONSENT_WORDS, METHOD_WORDS, SEX_WORDS, TITLE_WORDS, URGENCY_WORDS, RequestFacts


def render(facts: RequestFacts, locale: str, zone: str, *, printed_at: datetime) -> bytes:
    """The request's PDF, every label in ``locale`` and every time on ``zone``'s clock, labelled."""
    _ = translations(locale).gettext
    form = FormPdf(_("Consultation request"), locale)
    pdf, wrap = form.pdf, form.wrap
    pdf.set_font(FONT, size=12)
    pdf.cell(0, 7, facts.consulting_hospital, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=18)
    pdf.cell(0, 10, _("Consultation request"), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=9)
    pdf.cell(0, 6, _("Referral {referral}").format(referral=facts.referral_id), align="C",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    row, section = form.row, form.section

    row(_("Requesting hospital"), facts.requesting_hospital)
    row(_("Requesting doctor"), facts.requesting_doctor)
    row(_("Consulting hospital"), facts.consulting_hospital)
    row(_("Specialty wanted"), facts.specialty(locale))
    row(_("Title wanted"), _(TITLE_WORDS[facts.title_wanted]))
    if facts.target_specialist:
        row(_("Specialist asked for"), facts.target_specialist)
    row(_("Urgency"), _(URGENCY_WORDS[facts.urgency]))
    row(_("Requested"), on_clock(facts.submitted_at or facts.created_at, zone))
    c = facts.clinical
    if c is not None:
        born = _("born {year}").format(year=c.birth_year) if c.birth_year else ""
        row(_("Patient"), " · ".join(p for p in (c.patient_name, _(SEX_WORDS[c.sex]), born) if p))
    consent = facts.consent
    status = _(CONSENT_WORDS[consent.status])
    if consent.given_at is not None and consent.method is not None:
        how = _(METHOD_WORDS[consent.method]) % {"doctor": consent.recorded_by or "—"}
        status += "\n" + _("Given {when}, {how}").format(when=on_clock(consent.given_at, zone), how=how)
    if consent.withdrawn_at is not None:
        status += "\n" + _("Withdrawn {when}").format(when=on_clock(consent.withdrawn_at, zone))
    row(_("Patient's consent to sharing"), status)
    if c is None:
        section(_("Clinical content"), _("The patient's records are withheld from your hospital: they have not "
                                         "consented to sharing them with it."))
    else:
        section(_("Reason for referral"), c.reason)
        section(_("Question for the specialist"), c.question)
        diagnosis = c.working_diagnosis
        if c.diagnosis_code:
            diagnosis += f"\n{_('ICD-10')}: {c.diagnosis_code} {c.diagnosis_title(locale)}".rstrip()
        section(_("Working diagnosis"), diagnosis.strip())
        section(_("Relevant history"), c.history)
        section(_("Relevant results"), c.results)
        section(_("Clinical summary"), c.summary)
    pdf.ln(6)
    pdf.set_font(FONT, size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.multi_cell(0, 5, _("Printed {when} from the telemedicine platform's record of this referral.").format(
        when=on_clock(printed_at, zone)), wrapmode=wrap, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
