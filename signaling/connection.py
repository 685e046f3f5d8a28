"""One signaling connection's loop: a reader that turns messages into room events, a writer that drains
the outbox, and a heartbeat that pings a silent client and drops a dead one (after Galène's clientLoop).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from . import logcontext
from .errors import (
    BARRED,
    Abuse,
    AlreadyJoined,
    CloseCode,
    HeartbeatTimeout,
    JoinTimeout,
    NotAllowed,
    NotJoined,
    RateLimited,
    ResumeFailed,
    SignalingError,
    UnsupportedVersion,
    WrongRoom,
    close_code_for,
)
from .events import (
    Admitting,
    Chatting,
    Denying,
    Disconnected,
    Expelling,
    Joining,
    Leaving,
    MediaChanged,
    Recording,
    Regranting,
    Relaying,
    Removing,
    Resuming,
    RoomEvent,
    Where,
)
from .gate import Gate
from .grants import Granted, RoomClaims
from .hub import RoomHub
from .messages import (
    PROTOCOL_VERSION,
    Admit,
    Answer,
    Candidate,
    ClientMessage,
    Deny,
    Error,
    IceRestart,
    InLobby,
    Join,
    Joined,
    Leave,
    MediaState,
    Offer,
    Participant,
    Ping,
    Pong,
    ReceiveVideo,
    Remove,
    SendChat,
    ServerMessage,
    SetMediaState,
    SetRecording,
    dump,
    parse,
)
from .outbox import CloseRequest

log = logging.getLogger(__name__)

# Told once when a join (not a resume) is seated in the room: the claims it came with, and its seat id.
OnSeated = Callable[[RoomClaims, str], Awaitable[None]]
# Told after each client message is handled, whether or not it was refused: its type and the seconds it took
# (the server's metrics time them; signaling knows nothing of them).
OnHandled = Callable[[str, float], None]
_TOLD: set[asyncio.Task[None]] = set()  # on_seated calls and gate re-checks under way (held so they are not collected)

_DONE = object()  # tells the writer that the reader has finished: flush what is queued, then stop
FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 192 * 1024
    ping_after: float = 20.0  # silence before the server pings
    drop_after: float = 45.0  # silence before the server gives up on the client
    rate: float = 30.0  # messages per second, sustained
    burst: float = 100.0  # messages at once (a burst of ICE candidates)
    abuse_after: int = 200  # messages dropped for rate before the connection is closed
    join_within: float = 10.0  # a socket with no valid join by then is closed (pings do not count)


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def resume_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SignalingConnection:
    """Serves one WebSocket in one consultation's room until it closes, leaves, or is closed for cause."""

    def __init__(self, ws: web.WebSocketResponse, hub: RoomHub, room_id: str, *, gate: Gate,
                 limits: Limits, on_seated: OnSeated | None = None, on_handled: OnHandled | None = None) -> None:
        self.ws, self.hub, self.room_id = ws, hub, room_id
        self.gate, self.limits = gate, limits
        self.conn = secrets.token_urlsafe(9)
        self.at = Where(node=hub.node_id, conn=self.conn)
        self.outbox = hub.attach(self.conn)
        self.participant_id: str | None = None
        self.resume_secret = ""
        self.left = False
        self.bucket = TokenBucket(limits.rate, limits.burst)
        self.dropped = 0
        self.on_seated = on_seated
        self.on_handled = on_handled
        self.claims: RoomClaims | None = None
        self.joining_afresh = False  # a join, not a resume, waits to be seated
        # Until seated: the claims they joined with, for the gate's look if they take a seat from the lobby.
        self.unseated: RoomClaims | None = None
        self.in_lobby = False

    async def run(self) -> None:
        # This task is the connection's alone, so what it sets names only its lines. The room is set before
        # the writer starts, so the writer's lines name it too; the participant is set in each once known.
        logcontext.room.set(self.room_id)
        writer = asyncio.create_task(self._write())
        try:
            await self._read()
        finally:
            if self.participant_id is not None:
                log.info("signaling %s: %s", self.conn, "left" if self.left else "disconnected")
            self._part()
            self.outbox.put_control(_DONE)
            try:
                await asyncio.wait_for(writer, FLUSH_SECONDS)
            except TimeoutError:
                log.info("signaling %s: gave up flushing to a client that does not read", self.conn)
            self.hub.detach(self.conn, self.room_id)
            if not self.ws.closed:
                await self.ws.close(code=CloseCode.NORMAL)

    def _part(self) -> None:
        """Tell the room we are gone: a leave if the client said so, else a disconnect (the seat is kept)."""
        if self.participant_id is None:
            return
        event: RoomEvent = (Leaving if self.left else Disconnected)(participant_id=self.participant_id, at=self.at)
        self.hub.owe(self.room_id, event)

    async def _read(self) -> None:
        last_heard, pinged = time.monotonic(), False
        join_by = last_heard + self.limits.join_within
        while True:
            now = time.monotonic()
            if self.participant_id is None and now >= join_by:
                # No seat, no lobby place: nothing this socket holds is worth keeping open for.
                self.outbox.put_control(JoinTimeout(
                    f"No valid join within {self.limits.join_within:g} s; the connection is closed."))
                return
            wait = (self.limits.drop_after if pinged else self.limits.ping_after) - (now - last_heard)
            if self.participant_id is None:
                wait = min(wait, join_by - now)
            try:
                frame = await self.ws.receive(timeout=max(wait, 0.01))
            except TimeoutError:
                if self.participant_id is None and time.monotonic() >= join_by:
                    continue  # the deadline, not silence: answered at the top of the loop
                if pinged:
                    self.outbox.put_control(HeartbeatTimeout("No answer to pings; the connection is closed."))
                    return
                self.outbox.put_control(Ping())
                pinged = True
                continue
            if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return  # CLOSE, CLOSING, CLOSED or ERROR: the socket is done
            last_heard, pinged = time.monotonic(), False
            try:
                if not self.bucket.take():
                    self.dropped += 1
                    if self.dropped >= self.limits.abuse_after:
                        raise Abuse("Too many messages, too fast; the connection is closed.")
                    raise RateLimited("Too many messages; this one was dropped. Slow down.")
                message = parse(frame.data, max_bytes=self.limits.max_message_bytes)
                started = time.perf_counter()
                try:
                    going_on = await self._handle(message)
                finally:
                    if self.on_handled is not None:
                        self.on_handled(message.type, time.perf_counter() - started)
                if not going_on:
                    return
            except SignalingError as error:
                self.outbox.put_control(error)
                if close_code_for(error) is not None:
                    return

    async def _handle(self, message: ClientMessage) -> bool:
        """Turn one client message into a room event; False once the client has left."""
        if isinstance(message, Ping):
            self.outbox.put_control(Pong(id=message.id))
            return True
        if isinstance(message, Pong):
            return True
        if isinstance(message, Join):
            await self._join(message)
            return True
        if self.participant_id is None:
            raise NotJoined("Send join first.")
        pid = self.participant_id
        event: RoomEvent
        if isinstance(message, Leave):
            self.left = True
            return False
        if isinstance(message, Offer):
            event = Relaying(sender=pid, to=message.to, type="offer", sdp=message.sdp, offer_id=message.offer_id)
        elif isinstance(message, Answer):
            event = Relaying(sender=pid, to=message.to, type="answer", sdp=message.sdp)
        elif isinstance(message, Candidate):
            event = Relaying(sender=pid, to=message.to, type="candidate", candidate=message.candidate)
        elif isinstance(message, IceRestart):
            event = Relaying(sender=pid, to=message.to, type="ice-restart")
        elif isinstance(message, ReceiveVideo):
            event = Relaying(sender=pid, to=message.to, type="receive", video=message.video)
        elif isinstance(message, SetMediaState):
            event = MediaChanged(participant_id=pid, media=MediaState(
                muted=message.muted, camera_off=message.camera_off, screen_sharing=message.screen_sharing))
        elif isinstance(message, SendChat):
            event = Chatting(participant_id=pid, text=message.text, at_time=time.time())
        elif isinstance(message, Admit):
            event = await self._admitting(pid, message.participant_id)
        elif isinstance(message, Deny):
            event = Denying(by=pid, participant_id=message.participant_id)
        elif isinstance(message, SetRecording):
            event = Recording(by=pid, on=message.on)
        else:
            assert isinstance(message, Remove)
            event = Removing(by=pid, participant_id=message.participant_id)
        await self.hub.submit(self.room_id, event, conn=self.conn)
        return True

    async def _join(self, message: Join) -> None:
        if self.participant_id is not None:
            raise AlreadyJoined("You have already joined this room.")
        if message.protocol != PROTOCOL_VERSION:
            raise UnsupportedVersion(
                f"This server speaks signaling protocol {PROTOCOL_VERSION}, not {message.protocol}.")
        claims = self.gate.verify(message.token)
        if claims.room != self.room_id:
            raise WrongRoom("This room token is for another consultation.")
        granted = await self.gate.check(claims.identity, claims.invitation, claims.generation) \
            or Granted(claims.grants, None)
        history = await self.gate.shows_history(claims.identity)
        self.resume_secret = secrets.token_urlsafe(24)
        self.joining_afresh = not message.resume
        self.claims = claims if self.joining_afresh and self.on_seated is not None else None
        self.unseated, self.in_lobby = claims, False
        if message.resume:
            pid, _, secret = message.resume.partition(".")
            event: RoomEvent = Resuming(participant_id=pid, identity=claims.identity, at=self.at,
                                        resume_hash=resume_hash(secret),
                                        new_resume_hash=resume_hash(self.resume_secret), chat_history=history)
        else:
            pid = secrets.token_urlsafe(9)
            event = Joining(participant=self._participant(pid, claims), grants=granted.grants,
                            identity=claims.identity, at=self.at, resume_hash=resume_hash(self.resume_secret),
                            consent_id=claims.consent_id, patient=claims.patient,
                            patient_consent_id=claims.patient_consent_id, invitation=claims.invitation,
                            chat_history=history)
        await self.hub.submit(self.room_id, event, conn=self.conn)
        # What the room holds they may do, as far as this node's copy knows (loaded by submit). A join carries
        # no revision (a node of the previous release would not read it), so the second look tells it.
        seated = self._seat_grants(pid) if message.resume else Granted(granted.grants, None)
        self.participant_id = pid
        logcontext.participant.set(pid)
        log.info("signaling %s: %s", self.conn, "resumed" if message.resume else "joined")
        # beside the connection, as on_seated: the participant's first messages need not wait for it
        task = asyncio.ensure_future(self._check_again(claims, seated))
        _TOLD.add(task)
        task.add_done_callback(_TOLD.discard)

    async def _check_again(self, claims: RoomClaims, granted: Granted | None) -> None:
        """Ask the gate once more now that the join is in the room's log: the server may have barred them
        between the first check and the join's arrival (an appointment moved, an invitation revoked), or changed
        what they may do, and told the room before the join was there to hear it. ``granted`` is what they
        joined with (of no revision: a clinician's join is followed by the revision of their grants), or for a
        resume (which keeps the seat) the seat's grants and their revision in this node's copy of the room, so
        that an unchanged account adds nothing to the log; None if the copy has no such seat: the room is told
        the account's in any case. A change the copy has not applied yet, or one still on
        its way to the log, is older than what the gate reads now: the room does not apply it over this one.
        Whatever changes from now on is seen here, or its own event comes after the join. Never raises."""
        try:
            now = await self.gate.check(claims.identity, claims.invitation, claims.generation)
            if now is not None and now != granted:
                await self.hub.tell(self.room_id, Regranting(identity=claims.identity, grants=now.grants,
                                                             revision=now.revision))
        except BARRED as barred:
            await self.hub.tell(self.room_id, Expelling(identity=claims.identity, reason=barred.code,
                                                        invitation=claims.invitation))  # (retried if the bus is away)
        except Exception:  # the gate cannot answer now (its database): they passed it a moment ago
            log.warning("signaling %s: the gate could not be asked again after the join", self.conn, exc_info=True)

    async def _admitting(self, host: str, participant_id: str) -> RoomEvent:
        """Admit someone from the lobby, unless the server has barred them since they joined it: then they are
        expelled, and the host hears why."""
        room = self.hub.room(self.room_id)
        waiting = room.members.get(participant_id) if room is not None else None
        if waiting is None:
            return Admitting(by=host, participant_id=participant_id)  # the room answers unknown-participant
        try:
            await self.gate.check(waiting.identity, waiting.invitation)
        except BARRED as barred:
            await self.hub.submit(self.room_id, Expelling(identity=waiting.identity, reason=barred.code,
                                                          invitation=waiting.invitation), conn=self.conn)
            raise NotAllowed(f"{waiting.participant.name} can no longer be admitted: {barred.message}") from None
        return Admitting(by=host, participant_id=participant_id)

    def _check_seated(self, claims: RoomClaims, participant_id: str) -> None:
        """One leaving the lobby for a seat is asked about once more (beside the connection): a host made so
        while waiting takes a seat that frees with nobody admitting them, maybe long after the gate last
        looked, and the account may have been disabled since where no room was told (the console)."""
        task = asyncio.ensure_future(self._check_again(claims, self._seat_grants(participant_id)))
        _TOLD.add(task)
        task.add_done_callback(_TOLD.discard)

    def _seat_grants(self, participant_id: str) -> Granted | None:
        """What this node's copy of the room says the participant may do; None if it has no such member."""
        room = self.hub.room(self.room_id)
        member = room.members.get(participant_id) if room is not None else None
        return Granted(member.grants, member.grants_revision) if member is not None else None

    def _tell_seated(self, participant_id: str) -> None:
        """Run ``on_seated`` beside the connection: a slow or failing listener must not hold up messages."""
        if self.on_seated is None or self.claims is None:
            return
        task = asyncio.ensure_future(self.on_seated(self.claims, participant_id))
        self.claims = None  # told: a connection need not hold its token's claims for as long as it lasts
        _TOLD.add(task)
        task.add_done_callback(self._told_done)

    def _told_done(self, task: asyncio.Task[None]) -> None:
        _TOLD.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("room %s: on_seated failed: %r", self.room_id, error)

    @staticmethod
    def _participant(pid: str, claims: RoomClaims) -> Participant:
        # recording_consent as the room will set it, so the room keeps this one (participants are frozen)
        return Participant(id=pid, user_id=claims.user_id, name=claims.name, role=claims.role,
                           guest=claims.is_guest, recording_consent=claims.consent_id is not None,
                           device_check=claims.device_check)

    async def _write(self) -> None:
        while True:
            item = await self.outbox.get()
            if item is _DONE:
                return
            if isinstance(item, SignalingError):
                await self._send(Error(code=item.code, message=item.message))
                if (code := close_code_for(item)) is not None:
                    await self.ws.close(code=code, message=item.code.encode())
                    return
            elif isinstance(item, CloseRequest):
                await self.ws.close(code=item.code, message=item.reason.encode())
                return
            else:
                await self._send(item)  # type: ignore[arg-type]

    async def _send(self, message: ServerMessage) -> None:
        if isinstance(message, Error) and message.code == ResumeFailed.code:
            self.participant_id = None  # the room refused the seat: the client may join afresh here
        if isinstance(message, InLobby):
            self.in_lobby = True
        elif isinstance(message, Joined):
            if self.in_lobby and self.unseated is not None:
                self._check_seated(self.unseated, message.self_.id)
            self.unseated, self.in_lobby = None, False
        if isinstance(message, Joined) and self.joining_afresh:
            self.joining_afresh = False
            self._tell_seated(message.self_.id)
        if isinstance(message, Joined | InLobby):
            if message.self_.id != self.participant_id:
                self.participant_id = message.self_.id  # a resume may land on a seat id we did not pick
            logcontext.participant.set(message.self_.id)  # the writer's own context
            # Only the hash of the resume secret travels between nodes; the secret goes to its owner only.
            message = message.model_copy(update={"resume": f"{message.self_.id}.{self.resume_secret}"})
        with suppress(ConnectionResetError):
            await self.ws.send_str(dump(message))
