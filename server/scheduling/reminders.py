"""Reminders before appointments: a notification to the specialist and the referring doctor a set time
before the start. Any node may run the sweep; a guarded update makes sure each appointment is reminded
once, however many nodes race for it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from ..db import Database
from ..models import Appointment, AppointmentStatus, Referral, utcnow
from ..notices import Notice

log = logging.getLogger(__name__)
SWEEP_SECONDS = 30.0
LATE = timedelta(minutes=5)  # an appointment that started longer ago than this gets no reminder


async def send_due(database: Database, now: datetime, before: timedelta) -> int:
    """Remind every booked appointment starting within ``before`` of ``now``. Returns how many."""
    async with database.session() as session:
        due = (await session.exec(select(Appointment, Referral).join(Referral).where(
            Appointment.status == AppointmentStatus.BOOKED, col(Appointment.reminded).is_(False),
            Appointment.starts_at <= now + before, Appointment.starts_at > now - LATE))).all()
    sent = 0
    for appointment, referral in due:
        async with database.session() as session:
            claimed = await session.exec(  # type: ignore[call-overload]
                sa.update(Appointment).where(col(Appointment.id) == appointment.id,
                                             col(Appointment.reminded).is_(False)).values(reminded=True))
            if claimed.rowcount != 1:
                continue  # another node reminded it
            minutes = max(0, round((appointment.starts_at - now).total_seconds() / 60))
            notice = Notice.reminder(referral.id, appointment.consultation_id, minutes, appointment.starts_at)
            for user_id in sorted({appointment.specialist_id, referral.referring_doctor_id}):
                session.add(notice.to(user_id))
            await session.commit()
            sent += 1
    return sent


async def run(database: Database, before: timedelta, *, every: float = SWEEP_SECONDS) -> None:
    """Sweep for due reminders until cancelled; a database outage only skips sweeps."""
    while True:
        try:
            await send_due(database, utcnow(), before)
        except (OSError, SQLAlchemyError) as exc:
            if not database.down(exc):  # an outage is logged once, not with a traceback a minute
                log.warning("could not send reminders this time; will try again", exc_info=True)
        await asyncio.sleep(every)
