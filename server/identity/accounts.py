"""What a user changes of their own account: the language they read in, and their password (which they must
change first when an administrator gave them a temporary one)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pydantic
from sqlmodel.ext.asyncio.session import AsyncSession

from ..audit import trail as audit
from ..consultations.room_notifier import RoomNotifier, send_out
from ..errors import N_, NotFound, ValidationFailed
from ..i18n import SUPPORTED_LOCALES
from ..models import User
from ..permissions import Principal
from .passwords import MIN_PASSWORD_LENGTH, hash_password

Verify = Callable[[str, str], Awaitable[bool]]


async def set_locale(session: AsyncSession, who: Principal, locale: str) -> None:
    """The language the user reads the platform in, wherever they log in next."""
    if locale not in SUPPORTED_LOCALES:
        raise ValidationFailed({"locale": f"one of {', '.join(SUPPORTED_LOCALES)}"})
    user = await session.get(User, who.user_id)
    if user is not None:
        user.locale = locale
        session.add(user)
        await session.commit()


# A user's new password: the current one (needed unless they are changing a temporary one an administrator
# gave them, with which they have just logged in), the new one, and optionally the new one again, as a form
# asks for it. (No docstring: it would become the OpenAPI schema's description.)
class PasswordChange(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    current_password: str | None = pydantic.Field(default=None, max_length=1024)
    new_password: str = pydantic.Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    new_password_again: str | None = pydantic.Field(default=None, max_length=1024)

    @pydantic.field_validator("new_password_again")
    @classmethod
    def _same_twice(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is not None and "new_password" in info.data and value != info.data["new_password"]:
            raise ValueError(N_("The two new passwords differ."))
        return value


async def change_password(session: AsyncSession, who: Principal, body: PasswordChange, *, verify: Verify,
                          rooms: RoomNotifier | None) -> User:
    """Set the caller's own password. The current one must be given and right, unless the password is a
    temporary one (``must_change_password``); the new one must differ from it. Every session of the account
    ends (its generation moves on), the flag is cleared, and the change is audited; the caller gets the account
    back to give this session a new token.

    Replacing a temporary password also sends the account out of any room it is still in (given the ``rooms``
    to tell): no room token can be issued on a temporary password, so whoever sits there came in on the session
    the administrator's reset ended, and a console reset only reaches them at a node's next account sweep. A
    change of one's own password otherwise leaves one's call alone."""
    user = await session.get(User, who.user_id)
    if user is None:
        raise NotFound(N_("There is no such account."))
    if not user.must_change_password:
        if not body.current_password:
            raise ValidationFailed({"current_password": N_("Enter your current password.")})
        if not await verify(body.current_password, user.password_hash):
            raise ValidationFailed({"current_password": N_("This is not your current password.")})
    if await verify(body.new_password, user.password_hash):
        raise ValidationFailed({"new_password": N_("Choose a password other than the one you have now.")})
    forced = user.must_change_password
    user.password_hash = await asyncio.to_thread(hash_password, body.new_password)
    user.must_change_password = False
    user.session_generation += 1
    session.add(user)
    audit.with_commit(session, audit.Entry(f"user:{who.user_id}", "account.password_changed",
                                           subject=f"user:{who.user_id}", detail={"temporary": forced}))
    await session.commit()
    if forced and rooms is not None:
        await send_out(session, rooms, who.user_id, "session-ended")
    await session.refresh(user)
    return user
