"""Which partnerships each supervisor account (a regional health commission's) oversees, as an administrator
links them: a supervisor reads the statistics of those partnerships alone (server/supervision/). Each link
made or undone is audited."""

from __future__ import annotations

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..errors import N_, NotFound, ValidationFailed
from ..models import Partnership, PartnershipSupervisor, Role, User
from ..outputs import Out
from ..permissions import Principal
from . import actor, commit, require_administrator
from .inputs import SupervisorInput


class SupervisorShown(Out):
    id: int
    username: str
    display_name: str


class SupervisorList(Out):
    """The supervisor accounts overseeing a partnership."""

    supervisors: list[SupervisorShown]


def listed(linked: list[User]) -> SupervisorList:
    return SupervisorList(supervisors=[SupervisorShown(id=u.id, username=u.username, display_name=u.display_name)
                                       for u in linked if u.id is not None])


async def _partnership(session: AsyncSession, partnership_id: int) -> Partnership:
    partnership = await session.get(Partnership, partnership_id)
    if partnership is None:
        raise NotFound(N_("There is no such partnership."))
    return partnership


async def of_partnership(session: AsyncSession, who: Principal, partnership_id: int) -> tuple[list[User], list[User]]:
    """The supervisors overseeing the partnership, and the active supervisor accounts that could, by name."""
    require_administrator(who)
    await _partnership(session, partnership_id)
    accounts = (await session.exec(select(User).where(User.role == Role.SUPERVISOR)
                                   .order_by(col(User.display_name)))).all()
    linked = set((await session.exec(select(PartnershipSupervisor.user_id).where(
        PartnershipSupervisor.partnership_id == partnership_id))).all())
    return ([u for u in accounts if u.id in linked],
            [u for u in accounts if u.id not in linked and u.is_active])


async def link(session: AsyncSession, who: Principal, partnership_id: int, body: SupervisorInput) -> None:
    """A supervisor account comes to oversee the partnership (linking twice changes nothing)."""
    require_administrator(who)
    await _partnership(session, partnership_id)
    user = await session.get(User, body.user_id)
    if user is None or user.role is not Role.SUPERVISOR:
        raise ValidationFailed({"user_id": N_("Choose a supervisor's account.")})
    if await session.get(PartnershipSupervisor, (partnership_id, body.user_id)) is None:
        session.add(PartnershipSupervisor(partnership_id=partnership_id, user_id=body.user_id))
        audit.with_commit(session, audit.Entry(actor(who), "partnership.supervisor_added",
                                               subject=f"partnership:{partnership_id}",
                                               detail={"user_id": body.user_id}))
        await commit(session)


async def unlink(session: AsyncSession, who: Principal, partnership_id: int, user_id: int) -> None:
    """The supervisor no longer oversees the partnership: its statistics are closed to them from now on."""
    require_administrator(who)
    await _partnership(session, partnership_id)
    if await session.get(PartnershipSupervisor, (partnership_id, user_id)) is None:
        raise NotFound(N_("This account does not oversee the partnership."))
    await session.exec(delete(PartnershipSupervisor).where(  # type: ignore[call-overload]
        col(PartnershipSupervisor.partnership_id) == partnership_id, col(PartnershipSupervisor.user_id) == user_id))
    audit.with_commit(session, audit.Entry(actor(who), "partnership.supervisor_removed",
                                           subject=f"partnership:{partnership_id}", detail={"user_id": user_id}))
    await commit(session)
