"""Calls that outlive a change to their account. Disabling an account, resetting its password or changing its
role or licence on a page or through the API reaches the rooms it is in at once; the console (``telemed user
disable``, ``reset-password``, ``licence``) runs in a process of its own, which reaches a room only where the
nodes share a Redis and it answers (``server/console_rooms.py``). So each node
looks, every ``TELEMED_ACCOUNT_SWEEP_SECONDS``, at the clinicians in its rooms: those whose account is disabled,
gone or no longer a clinician's it sends out as the page would (``not-a-participant``); those whose password an
administrator reset and who have not set their own yet too (``session-ended``): while that password stands no
room token can be issued to them (``identity/auth.py`` sends them to change it first), so they are in the call
on a session that has ended. Setting their own sends them out too (``identity/accounts.change_password``),
should that come first. Of the others, one who holds other grants in a room than their account gives now (a
licence verified, or no longer) is given those (``Regranting``), and so is one who holds them as of an older
change of the account than its latest, which a change told late would otherwise undo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlmodel import col, select

from signaling.events import Expelling, Regranting
from signaling.grants import ROOM_PREFIX, Granted, consultation_of_room

from ..consultations.room_notifier import RoomNotifier, SentOut
from ..consultations.room_tokens import clinician_grants
from ..db import Database
from ..models import User
from ..permissions import CLINICAL_ROLES, principal_of

log = logging.getLogger(__name__)

USER = "user:"


async def sweep(database: Database, here: dict[str, dict[str, Granted]], rooms: RoomNotifier) -> set[int]:
    """Send out of their rooms the clinicians of ``here`` (identity -> the rooms it is in on this node, with the
    grants it holds in each and their revision) whose account is no longer active or a clinician's, or whose
    session ended with a reset of their password; give the others the grants their account gives now where
    they hold others, or the same of an older change. The ids of those sent out."""
    users = {int(identity.removeprefix(USER)): identity for identity in here
             if identity.startswith(USER) and identity.removeprefix(USER).isdigit()}
    if not users:
        return set()  # (no query while only patients, or nobody, are here)
    async with database.session() as session:
        accounts = {user.id: user for user in (await session.exec(select(User).where(col(User.id).in_(users)))).all()}
    reasons: dict[int, SentOut] = {}
    for user_id in sorted(users):
        user = accounts.get(user_id)
        if user is None or not user.is_active or user.role not in CLINICAL_ROLES:
            reasons[user_id] = "not-a-participant"
        elif user.must_change_password:
            reasons[user_id] = "session-ended"
        else:
            await _regrant(users[user_id], here[users[user_id]],
                           Granted(clinician_grants(principal_of(user)), user.grants_revision), rooms)
    for user_id, reason in reasons.items():
        identity = users[user_id]
        log.info("%s is in a call with an account that is disabled, gone, changed or reset (%s); sending it out",
                 identity, reason)
        expel = Expelling(identity=identity, reason=reason)
        await asyncio.gather(*(rooms.tell(consultation_of_room(room_id), expel)
                               for room_id in sorted(here[identity]) if room_id.startswith(ROOM_PREFIX)))
    return set(reasons)


async def _regrant(identity: str, held: dict[str, Granted], granted: Granted, rooms: RoomNotifier) -> None:
    """Tell each room where ``identity`` holds other grants than ``granted``, or the same of another of the
    account's changes, that it holds these now: a change told late after one no room was told of (the console)
    would otherwise be applied over it."""
    stale = sorted(room_id for room_id, there in held.items() if there != granted and room_id.startswith(ROOM_PREFIX))
    if stale:
        log.info("%s holds other grants (or of an older change) in %d room(s) than its account gives now; "
                 "changing them", identity, len(stale))
        regrant = Regranting(identity=identity, grants=granted.grants, revision=granted.revision)
        await asyncio.gather(*(rooms.tell(consultation_of_room(room_id), regrant) for room_id in stale))


async def run(database: Database, here: Callable[[], dict[str, dict[str, Granted]]], rooms: RoomNotifier,
              every: float) -> None:
    """``sweep`` every ``every`` seconds, for good; a database that is down is counted as an outage (logged
    once, by ``Database.down``) and asked again at the next turn."""
    while True:
        await asyncio.sleep(every)
        try:
            await sweep(database, here(), rooms)
        except Exception as exc:
            if not database.down(exc):
                log.exception("the sweep for changed accounts in calls failed; trying again in %.0f s", every)
