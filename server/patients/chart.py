"""A patient's chart as one viewer may see it: the record (a view, audited), and the patient's
consultations and referrals, each only if the rules let the viewer at it and as disclosure allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import zones
from ..consultations import service as consultations
from ..consultations.service import ConsultationView
from ..models import Consultation, Patient, Referral
from ..permissions import Principal, can_view_consultation
from ..referrals import views as referral_views
from ..referrals.service import can_view, live_appointment
from ..settings import DEFAULT_TIMEZONE
from . import records


@dataclass(frozen=True)
class Chart:
    patient: Patient
    shown: dict[str, Any]  # the record as this viewer sees it (``records.shown_to``)
    own_hospital: bool  # the patient is registered at the viewer's hospital
    zone: str  # the viewer's hospital's time zone, to show times in
    consultations: list[ConsultationView]  # newest first
    referrals: list[dict[str, Any]]  # as ``referrals.views.describe_many``, newest first


async def chart(session: AsyncSession, who: Principal, patient_id: int, fallback: str = DEFAULT_TIMEZONE) -> Chart:
    """The patient's chart, to those who may see the record (403/404 otherwise); the view is audited."""
    patient = await records.view(session, who, patient_id, via="chart")
    ids = (await session.exec(select(Consultation.id).where(Consultation.patient_id == patient_id)
                              .order_by(col(Consultation.planned_start).desc()))).all()
    loaded = [await consultations.load(session, i) for i in ids if i is not None]
    seen = await consultations.disclosed(session, who, [v for v in loaded if can_view_consultation(who, v.scope)])
    rows = (await session.exec(select(Referral).where(Referral.patient_id == patient_id)
                               .order_by(col(Referral.created_at).desc()))).all()
    visible = [r for r in rows if r.id is not None and can_view(who, r, await live_appointment(session, r.id))]
    return Chart(patient=patient, shown=records.shown_to(who, patient),
                 own_hospital=who.hospital_id == patient.hospital_id,
                 zone=await zones.reader_zone(session, who, fallback), consultations=seen,
                 referrals=await referral_views.describe_many(session, who, visible))
