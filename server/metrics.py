"""The node's metrics for Prometheus: one registry per app, each counter and histogram fed from one place, and
gauges read from the app's state at each scrape (``Metrics.on_scrape``) rather than kept up to date everywhere.

Label values are bounded: an HTTP request is counted under its route's template (``/api/referrals/{referral_id}``),
never its path, which would carry ids and the tokens of invitation links and calendar feeds; a method outside
HTTP's usual ones is ``OTHER``; a signaling message under its type. ``GET /metrics`` itself is
``server/api/metrics.py``; who may read it, ``permissions.require_metrics_access``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from media.workers import NodeRelay
from signaling.hub import RoomHub

from .appkeys import METRICS
from .audit import trail as audit_trail
from .consultations.recordings import DatabaseRecordingStore
from .db import Database
from .identity.login_throttle import Throttle

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"  # the route label of a request no route took (a 404, a 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PROBE_SECONDS = 0.5  # the longest a scrape waits for a measurement it takes itself (Redis's round trip)
# Handling one signaling message is mostly appending an event to the room's log: milliseconds locally,
# a round trip to Redis across nodes.
SIGNALING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# What a reading at scrape time returns: one value, a value per tuple of label values, or None for no sample
# (a database pool that has no count of its connections: nothing is better than an invented number).
Reading = float | Mapping[tuple[str, ...], float] | None
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric read at scrape time: its name, help text, label names and type."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    kind: Literal["gauge", "counter"] = "gauge"

    def empty(self) -> GaugeMetricFamily | CounterMetricFamily:
        family = GaugeMetricFamily if self.kind == "gauge" else CounterMetricFamily
        return family(self.name, self.documentation, labels=self.labels)

    def sampled(self, reading: Reading) -> Metric | None:
        if reading is None:
            return None
        family = self.empty()
        if isinstance(reading, Mapping):
            for values, value in reading.items():
                family.add_metric(list(values), value)
        else:
            family.add_metric([], reading)
        return family


class ReadingsCollector(Collector):
    """Metrics read together from the app's state each time they are scraped: ``read`` is called once per
    scrape and returns one reading per family, in order (one census of the relays for two metrics)."""

    def __init__(self, families: Sequence[Family], read: Callable[[], Sequence[Reading]]) -> None:
        self.families, self.read = tuple(families), read

    def describe(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.empty()

    def collect(self) -> Iterator[Metric]:
        try:
            readings = self.read()
        except Exception:  # a reading that fails loses its own samples, not the whole scrape
            log.exception("metrics: reading %s failed", ", ".join(f.name for f in self.families))
            return
        for family, reading in zip(self.families, readings, strict=True):
            metric = family.sampled(reading)
            if metric is not None:
                yield metric


class ScrapeCollector(ReadingsCollector):
    """A metric read from the app's state each time it is scraped."""

    def __init__(self, name: str, documentation: str, read: Callable[[], Reading], *,
                 labels: Sequence[str] = (), kind: Literal["gauge", "counter"] = "gauge") -> None:
        super().__init__([Family(name, documentation, tuple(labels), kind)], lambda: (read(),))


@dataclass
class Probe:
    """A measurement taken before each scrape, because it must be awaited (a collector's ``collect`` cannot)."""

    measure: Callable[[], Awaitable[float | None]]
    last: float | None = None

    async def take(self) -> None:
        try:
            self.last = await asyncio.wait_for(self.measure(), PROBE_SECONDS)
        except Exception:  # noqa: BLE001  (timed out, or failed: either way there is no sample this time)
            self.last = None


class Metrics:
    """This app's registry and the counters and histograms fed by its middleware and hooks."""

    def __init__(self) -> None:
        # Never prometheus_client's global registry: tests run many apps in one process, each with its own.
        self.registry = CollectorRegistry()
        self._probes: list[Probe] = []
        registry = self.registry
        self.http_requests = Counter(
            "telemed_http_requests", "HTTP requests answered, by route template, method and status class.",
            ["route", "method", "status"], registry=registry)
        self.http_seconds = Histogram(
            "telemed_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by route template, method and status class "
            "(WebSocket upgrades are counted, not timed).",
            ["route", "method", "status"], registry=registry)
        self.signaling_seconds = Histogram(
            "telemed_signaling_message_duration_seconds",
            "Seconds this node took to handle a client's signaling message, by message type.",
            ["type"], buckets=SIGNALING_BUCKETS, registry=registry)
        self.audit_appends = Counter(
            "telemed_audit_appends", "Entries this node appended to the audit chain (committed).", registry=registry)
        self.login_failures = Counter(
            "telemed_login_failures", "Logins refused for a wrong username or password.", registry=registry)
        self.login_throttled = Counter(
            "telemed_login_throttled", "Logins refused unchecked: too many failures from the address.",
            registry=registry)

    def on_scrape(self, name: str, documentation: str, read: Callable[[], Reading], *, labels: Sequence[str] = (),
                  kind: Literal["gauge", "counter"] = "gauge") -> None:
        """Have ``read`` called at each scrape for metric ``name``: the way to expose state without updating a
        gauge wherever it changes. ``read`` returns a value, a mapping from a tuple of ``labels`` values to a
        value, or None for no sample now; it must be quick and must not block (it runs on the event loop).
        Anything that holds state can be watched like this, e.g. the media relay's streams::

            metrics.on_scrape("telemed_relay_streams", "Streams the relays forward.", lambda: count_streams())
        """
        self.registry.register(ScrapeCollector(name, documentation, read, labels=labels, kind=kind))

    def on_scrape_together(self, families: Sequence[Family], read: Callable[[], Sequence[Reading]]) -> None:
        """Like ``on_scrape`` for several metrics that come from one look at the state: ``read`` is called
        once per scrape and returns a reading per family, in order."""
        self.registry.register(ReadingsCollector(families, read))

    def probe_on_scrape(self, name: str, documentation: str, measure: Callable[[], Awaitable[float | None]]) -> None:
        """Like ``on_scrape``, for a value that must be awaited: ``measure`` runs before each scrape, given
        ``PROBE_SECONDS``; a failure, a timeout or None leaves the sample out."""
        probe = Probe(measure)
        self._probes.append(probe)
        self.on_scrape(name, documentation, lambda: probe.last)

    async def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics now, in the format ``accept`` asks for (Prometheus's text format unless it asks for
        OpenMetrics), and its content type."""
        await asyncio.gather(*(probe.take() for probe in self._probes))
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def request_answered(self, request: web.Request, status: int, seconds: float) -> None:
        labels = (route_template(request), request.method if request.method in METHODS else "OTHER",
                  f"{status // 100}xx")
        self.http_requests.labels(*labels).inc()
        if status != 101:  # a WebSocket's "answer" comes when it closes: its lifetime is not a latency
            self.http_seconds.labels(*labels).observe(seconds)

    def signaling_handled(self, message_type: str, seconds: float) -> None:
        self.signaling_seconds.labels(message_type).observe(seconds)


def route_template(request: web.Request) -> str:
    """The request's route as declared (``/api/referrals/{referral_id}``), never its path."""
    match = request.match_info
    if match.http_exception is not None or match.route.resource is None:
        return UNMATCHED
    return match.route.resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request, with the status it finally went out with (the outermost middleware, so
    the error middleware's answers and redirects are counted as sent)."""
    metrics, started = request.app[METRICS], time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        metrics.request_answered(request, exc.status, time.perf_counter() - started)
        raise
    except Exception:  # aiohttp answers it with a 500
        metrics.request_answered(request, 500, time.perf_counter() - started)
        raise
    metrics.request_answered(request, response.status, time.perf_counter() - started)
    return response


def watch_hub(metrics: Metrics, hub: RoomHub) -> None:
    """This node's rooms, participants and signaling sockets, counted from the hub at each scrape."""
    metrics.on_scrape("telemed_signaling_connections", "Signaling WebSockets open on this node.",
                      lambda: hub.census().connections)
    metrics.on_scrape("telemed_rooms", "Rooms this node follows (it has, or recently had, a socket in them).",
                      lambda: hub.census().rooms)
    metrics.on_scrape(
        "telemed_room_participants",
        "Participants whose socket is (or, reconnecting, was) on this node, by status: present, waiting, reconnecting.",
        lambda: {(status.value,): count for status, count in hub.census().participants.items()},
        labels=["status"])


def watch_relays(metrics: Metrics, relays: Mapping[str, NodeRelay]) -> None:
    """The media relays this node runs, their forwarded streams by kind and their viewers by layer (what
    each viewer's link gets: high, low, paused), counted at each scrape: one census of each relay per
    scrape gives both counts."""
    def census() -> tuple[Reading, Reading]:
        streams, viewers = {"audio": 0, "video": 0}, {"high": 0, "low": 0, "paused": 0}
        for session in relays.values():
            room_streams, room_viewers = session.census()
            for kind, count in room_streams.items():
                streams[kind] += count
            for layer, count in room_viewers.items():
                viewers[layer] += count
        return ({(kind,): count for kind, count in streams.items()},
                {(layer,): count for layer, count in viewers.items()})

    metrics.on_scrape("telemed_relays", "Media relays (one per relayed room) running on this node.",
                      lambda: len(relays))
    metrics.on_scrape_together(
        [Family("telemed_relay_streams", "Streams this node's relays forward now, by kind.", ("kind",)),
         Family("telemed_relay_viewers", "Viewers of this node's relays by the video layer their link gets: high, "
                "low, paused (audio only).", ("layer",))],
        census)


def watch_redis(metrics: Metrics, hub: RoomHub) -> None:
    """Redis's round trip, measured with the bus's own ping at each scrape (no sample while it fails)."""
    async def round_trip() -> float | None:
        started = time.perf_counter()
        return time.perf_counter() - started if await hub.log.ping() else None

    metrics.probe_on_scrape("telemed_redis_round_trip_seconds",
                            "Seconds Redis took to answer a ping, measured at this scrape (none if it did not "
                            f"answer within {PROBE_SECONDS:g} s).", round_trip)


def watch_database(metrics: Metrics, database: Database) -> None:
    """Connections of the database's pool handed out now. A pool that keeps no count (SQLite in memory) gives
    no sample."""
    def in_use() -> float | None:
        checked_out = getattr(database.engine.pool, "checkedout", None)
        return float(checked_out()) if callable(checked_out) else None

    metrics.on_scrape("telemed_db_pool_connections_in_use", "Database connections handed out by the pool now.",
                      in_use)


def watch_recordings(metrics: Metrics, store: DatabaseRecordingStore) -> None:
    """What the relays on this node are recording, read from the store they record through (not from the
    relays: media/ knows nothing of metrics)."""
    metrics.on_scrape("telemed_recordings_in_progress", "Recording segments this node is writing now.",
                      lambda: len(store.in_progress))
    metrics.on_scrape("telemed_recording_bytes", "Bytes of the recording segments this node finished and kept.",
                      lambda: store.bytes_kept, kind="counter")


def count_audit_appends(metrics: Metrics, database: Database) -> None:
    """Count the entries each commit through ``database`` appends to the audit chain."""
    audit_trail.count_appends(database, metrics.audit_appends.inc)


@dataclass
class CountingThrottle:
    """The login throttle, counting what every login goes through it for: each failure it is told of, and
    each login it holds back."""

    throttle: Throttle
    metrics: Metrics

    async def retry_after(self, address: str, username: str) -> float | None:
        wait = await self.throttle.retry_after(address, username)
        if wait is not None:
            self.metrics.login_throttled.inc()
        return wait

    async def failed(self, address: str, username: str) -> None:
        self.metrics.login_failures.inc()
        await self.throttle.failed(address, username)

    async def succeeded(self, address: str, username: str) -> None:
        await self.throttle.succeeded(address, username)

    async def close(self) -> None:
        await self.throttle.close()
