"""What a user changes of their own account. (The administrator's console will add accounts, roles and
resets here.)"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import ValidationFailed
from ..i18n import SUPPORTED_LOCALES
from ..models import User
from ..permissions import Principal


async def set_locale(session: AsyncSession, who: Principal, locale: str) -> None:
    """The language the user reads the platform in, wherever they log in next."""
    if locale not in SUPPORTED_LOCALES:
        raise ValidationFailed({"locale": f"one of {', '.join(SUPPORTED_LOCALES)}"})
    user = await session.get(User, who.user_id)
    if user is not None:
        user.locale = locale
        session.add(user)
        await session.commit()
