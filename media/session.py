"""A room's media relay on the node the room chose for it, driven by the room's log like any connection.

The room delivers to the relay what it must act on (offers and candidates sent ``to: "relay"``, who
left, recording on or off); the relay answers through the log (``FromRelay`` events), so a participant
on any node gets its answer and layout.

The session sees the node only through a ``RelayHost``: what the room looks like now, a way to answer
through the log, and the recording store. On the node's own loop that host is the hub itself
(``RelaySession.on_node``); in a worker process (media/workers.py) it is the pipe to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiortc import RTCIceServer

from signaling import logcontext
from signaling.effects import relay_conn
from signaling.errors import SignalingError
from signaling.events import FromRelay, RoomEvent
from signaling.hub import RoomHub
from signaling.messages import (
    ParticipantLeft,
    ParticipantResumed,
    RecordingState,
    RelayedCandidate,
    RelayedOffer,
    RelayedReceiveVideo,
)
from signaling.outbox import CloseRequest, OutboxItem
from signaling.room import Room

from .errors import MediaError
from .forwarding import Publication
from .recorder import Finished, Segment, SegmentResult, finalize
from .relay import Layout, Relay

log = logging.getLogger(__name__)

RELAY_OUTBOX = 10_000  # the relay reads its outbox at once; the limit only guards against a stuck relay


@dataclass(frozen=True)
class SegmentFile:
    """Where the store wants one segment written, and the id it keeps it under."""

    recording_id: int
    live_path: Path
    final_path: Path
    key: bytes | None = None  # the segment's own data key; None: the session's key


class RecordingStore(Protocol):
    """What keeps recordings' metadata (server/consultations/recordings.py implements it over the database)."""

    async def begin(self, room: Room) -> SegmentFile: ...

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None: ...


@dataclass(frozen=True)
class RelayView:
    """The room as its relay needs to see it now: what each seated member may do (publish, subscribe),
    whether anyone is left, whether a recording is wanted, who shares a screen."""

    grants: dict[str, tuple[bool, bool]]
    occupied: bool
    recording: bool
    sharing: frozenset[str] = frozenset()

    @classmethod
    def of(cls, room: Room | None) -> RelayView:
        if room is None:
            return cls({}, occupied=False, recording=False)
        seated = [m for m in room.members.values() if m.seated]
        return cls({m.id: (m.grants.publish, m.grants.subscribe) for m in seated},
                   occupied=bool(room.participants), recording=room.recording,
                   sharing=frozenset(m.id for m in seated if m.participant.media.screen_sharing))


class RelayHost(Protocol):
    """The node, as a relay session sees it."""

    def view(self) -> RelayView:
        """The room now."""

    async def submit(self, event: RoomEvent) -> None:
        """Append to the room's log (raises SignalingError when the room refuses or the bus is down)."""

    async def begin(self) -> SegmentFile | None:
        """Where a new recording segment goes; None: nothing to record into (no store, or no room)."""

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None:
        """Keep a finished (or failed) segment's metadata."""


class Inbox(Protocol):
    async def get(self) -> OutboxItem: ...


class HubHost:
    """A relay on the node's own loop: the hub's copy of the room, its log, and the recording store."""

    def __init__(self, hub: RoomHub, room_id: str, store: RecordingStore | None) -> None:
        self.hub, self.room_id, self.store = hub, room_id, store

    def view(self) -> RelayView:
        return RelayView.of(self.hub.room(self.room_id))

    async def submit(self, event: RoomEvent) -> None:
        await self.hub.submit(self.room_id, event)

    async def begin(self) -> SegmentFile | None:
        room = self.hub.room(self.room_id)
        if self.store is None or room is None:
            return None
        return await self.store.begin(room)

    async def finish(self, segment: SegmentFile, result: SegmentResult, finished: Finished | None) -> None:
        if self.store is not None:
            await self.store.finish(segment, result, finished)


class InOrder:
    """Submits events one after another, in the order they were put.

    The relay's callbacks are synchronous and fire in bursts (a participant's audio and video tracks
    arrive together, each filling every other participant's slots). Each layout carries a participant's
    whole slot map, so the last one delivered must be the last one made. Concurrent submissions race
    to a shared Redis log over different connections and can land in either order, leaving a browser
    with an older layout that lacks someone.
    """

    def __init__(self, submit: Callable[[RoomEvent], Awaitable[None]]) -> None:
        self._submit = submit
        # Made on the first put: a relay that never answers anyone (most rooms, most of the time before
        # the first offer) holds no queue and no task.
        self._queue: asyncio.Queue[RoomEvent | None] | None = None
        self._task: asyncio.Task[None] | None = None

    def put(self, event: RoomEvent) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._drain(self._queue))
        self._queue.put_nowait(event)

    async def close(self) -> None:
        """Submit what was put so far, then stop."""
        if self._queue is None or self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task

    async def _drain(self, queue: asyncio.Queue[RoomEvent | None]) -> None:
        while (event := await queue.get()) is not None:
            try:
                await self._submit(event)
            except Exception:  # one lost event must not stop the ones after it
                log.exception("could not submit %s", event.kind)


class RelaySession:
    """One room's relay: reads what the room delivers from ``inbox`` until a CloseRequest (or until nobody is
    left), and answers through ``host``. ``on_close`` runs when it has stopped."""

    def __init__(self, inbox: Inbox, host: RelayHost, room_id: str, epoch: int, *,
                 ice_servers: list[RTCIceServer] | None = None, key: bytes | None = None, video_codec: str = "vp8",
                 segment_seconds: float = 900.0, on_close: Callable[[], None] | None = None) -> None:
        self.outbox, self.host, self.room_id, self.epoch = inbox, host, room_id, epoch
        self.relay = Relay(ice_servers=ice_servers, video_codec=video_codec, on_layout=self._layout,
                           on_publication=self._published)
        self.key = key
        self.segment: tuple[Segment, SegmentFile] | None = None
        # A recording a host started while the relay had no node to run on starts with the first track.
        self.recording_wanted = host.view().recording
        self.segment_seconds = segment_seconds
        self._on_close = on_close
        self._segment_timer: asyncio.Task[None] | None = None
        self._rolling = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing = InOrder(self._submit)
        self._audiences: dict[str, list[str]] = {}  # what each publisher was last told of who gets audio only
        self.task = asyncio.create_task(self._run(), context=logcontext.room_context(room_id))  # lines name the room

    @classmethod
    def on_node(cls, hub: RoomHub, room_id: str, epoch: int, *, store: RecordingStore | None = None,
                **config: Any) -> RelaySession:
        """A relay on the node's own event loop, fed by the hub like a connection."""
        conn = relay_conn(room_id, epoch)
        outbox = hub.attach(conn, room_id=room_id, limit=RELAY_OUTBOX)
        return cls(outbox, HubHost(hub, room_id, store), room_id, epoch,
                   on_close=lambda: hub.detach(conn, room_id), **config)

    def census(self) -> tuple[dict[str, int], dict[str, int]]:
        return self.relay.census()

    async def _run(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, CloseRequest):
                    return
                try:
                    if not await self._handle(item):
                        return
                except MediaError as error:
                    to = getattr(item, "from_", None)
                    if to:
                        self._send(FromRelay(epoch=self.epoch, to=to, type="error", code=error.code,
                                             message=error.message))
                except Exception:  # one participant's bad moment must not end everyone's media
                    log.exception("relay %s: could not handle %s", self.room_id, type(item).__name__)
        finally:
            await self._stop_recording()
            await self.relay.close()
            await self._outgoing.close()  # the layouts that closing the relay sent go out first
            if self._tasks:  # a recording's file being finished: its metadata goes to the store through the host
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._on_close is not None:
                self._on_close()

    async def _handle(self, item: object) -> bool:
        """Act on one delivery; False when the room has nobody left to relay for."""
        view = self.host.view()
        self.relay.share_screens(view.sharing)  # (a screen share's start or end comes as media-state)
        if isinstance(item, RelayedOffer):
            grants = view.grants.get(item.from_)
            if grants is None:
                return True
            answer = await self.relay.answer(item.from_, item.sdp, publish=grants[0], subscribe=grants[1])
            self._send(FromRelay(epoch=self.epoch, to=item.from_, type="answer", sdp=answer, offer_id=item.offer_id))
            self._audiences.pop(item.from_, None)  # a new connection to us starts with nobody told
            self._tell_audiences()
        elif isinstance(item, RelayedReceiveVideo):
            self.relay.want_video(item.from_, item.video)
        elif isinstance(item, RelayedCandidate):
            candidate = item.candidate
            await self.relay.add_candidate(item.from_, candidate.candidate if candidate else None,
                                           candidate.sdpMid if candidate else None,
                                           candidate.sdpMLineIndex if candidate else None)
        elif isinstance(item, ParticipantResumed):
            # What we sent while their socket was down is lost with it: their layout and audience again.
            peer = self.relay.peers.get(item.participant_id)
            if peer is not None:
                self._layout(item.participant_id, peer.layout())
            self._tell_audiences(again=item.participant_id)
        elif isinstance(item, ParticipantLeft):
            await self.relay.remove(item.participant_id)
            if not view.occupied:
                return False
            self._tell_audiences()  # one who got someone's audio only is gone, even if they saw nobody
        elif isinstance(item, RecordingState):
            if item.on:
                await self._start_recording()
            else:
                await self._stop_recording()
        return True

    # ---- recording ----

    async def _start_recording(self) -> None:
        self.recording_wanted = True
        if self.relay.publications():  # else the first publication starts the first segment
            await self._start_segment()

    async def _stop_recording(self) -> None:
        self.recording_wanted = False
        await self._stop_segment()

    async def _start_segment(self) -> None:
        if self.key is None or self.segment is not None:
            return
        file = await self.host.begin()
        if file is None:
            return
        if not self.recording_wanted or self.segment is not None:
            # Stopped (consent withdrawn, say) or begun elsewhere while the store answered: this segment
            # records nothing, and an empty result removes its row.
            await self.host.finish(file, SegmentResult(file.live_path, time.time(), []), None)
            return
        file.live_path.parent.mkdir(parents=True, exist_ok=True)
        segment = Segment(file.live_path, file.key or self.key, self.relay.publications())
        self.segment = (segment, file)
        self._segment_timer = asyncio.create_task(self._segment_ends(segment))
        log.info("recording %d started in %s", file.recording_id, self.room_id)

    async def _stop_segment(self) -> None:
        """Stop taking frames at once (consent may have just been withdrawn); finish the file after."""
        if self.segment is None:
            return
        segment, file = self.segment
        self.segment = None
        segment.stop()
        if self._segment_timer is not None and self._segment_timer is not asyncio.current_task():
            self._segment_timer.cancel()
        self._segment_timer = None
        self._spawn(self._finish(segment, file))

    async def _finish(self, segment: Segment, file: SegmentFile) -> None:
        result = await asyncio.to_thread(segment.join)
        finished = None
        if result.tracks:
            try:
                finished = await asyncio.to_thread(finalize, file.live_path, file.final_path,
                                                  file.key or self.key)  # type: ignore[arg-type]
            except Exception:
                log.exception("recording %d could not be finished", file.recording_id)
        await self.host.finish(file, result, finished)
        log.info("recording %d finished (%s)", file.recording_id, "ok" if finished else "nothing kept")

    async def _segment_ends(self, segment: Segment) -> None:
        """Roll to a new segment after segment_seconds, so no file grows without bound (finishing one
        holds it in memory while it is remuxed)."""
        await asyncio.sleep(self.segment_seconds)
        async with self._rolling:
            if self.segment is not None and self.segment[0] is segment and self.recording_wanted:
                await self._stop_segment()
                await self._start_segment()

    def _published(self, publication: Publication) -> None:
        # A track that starts mid-recording cannot join a file whose header is written: roll to a new
        # segment with everyone's tracks in it.
        if self.recording_wanted:
            self._spawn(self._roll())

    async def _roll(self) -> None:
        await asyncio.sleep(0.5)  # a participant's audio and video arrive together: roll once, not twice
        async with self._rolling:
            flowing = {id(p) for p in self.relay.publications()}
            recorded = {id(p) for p in self.segment[0].publications} if self.segment else set()
            if not self.recording_wanted or flowing == recorded:
                return
            await self._stop_segment()
            await self._start_segment()

    # ---- answering through the room's log ----

    def _layout(self, participant_id: str, layout: Layout) -> None:
        self._send(FromRelay(epoch=self.epoch, to=participant_id, type="layout", layout=layout,
                             audio_layout=self.relay.audio_layout(participant_id),
                             video_layout=self.relay.video_layout(participant_id)))
        self._tell_audiences()

    def _tell_audiences(self, *, again: str | None = None) -> None:
        """Tell each publisher who gets only their audio now, where that changed (a relay starts with
        nobody told: everyone gets video), and ``again`` whatever it is."""
        for publisher_id in self.relay.peers:
            audio_only = self.relay.audio_only(publisher_id)
            if self._audiences.get(publisher_id, []) != audio_only or publisher_id == again:
                self._audiences[publisher_id] = audio_only
                self._send(FromRelay(epoch=self.epoch, to=publisher_id, type="audience", audio_only=audio_only))
        for gone in self._audiences.keys() - self.relay.peers.keys():
            del self._audiences[gone]

    def _send(self, event: RoomEvent) -> None:
        self._outgoing.put(event)

    async def _submit(self, event: RoomEvent) -> None:
        try:
            await self.host.submit(event)
        except SignalingError as error:  # the participant left meanwhile, or the bus is down
            log.info("relay %s: %s not delivered: %s", self.room_id, event.kind, error.code)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
