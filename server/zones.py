"""Whose clock a reader's times are on: a clinician's hospital's, or the deployment's default zone for a reader
without one (``TELEMED_DEFAULT_TIMEZONE``). Patients read theirs in their browser's zone
(``web/static/js/local-time.js``)."""

from __future__ import annotations

from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from .models import Hospital
from .permissions import Principal
from .settings import DEFAULT_TIMEZONE

# The days a filter may name: each one's midnight, and the midnight after it, exist in UTC on every clock
# (year 1 east of Greenwich, or the day after 9999-12-31, would not: a 500 instead of a refusal).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9999, 12, 30)


async def hospital_zone(session: AsyncSession, hospital_id: int | None, fallback: str = DEFAULT_TIMEZONE) -> str:
    """The IANA zone of ``hospital_id``, or ``fallback`` if there is no such hospital."""
    hospital = await session.get(Hospital, hospital_id) if hospital_id else None
    return hospital.timezone if hospital is not None else fallback


async def reader_zone(session: AsyncSession, who: Principal, fallback: str = DEFAULT_TIMEZONE) -> str:
    """The zone a clinician reads every time in: their hospital's."""
    return await hospital_zone(session, who.hospital_id, fallback)
