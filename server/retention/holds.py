"""Legal holds: a patient's or a consultation's files are kept past their retention while a hold stands
(a complaint, a lawsuit, a regulator's inquiry). Placing and releasing one is audited with its reason."""

from __future__ import annotations

import pydantic
import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Conflict, NotFound
from ..models import Consultation, LegalHold, Patient, User, utcnow
from ..outputs import Instant, Out
from ..parsing import Id
from ..permissions import Principal, can_manage_holds, require


# The models carry no docstrings: they would become the OpenAPI schemas' descriptions.
class PlaceHold(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    patient_id: Id | None = None
    consultation_id: Id | None = None
    reason: str = pydantic.Field(min_length=1, max_length=500)

    @pydantic.model_validator(mode="after")
    def _one_subject(self) -> PlaceHold:
        if (self.patient_id is None) == (self.consultation_id is None):
            raise ValueError("name either a patient or a consultation")
        return self


class ReleaseHold(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = pydantic.Field(min_length=1, max_length=500)


def _require(who: Principal) -> None:
    require(can_manage_holds(who), N_("Only administrators and auditors manage legal holds."))


def subject_of(hold: LegalHold) -> str:
    return f"patient:{hold.patient_id}" if hold.patient_id is not None else f"consultation:{hold.consultation_id}"


class HoldShown(Out):
    """A legal hold on a patient or a consultation (one of the two ids), who placed it (a user id), when and
    why, and, once released (``active`` false), who released it, when and why."""

    id: int
    patient_id: int | None
    consultation_id: int | None
    reason: str
    placed_by: int
    placed_at: Instant
    released_by: int | None
    released_at: Instant | None
    release_reason: str | None
    active: bool


class HoldList(Out):
    holds: list[HoldShown]


def shown(hold: LegalHold) -> HoldShown:
    assert hold.id is not None
    return HoldShown(id=hold.id, patient_id=hold.patient_id, consultation_id=hold.consultation_id, reason=hold.reason,
                     placed_by=hold.placed_by, placed_at=hold.placed_at, released_by=hold.released_by,
                     released_at=hold.released_at, release_reason=hold.release_reason,
                     active=hold.released_at is None)


async def list_all(session: AsyncSession, who: Principal, *, active_only: bool = False) -> list[LegalHold]:
    """Every hold, standing ones first, newest first."""
    _require(who)
    query = select(LegalHold)
    if active_only:
        query = query.where(col(LegalHold.released_at).is_(None))
    rows = (await session.exec(query.order_by(col(LegalHold.id).desc()))).all()
    return sorted(rows, key=lambda h: h.released_at is not None)


async def names(session: AsyncSession, holds: list[LegalHold]) -> dict[int, str]:
    """Display names of those who placed or released the holds, by user id."""
    ids = {h.placed_by for h in holds} | {h.released_by for h in holds if h.released_by is not None}
    if not ids:
        return {}
    rows = (await session.exec(select(User.id, User.display_name).where(col(User.id).in_(ids)))).all()
    return {uid: name for uid, name in rows if uid is not None}


async def place(session: AsyncSession, who: Principal, body: PlaceHold) -> LegalHold:
    _require(who)
    # Locked as the purge locks them (purge.lock_subjects): an item being purged now is either purged first or
    # kept by this hold, never purged after the hold stands.
    if body.patient_id is not None and (await session.exec(
            select(Patient.id).where(Patient.id == body.patient_id).with_for_update())).first() is None:
        raise NotFound(N_("There is no such patient."))
    if body.consultation_id is not None and (await session.exec(
            select(Consultation.id).where(Consultation.id == body.consultation_id).with_for_update())).first() is None:
        raise NotFound(N_("There is no such consultation."))
    hold = LegalHold(patient_id=body.patient_id, consultation_id=body.consultation_id, reason=body.reason,
                     placed_by=who.user_id)
    session.add(hold)
    audit.with_commit(session, lambda: audit.Entry(f"user:{who.user_id}", "hold.placed", hold.consultation_id,
                                                   subject_of(hold), {"hold": hold.id, "reason": hold.reason}))
    await session.commit()
    return hold


async def release(session: AsyncSession, who: Principal, hold_id: int, body: ReleaseHold) -> LegalHold:
    """End a standing hold: its files fall under their retention again (the next purge may delete them)."""
    _require(who)
    hold = await session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound(N_("There is no such legal hold."))
    if hold.released_at is not None:
        raise Conflict(N_("This legal hold was released already."))
    # Released only if still standing when written: of two releases at once, one is told it came second.
    released = await session.exec(sa.update(LegalHold).where(  # type: ignore[call-overload]
        col(LegalHold.id) == hold_id, col(LegalHold.released_at).is_(None)).values(
        released_at=utcnow(), released_by=who.user_id, release_reason=body.reason))
    if released.rowcount != 1:
        await session.rollback()
        raise Conflict(N_("This legal hold was released already."))
    await session.refresh(hold)
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "hold.released", hold.consultation_id,
                                           subject_of(hold), {"hold": hold.id, "reason": body.reason}))
    await session.commit()
    return hold


async def standing_on(session: AsyncSession, *, patient_id: int | None = None,
                      consultation_id: int | None = None) -> list[LegalHold]:
    """The holds standing now on a patient or a consultation (a consultation's includes its patient's), for
    pages that already show that record to the caller."""
    conditions = []
    if patient_id is not None:
        conditions.append(LegalHold.patient_id == patient_id)
    if consultation_id is not None:
        conditions.append(LegalHold.consultation_id == consultation_id)
    if not conditions:
        return []
    return list((await session.exec(select(LegalHold).where(col(LegalHold.released_at).is_(None), or_(*conditions))
                                    .order_by(col(LegalHold.id)))).all())
