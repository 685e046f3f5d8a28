"""Idempotency keys: a creating request sent again with the same ``Idempotency-Key`` is answered as it was the
first time, and done once.

A client that lost the answer to a request (a 503 while the database was out of reach, a dropped connection,
a timeout) cannot tell whether it was done, so it sends it again with the same key. The operation itself
writes the key and the answer, in the same transaction as its change: ``claim`` first in the transaction,
``commit`` in place of its ``session.commit()``. A crash or a lost connection therefore leaves both or
neither, and the retry either finds the stored answer or does the work for the first time.

Keys are the caller's own (a user's, or a patient's invitation's) and answer for ``KEPT_FOR``; an owner's
older keys are deleted when they next send one (an invitation's stored answer holds its link, which the
invitation's own expiry and revocation govern all the same). The same key with another request (another
body or path) is refused with 422; a request with a key whose first request is still being handled waits
for it and gets its answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from .errors import N_, BadRequest, ErrorCode, TelemedError
from .models import IdempotencyKey, utcnow

if TYPE_CHECKING:
    from .db import Database

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_FOR = timedelta(hours=24)
KEY_PATTERN = r"^[\x20-\x7e]{1,128}$"  # printable ASCII, as the OpenAPI document says
_KEY = re.compile(r"[\x20-\x7e]{1,128}")

T = TypeVar("T")


class KeyReused(TelemedError):
    """The key came before with a different request: nothing is done, and the first answer is not given."""

    kind = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, key: str) -> None:
        super().__init__(N_("This Idempotency-Key was sent before with a different request; "
                            "use a new key for a new request."), key=key)


class KeyInUse(TelemedError):
    """A request with this key got as far as claiming it while another one held it: the one before is still
    being handled (or has just failed); asking again in a moment gets its answer, or does the work."""

    kind = ErrorCode.IDEMPOTENCY_KEY_IN_USE

    def __init__(self, key: str) -> None:
        super().__init__(N_("A request with this Idempotency-Key is still being handled; try again in a moment."),
                         key=key)


def of_user(user_id: int) -> str:
    """Whose keys a logged-in caller's are."""
    return f"user:{user_id}"


def of_invitation(invitation_id: int) -> str:
    """Whose keys a patient's are: the invitation link they came by."""
    return f"invitation:{invitation_id}"


@dataclass(frozen=True)
class Answer:
    """An operation's answer as sent: its status and its JSON text, the same bytes every time."""

    status: int
    text: str

    @classmethod
    def of(cls, status: int, body: Any) -> Answer:
        return cls(status, json.dumps(body, default=str, ensure_ascii=False))


@dataclass(frozen=True)
class Once:
    """A request sent with an Idempotency-Key: whose key it is, the key, and what was asked."""

    owner: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, header: str | None, owner: str, method: str, path: str, body: Any) -> Once | None:
        """The request's key (None without the header), or 400 ``bad-idempotency-key`` naming the header.
        ``body`` is the parsed body (so the same fields sent in another order are the same request)."""
        if header is None:
            return None
        if not _KEY.fullmatch(header):
            raise BadRequest(N_("The Idempotency-Key header must be 1 to 128 printable ASCII characters."),
                             code="bad-idempotency-key")
        asked = json.dumps([method, path, body], sort_keys=True, default=str, ensure_ascii=False)
        return cls(owner, header, hashlib.sha256(asked.encode()).hexdigest())


class Reply(Generic[T]):
    """How an operation's result is answered, and under which key (if any) the answer is kept. The
    operation's ``commit`` puts the answer into words inside its transaction, before committing, so the answer
    stored under a key is exactly the one sent, and an answer needs no database once the change is in."""

    def __init__(self, render: Callable[[T], Awaitable[Answer]], once: Once | None = None) -> None:
        self.render = render
        self.once = once
        self.answer: Answer | None = None  # set once the operation has committed


async def stored(database: Database, once: Once) -> Answer | None:
    """The answer already given under this key, or None (never given, or longer ago than ``KEPT_FOR``);
    ``KeyReused`` if the key came with a different request."""
    async with database.session() as session:
        row = await session.get(IdempotencyKey, (once.owner, once.key))
    if row is None or row.created_at < utcnow() - KEPT_FOR:
        return None
    if row.fingerprint != once.fingerprint:
        raise KeyReused(once.key)
    return Answer(row.status, row.body)


async def claim(session: AsyncSession, reply: Reply[Any] | None) -> None:
    """First thing in the operation's transaction: hold the key. A request with the same key arriving
    meanwhile waits here for this transaction (PostgreSQL waits on the key's row; SQLite on its write lock)
    and then gets ``KeyInUse``, which the face answers with the stored answer. Also forgets the owner's keys
    older than ``KEPT_FOR``, this one included if it is, so an expired key can be used anew."""
    if reply is None or reply.once is None:
        return
    once = reply.once
    await session.exec(sa.delete(IdempotencyKey).where(  # type: ignore[call-overload]
        col(IdempotencyKey.owner) == once.owner, col(IdempotencyKey.created_at) < utcnow() - KEPT_FOR))
    session.add(IdempotencyKey(owner=once.owner, key=once.key, fingerprint=once.fingerprint))
    try:
        await session.flush()
    except sa.exc.IntegrityError:
        await session.rollback()
        raise KeyInUse(once.key) from None


async def commit(session: AsyncSession, reply: Reply[T] | None, result: T) -> None:
    """The operation's commit. With a reply, its answer is put into words first, inside the transaction,
    and under a key stored with the change, so the two commit together or not at all."""
    if reply is None:
        await session.commit()
        return
    await session.flush()
    answer = await reply.render(result)
    if reply.once is not None:
        row = await session.get(IdempotencyKey, (reply.once.owner, reply.once.key))
        assert row is not None, "claim() holds the key first in the same transaction"
        row.status, row.body = answer.status, answer.text
        session.add(row)
    await session.commit()
    reply.answer = answer
