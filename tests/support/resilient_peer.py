"""A participant that rides out faults the way the browser's call.js does: it answers pings, keeps its
``resume`` secret, and when its socket closes (1001 from a node going away, or the connection dropping
because the node died) it resumes its seat on another node of the list; it follows ``mode`` and
``relay_epoch`` to whichever relay runs, connecting once per epoch, and it records what happened when.

Times are the event loop's (``loop.time()``), so a test can take a fault's time with ``peer.now()`` and
measure from it. Media is judged by content: each receive slot of the relay connection is read by a task
of its own, and a frame that decodes to the pattern camera's colours counts for whoever the relay's latest
``layout`` names in that slot (one task per slot rather than per participant: a slot keeps its track when
the layout changes, a participant does not keep its slot).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiortc import RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from signaling.errors import CloseCode
from signaling.messages import PROTOCOL_VERSION

from .peers import RelayClient, palette_index
from .signaling_client import DEMO_PASSWORD, signaling_path
from .visits import as_guest

CONNECT_SECONDS = 5.0  # one attempt at a node: token, socket and join sent
BACKOFF = (0.5, 1, 2, 4, 8)  # web/static/js/signaling.js: before each round of attempts, with jitter
ANSWER_SECONDS = 10.0  # how long an offer to the relay waits for its answer before it is made again
FINAL_CLOSES = {int(code) for code in CloseCode if code.final}


class Refused(Exception):
    """A node answered a token request with something other than a token (it may be stopping)."""


class RelayRefused(Exception):
    """The room answered an offer to the relay with an error (``not-relayed`` while the relay has no node)."""


class Credential(Protocol):
    """Who a peer is: it asks a node for a fresh room token before every connection, as the browser does."""

    name: str

    async def room_token(self, http: ClientSession, base: str) -> str: ...


@dataclass(frozen=True)
class Clinician:
    """A clinician of the consultation: logs in, then asks for a host's room token."""

    name: str
    consultation: int = 1

    async def room_token(self, http: ClientSession, base: str) -> str:
        login = await http.post(f"{base}/api/auth/login", json={"username": self.name, "password": DEMO_PASSWORD})
        if login.status != 200:
            raise Refused(f"login at {base}: {login.status} {await login.text()}")
        headers = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
        answer = await http.post(f"{base}/api/consultations/{self.consultation}/room-token", headers=headers)
        if answer.status != 200:
            raise Refused(f"room token at {base}: {answer.status} {await answer.text()}")
        return (await answer.json())["token"]


@dataclass(frozen=True)
class Patient:
    """The consultation's patient, by the invitation link's token (video consent already given)."""

    guest: str
    name: str = "patient"

    async def room_token(self, http: ClientSession, base: str) -> str:
        answer = await http.post(f"{base}/api/guest/room-token", json=as_guest(self.guest))
        if answer.status != 200:
            raise Refused(f"guest room token at {base}: {answer.status} {await answer.text()}")
        return (await answer.json())["token"]


@dataclass(frozen=True)
class Event:
    """Something a peer saw: a message's ``type`` (and the message), or one of its own:
    ``socket-open``, ``socket-closed`` (``code``), ``connect-failed``, ``relay-connected`` (``epoch``),
    ``relay-offer-unanswered`` (timed out, or refused, or the socket went)."""

    at: float
    type: str
    data: dict[str, Any]


class ResilientPeer:
    """One participant, over whichever node of ``urls`` serves it (the list is read at each reconnection,
    so a test may change it)."""

    def __init__(self, http: ClientSession, urls: list[str], credential: Credential, *,
                 reconnect_within: float = 30.0) -> None:
        self.http, self.urls, self.credential = http, urls, credential
        self.name = credential.name
        self.reconnect_within = reconnect_within
        self.loop = asyncio.get_running_loop()
        self.events: list[Event] = []
        self.id: str | None = None
        self.resume: str | None = None
        self.url: str | None = None  # the node whose socket this peer is on (or last was)
        self.ws: ClientWebSocketResponse | None = None
        self.in_room = asyncio.Event()  # a socket is open and its join was answered with ``joined``
        self.comes_back = True
        self.media: RelayClient | None = None
        self.media_epoch = 0  # the relay whose answer was applied; 0: none
        # participant id -> (time, relay epoch) of each frame of theirs decoded to the pattern
        self.frames: defaultdict[str, list[tuple[float, int]]] = defaultdict(list)
        self._token = ""
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._negotiation: asyncio.Task[None] | None = None
        self._negotiating = 0  # the epoch the running negotiation is for
        self._answers: dict[str, asyncio.Future[str]] = {}
        self._offers = itertools.count(1)
        self._watchers: list[asyncio.Task[None]] = []
        self._closing_media: set[asyncio.Future[None]] = set()  # relay connections being closed

    def now(self) -> float:
        return self.loop.time()

    def __repr__(self) -> str:
        return f"<{self.name} {self.id} on {self.url}>"

    # ---- what a test does ----

    async def enter(self, url: str, within: float = 10) -> dict[str, Any]:
        """Join through ``url``: the ``joined`` message, or ``lobby`` for a patient (a host admits them)."""
        assert self._runner is None, "enter once"
        since = self.now()
        self._runner = asyncio.create_task(self._run(url))
        return (await self.event(("joined", "lobby"), after=since, within=within)).data

    async def send(self, message: dict[str, Any], within: float = 10) -> None:
        """Send on the socket in use, waiting (up to ``within``) for one while the peer reconnects."""
        async with asyncio.timeout(within):
            while True:
                await self.in_room.wait()
                assert self.ws is not None
                try:
                    await self.ws.send_json(message)
                    return
                except (ConnectionError, aiohttp.ClientError):
                    await asyncio.sleep(0.05)

    def stay_away(self) -> None:
        """From now on, when the socket drops this peer does not come back (a browser closed at that moment):
        its media goes too."""
        self.comes_back = False

    async def leave(self) -> None:
        await self.send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        self._closing = True
        for task in (self._negotiation, self._runner):
            if task is not None:
                task.cancel()
        await self._drop_media()
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        for task in (self._negotiation, self._runner):
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*self._closing_media, return_exceptions=True)

    # ---- what a test asks ----

    def seen(self, kind: str | tuple[str, ...], *, after: float = -math.inf,
             where: Callable[[dict[str, Any]], bool] | None = None) -> list[Event]:
        kinds = (kind,) if isinstance(kind, str) else kind
        return [e for e in self.events if e.type in kinds and e.at >= after and (where is None or where(e.data))]

    async def event(self, kind: str | tuple[str, ...], *, after: float = -math.inf, within: float = 10,
                    where: Callable[[dict[str, Any]], bool] | None = None) -> Event:
        """The first event of ``kind`` at or after ``after`` (and matching ``where``), waiting for it."""
        await self.until(lambda: bool(self.seen(kind, after=after, where=where)), within,
                         f"{self.name}: no {kind} since {after:.2f}")
        return self.seen(kind, after=after, where=where)[0]

    async def media_flowing_from(self, other: ResilientPeer | str, *, since: float, within: float,
                                 frames: int = 5, after_epoch: int = 0) -> float:
        """Wait until ``frames`` frames of ``other``'s camera have decoded correctly here after ``since``,
        through a relay of an epoch above ``after_epoch`` (frames still in flight through an old relay do not
        count); returns the seconds from ``since`` to the last of them."""
        def reached() -> float | None:
            pid = other.id if isinstance(other, ResilientPeer) else other
            times = [t for t, epoch in self.frames[pid] if t > since and epoch > after_epoch] if pid else []
            return times[frames - 1] if len(times) >= frames else None

        name = other.name if isinstance(other, ResilientPeer) else other
        await self.until(lambda: reached() is not None, within,
                         f"{self.name} decodes no video of {name} since {since:.2f} (epoch > {after_epoch})")
        took = reached()
        assert took is not None
        return took - since

    def last_frame_from(self, other: ResilientPeer) -> float | None:
        """When a frame of ``other``'s camera last decoded correctly here (None: never)."""
        frames = self.frames.get(other.id or "")
        return frames[-1][0] if frames else None

    def longest_gap(self, other: ResilientPeer, start: float, end: float) -> float:
        """The longest time in [start, end] without a correct frame from ``other``."""
        assert other.id is not None
        times = [start, *(t for t, _ in self.frames[other.id] if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    async def until(self, condition: Callable[[], bool], within: float, failure: str) -> None:
        """Wait until ``condition()`` holds; fail with ``failure`` (and the latest events) after ``within``."""
        deadline = self.now() + within
        while not condition():
            if self._runner is not None and self._runner.done() and not self._runner.cancelled() \
                    and (error := self._runner.exception()) is not None:
                raise AssertionError(f"{self.name}'s connection failed: {error!r}") from error
            if self.now() > deadline:
                raise AssertionError(f"{failure} (within {within:g} s); last events: {self.recent()}")
            await asyncio.sleep(0.02)

    def recent(self, count: int = 8) -> list[tuple[float, str] | tuple[float, str, Any]]:
        """The latest events, with an error's code and a closed socket's."""
        shown: list[tuple[float, str] | tuple[float, str, Any]] = []
        for e in self.events[-count:]:
            detail = e.data.get("code") if e.type in ("error", "socket-closed") else None
            shown.append((round(e.at, 2), e.type, detail) if detail is not None else (round(e.at, 2), e.type))
        return shown

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append(Event(self.now(), kind, data))

    # ---- the connection ----

    async def _run(self, url: str) -> None:
        ws = await self._open(url)
        while True:
            code = await self._serve(ws)
            self.in_room.clear()
            self._record("socket-closed", {"code": code, "url": self.url})
            if self._closing:
                return
            if not self.comes_back:
                await self._drop_media()
                return
            if code in FINAL_CLOSES:
                return
            assert self.url is not None
            ws = await self._reconnect(failed=self.url)

    async def _open(self, url: str) -> ClientWebSocketResponse:
        """Token, socket and join (with ``resume`` once there is one) at ``url``."""
        async with asyncio.timeout(CONNECT_SECONDS):
            token = await self.credential.room_token(self.http, url)
            ws = await self.http.ws_connect(f"{url.replace('http', 'ws', 1)}{signaling_path()}")
            join: dict[str, Any] = {"type": "join", "protocol": PROTOCOL_VERSION, "token": token}
            if self.resume:
                join["resume"] = self.resume
            await ws.send_json(join)
        self.ws, self.url, self._token = ws, url, token
        self._record("socket-open", {"url": url, "resume": bool(self.resume)})
        return ws

    async def _reconnect(self, failed: str) -> ClientWebSocketResponse:
        """The other nodes first, in the list's order after the one that failed, that one last; each round
        after the browser's backoff (a load balancer would have picked a live node for it)."""
        deadline = self.now() + self.reconnect_within
        for attempt in itertools.count():
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)] * random.uniform(0.75, 1.25))
            urls = list(self.urls)
            if failed in urls:
                at = urls.index(failed)
                urls = urls[at + 1:] + urls[:at] + [failed]
            for url in urls:
                try:
                    return await self._open(url)
                except (OSError, TimeoutError, aiohttp.ClientError, Refused) as error:
                    self._record("connect-failed", {"url": url, "error": repr(error)})
            if self.now() > deadline:
                break
        raise AssertionError(f"{self.name} could not reconnect within {self.reconnect_within:g} s")

    async def _serve(self, ws: ClientWebSocketResponse) -> int | None:
        """Read one socket until it closes; its close code (the close frame's, else what aiohttp saw)."""
        while True:
            message = await ws.receive()
            if message.type is WSMsgType.TEXT:
                data = json.loads(message.data)
                self._record(data["type"], data)
                try:
                    await self._on(ws, data)
                except (ConnectionError, aiohttp.ClientError):
                    pass  # the socket is going: the next receive says how
                continue
            code = message.data if message.type is WSMsgType.CLOSE else ws.close_code
            if not ws.closed:
                await ws.close()
            return code

    async def _on(self, ws: ClientWebSocketResponse, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            await ws.send_json({"type": "pong", "id": message.get("id")})
        elif kind in ("joined", "lobby"):
            self.id, self.resume = message["self"]["id"], message["resume"]
            if kind == "joined":
                self.in_room.set()
                self._follow(message["mode"], message["relay_epoch"], message["relay_slots"], rejoined=True)
        elif kind == "mode":
            self._follow(message["mode"], message["relay_epoch"], message["relay_slots"])
        elif kind == "answer" and message.get("from") == "relay":
            answer = self._answers.pop(message["offer_id"], None)
            if answer is not None and not answer.done():
                answer.set_result(message["sdp"])
        elif kind == "layout" and self.media is not None:
            self.media.on_layout(message["slots"])
        elif kind == "error" and message["code"] in ("not-relayed", "negotiation-failed"):
            # Errors name no offer: every offer waiting is refused, and made again.
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_exception(RelayRefused(message["code"]))
            self._answers.clear()
        elif kind == "error" and message["code"] == "resume-failed":
            # As the browser does: the seat is gone, so join afresh on the same socket.
            self.resume = None
            await ws.send_json({"type": "join", "protocol": PROTOCOL_VERSION, "token": self._token})

    # ---- media ----

    def _follow(self, mode: str, epoch: int, slots: int, *, rejoined: bool = False) -> None:
        """Connect once per relay epoch; after a (re)join, an offer in flight on the old socket may be lost,
        so a negotiation not finished yet starts again."""
        negotiating = self._negotiation is not None and not self._negotiation.done()
        if mode != "relay":
            if negotiating:
                assert self._negotiation is not None
                self._negotiation.cancel()
            self._negotiation = asyncio.create_task(self._drop_media())
            return
        if epoch == self.media_epoch and self.media is not None:
            return
        if negotiating and epoch == self._negotiating and not rejoined:
            return
        if negotiating:
            assert self._negotiation is not None
            self._negotiation.cancel()
        self._negotiating = epoch
        self._negotiation = asyncio.create_task(self._connect_relay(epoch, slots, self._negotiation))

    async def _connect_relay(self, epoch: int, slots: int, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.gather(before, return_exceptions=True)
        await self._drop_media()  # close the old relay connection first, as PROTOCOL.md says
        while True:
            await self.in_room.wait()
            assert self.id is not None and self.ws is not None
            client = RelayClient(self.id, slots=slots)
            self.media = client  # layouts from now on are for this connection
            try:
                await client.pc.setLocalDescription(await client.pc.createOffer())
                offer_id = f"{epoch}.{next(self._offers)}"
                answer = self._answers[offer_id] = self.loop.create_future()
                await self.ws.send_json({"type": "offer", "to": "relay", "sdp": client.pc.localDescription.sdp,
                                         "offer_id": offer_id})
                sdp = await asyncio.wait_for(answer, ANSWER_SECONDS)
            except (TimeoutError, ConnectionError, aiohttp.ClientError, RelayRefused) as error:
                self._record("relay-offer-unanswered", {"epoch": epoch, "error": repr(error)})
                await self._drop_media()
                await asyncio.sleep(0.2)
                continue
            except asyncio.CancelledError:
                await self._drop_media()
                raise
            await client.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            self.media_epoch = epoch
            self._watchers = [asyncio.create_task(self._watch(client, t, epoch))
                              for t in client.pc.getTransceivers() if t.kind == "video" and t.direction == "recvonly"]
            self._record("relay-connected", {"epoch": epoch})
            return

    async def _watch(self, client: RelayClient, slot: RTCRtpTransceiver, epoch: int) -> None:
        track = slot.receiver.track
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            owner = client.layout.get(slot.mid or "")
            if owner is not None and palette_index(frame) is not None:
                self.frames[owner].append((self.now(), epoch))

    async def _drop_media(self) -> None:
        media, self.media, self.media_epoch = self.media, None, 0
        watchers, self._watchers = self._watchers, []
        for task in watchers:
            task.cancel()
        if media is not None:
            # Closed to the end even when the negotiation doing it is cancelled (a new epoch came): a close cut
            # short leaves aiortc's receivers running, whose decoder threads then keep the process from exiting.
            closing = asyncio.ensure_future(media.close())
            self._closing_media.add(closing)
            closing.add_done_callback(self._closing_media.discard)
            await asyncio.shield(closing)
        await asyncio.gather(*watchers, return_exceptions=True)
