"""Medical partnerships (医联体), as an administrator keeps them: a lead hospital and the member hospitals it
supports. Referrals, slot searches and invitations reach across a partnership, so who is in one decides who
may refer to whom. Each change is audited with it.

The lead is always a member: it is kept in the member list too (as the demo data has it), and cannot be
removed from it while it leads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, Conflict, NotFound, ValidationFailed
from ..models import Hospital, Partnership, PartnershipMember
from ..outputs import Named, Out
from ..permissions import Principal
from . import actor, commit, require_administrator
from .inputs import MemberInput, NewPartnership, PartnershipUpdate


class PartnershipShown(Out):
    """A partnership, its lead hospital and its other members (by name), by id and name."""

    id: int
    name: str
    lead: Named
    members: list[Named]


class PartnershipList(Out):
    partnerships: list[PartnershipShown]


@dataclass(frozen=True)
class PartnershipView:
    """A partnership, its lead hospital and its other members, by name."""

    partnership: Partnership
    lead: Hospital
    members: list[Hospital]  # besides the lead

    def shown(self) -> PartnershipShown:
        assert self.partnership.id is not None and self.lead.id is not None
        return PartnershipShown(id=self.partnership.id, name=self.partnership.name,
                                lead=Named(id=self.lead.id, name=self.lead.name),
                                members=[Named(id=h.id, name=h.name) for h in self.members if h.id is not None])


async def _views(session: AsyncSession, partnerships: list[Partnership]) -> list[PartnershipView]:
    ids = [p.id for p in partnerships]
    rows = (await session.exec(select(PartnershipMember).where(col(PartnershipMember.partnership_id).in_(ids)))).all()
    hospitals = {h.id: h for h in (await session.exec(select(Hospital))).all()}
    views = []
    for p in partnerships:
        members = sorted((hospitals[r.hospital_id] for r in rows
                          if r.partnership_id == p.id and r.hospital_id != p.lead_hospital_id), key=lambda h: h.name)
        views.append(PartnershipView(p, hospitals[p.lead_hospital_id], members))
    return views


async def list_all(session: AsyncSession, who: Principal) -> list[PartnershipView]:
    require_administrator(who)
    return await _views(session, list((await session.exec(select(Partnership).order_by(col(Partnership.name)))).all()))


async def _partnership(session: AsyncSession, partnership_id: int) -> Partnership:
    partnership = await session.get(Partnership, partnership_id)
    if partnership is None:
        raise NotFound(N_("There is no such partnership."))
    return partnership


async def get(session: AsyncSession, who: Principal, partnership_id: int) -> PartnershipView:
    require_administrator(who)
    return (await _views(session, [await _partnership(session, partnership_id)]))[0]


async def _hospitals_exist(session: AsyncSession, field: str, ids: set[int]) -> None:
    found = set((await session.exec(select(Hospital.id).where(col(Hospital.id).in_(ids)))).all()) if ids else set()
    if ids - found:
        raise ValidationFailed({field: N_("There is no such hospital.") if len(ids) == 1
                                else N_("Some of these hospitals do not exist.")})


async def _name_free(session: AsyncSession, name: str, besides: int | None = None) -> None:
    found = (await session.exec(select(Partnership.id).where(Partnership.name == name))).first()
    if found is not None and found != besides:
        raise Conflict(N_("A partnership of this name already exists."))


async def create(session: AsyncSession, who: Principal, body: NewPartnership) -> PartnershipView:
    """A partnership led by one hospital, with the member hospitals it supports (the lead among them)."""
    require_administrator(who)
    await _hospitals_exist(session, "lead_hospital_id", {body.lead_hospital_id})
    await _hospitals_exist(session, "member_ids", set(body.member_ids))
    await _name_free(session, body.name)
    partnership = Partnership(name=body.name, lead_hospital_id=body.lead_hospital_id)
    session.add(partnership)
    await session.flush()
    assert partnership.id is not None
    members = sorted({body.lead_hospital_id, *body.member_ids})
    session.add_all([PartnershipMember(partnership_id=partnership.id, hospital_id=h) for h in members])
    audit.with_commit(session, audit.Entry(actor(who), "partnership.created", subject=f"partnership:{partnership.id}",
                                           detail={"name": body.name, "lead_hospital_id": body.lead_hospital_id,
                                                   "member_ids": members}))
    await commit(session)
    return (await _views(session, [partnership]))[0]


async def update(session: AsyncSession, who: Principal, partnership_id: int,
                 body: PartnershipUpdate) -> PartnershipView:
    """Rename a partnership or give it another lead (which becomes a member if it was not; the old lead stays
    a member until removed)."""
    require_administrator(who)
    partnership = await _partnership(session, partnership_id)
    await _hospitals_exist(session, "lead_hospital_id", {body.lead_hospital_id})
    await _name_free(session, body.name, besides=partnership_id)
    changes = {name: [getattr(partnership, name), value] for name, value in body.model_dump().items()
               if getattr(partnership, name) != value}
    if changes:
        partnership.name, partnership.lead_hospital_id = body.name, body.lead_hospital_id
        session.add(partnership)
        if await session.get(PartnershipMember, (partnership_id, body.lead_hospital_id)) is None:
            session.add(PartnershipMember(partnership_id=partnership_id, hospital_id=body.lead_hospital_id))
        audit.with_commit(session, audit.Entry(actor(who), "partnership.updated",
                                               subject=f"partnership:{partnership_id}", detail={"changes": changes}))
        await commit(session)
    return (await _views(session, [partnership]))[0]


async def add_member(session: AsyncSession, who: Principal, partnership_id: int, body: MemberInput) -> PartnershipView:
    """A hospital joins the partnership (joining twice changes nothing)."""
    require_administrator(who)
    partnership = await _partnership(session, partnership_id)
    await _hospitals_exist(session, "hospital_id", {body.hospital_id})
    if await session.get(PartnershipMember, (partnership_id, body.hospital_id)) is None:
        session.add(PartnershipMember(partnership_id=partnership_id, hospital_id=body.hospital_id))
        audit.with_commit(session, audit.Entry(actor(who), "partnership.member_added",
                                               subject=f"partnership:{partnership_id}",
                                               detail={"hospital_id": body.hospital_id}))
        await commit(session)
    return (await _views(session, [partnership]))[0]


async def remove_member(session: AsyncSession, who: Principal, partnership_id: int,
                        hospital_id: int) -> PartnershipView:
    """A hospital leaves the partnership: from now on it cannot refer to its hospitals nor be referred to by them
    (referrals already made stay as they are). The lead cannot leave while it leads."""
    require_administrator(who)
    partnership = await _partnership(session, partnership_id)
    if hospital_id == partnership.lead_hospital_id:
        raise Conflict(N_("The lead hospital cannot leave its partnership: make another hospital the lead first."))
    if await session.get(PartnershipMember, (partnership_id, hospital_id)) is None:
        raise NotFound(N_("This hospital is not a member of the partnership."))
    await session.exec(delete(PartnershipMember).where(  # type: ignore[call-overload]
        col(PartnershipMember.partnership_id) == partnership_id, col(PartnershipMember.hospital_id) == hospital_id))
    audit.with_commit(session, audit.Entry(actor(who), "partnership.member_removed",
                                           subject=f"partnership:{partnership_id}",
                                           detail={"hospital_id": hospital_id}))
    await commit(session)
    return (await _views(session, [partnership]))[0]
