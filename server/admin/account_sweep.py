"""Calls that outlive their account's session. Disabling an account or resetting its password on a page or
through the API sends it out of the rooms it is in at once; the console (``telemed user disable``,
``reset-password``) runs in a process of its own, which reaches no room. So each node looks, every
``TELEMED_ACCOUNT_SWEEP_SECONDS``, for the clinicians in its rooms whose account is disabled or gone, and sends
them out as the page would (``not-a-participant``), and for those whose password an administrator reset and
who have not set their own yet (``session-ended``): while that password stands no room token can be issued to
them (``identity/auth.py`` sends them to change it first), so they are in the call on a session that has ended.
Setting their own sends them out too (``identity/accounts.change_password``), should that come first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlmodel import col, select

from signaling.events import Expelling
from signaling.grants import ROOM_PREFIX, consultation_of_room

from ..consultations.room_notifier import RoomNotifier, SentOut
from ..db import Database
from ..models import User

log = logging.getLogger(__name__)

USER = "user:"


async def sweep(database: Database, here: dict[str, set[str]], rooms: RoomNotifier) -> set[int]:
    """Send out of their rooms the clinicians of ``here`` (identity -> the rooms it is in on this node) whose
    account is no longer active, or whose session ended with a reset of their password; their ids."""
    users = {int(identity.removeprefix(USER)): identity for identity in here
             if identity.startswith(USER) and identity.removeprefix(USER).isdigit()}
    if not users:
        return set()  # (no query while only patients, or nobody, are here)
    async with database.session() as session:
        standing = dict((await session.exec(select(User.id, User.must_change_password).where(
            col(User.id).in_(users), col(User.is_active).is_(True)))).all())
    reasons: dict[int, SentOut] = {
        **{user_id: "not-a-participant" for user_id in set(users) - set(standing)},
        **{user_id: "session-ended" for user_id, reset in standing.items() if reset}}
    for user_id, reason in sorted(reasons.items()):
        identity = users[user_id]
        log.info("%s is in a call with an account that is disabled, gone or reset (%s); sending it out",
                 identity, reason)
        expel = Expelling(identity=identity, reason=reason)
        await asyncio.gather(*(rooms.tell(consultation_of_room(room_id), expel)
                               for room_id in sorted(here[identity]) if room_id.startswith(ROOM_PREFIX)))
    return set(reasons)


async def run(database: Database, here: Callable[[], dict[str, set[str]]], rooms: RoomNotifier,
              every: float) -> None:
    """``sweep`` every ``every`` seconds, for good; a database that is down is counted as an outage (logged
    once, by ``Database.down``) and asked again at the next turn."""
    while True:
        await asyncio.sleep(every)
        try:
            await sweep(database, here(), rooms)
        except Exception as exc:
            if not database.down(exc):
                log.exception("the sweep for disabled or reset accounts in calls failed; trying again in %.0f s", every)
