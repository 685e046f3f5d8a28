"""GET /metrics: Prometheus's text format from a real app, open only to the monitoring network or the metrics
token, counting requests by route template, logins and audit appends, with a registry of each app's own."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from media.recorder import Finished, SegmentResult, TrackInfo
from server.appkeys import DATABASE, HUB, METRICS, RECORDING_KEY, SETTINGS
from server.consultations.recordings import DatabaseRecordingStore
from server.devprocs import RedisServer
from server.metrics import Metrics, ScrapeCollector, watch_recordings, watch_relays
from server.settings import Secret, Settings
from signaling.grants import room_id_for
from signaling.room import Room

from ..conftest import _start, login
from ..support.signaling_client import connect, expect, guest_token, room_token

TOKEN = "m" * 40
ROOT = Path(__file__).resolve().parents[2]


async def exposition(client: TestClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    return await response.text()


async def scrape(client: TestClient, **headers: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The app's metrics, parsed by prometheus_client's own parser: each sample name's (labels, value)s."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(await exposition(client, **headers)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def series_names(text: str) -> set[str]:
    """Every series name the exposition declares, sampled yet or not (a labelled histogram has no sample until
    its first observation): a counter's ``_total``, a histogram's ``_bucket``, ``_count`` and ``_sum``."""
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in SERIES.get(family.type, ("",))}


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(value for have, value in samples.get(name, []) if labels.items() <= have.items())


@pytest.fixture
async def fenced(settings: Settings) -> AsyncIterator[TestClient]:
    """An app whose monitoring network leaves out loopback, where the test client connects from."""
    client = await _start(dataclasses.replace(settings, metrics_networks=(ipaddress.ip_network("10.0.0.0/8"),)))
    yield client
    await client.close()


@pytest.fixture
async def with_token(settings: Settings) -> AsyncIterator[TestClient]:
    """An app open to no network, only to the metrics token."""
    client = await _start(dataclasses.replace(settings, metrics_networks=(), metrics_token=Secret(TOKEN)))
    yield client
    await client.close()


async def test_a_scrape_from_loopback_parses(client: TestClient) -> None:
    """Guards the default (loopback may scrape) and the format: the exposition parses, and the state read at
    scrape time is there (rooms, sockets, participants by status, the database pool, recordings)."""
    samples = await scrape(client)
    assert total(samples, "telemed_rooms") == 0 and total(samples, "telemed_signaling_connections") == 0
    assert {labels["status"] for labels, _ in samples["telemed_room_participants"]} == {
        "present", "waiting", "reconnecting"}
    [(_, in_use)] = samples["telemed_db_pool_connections_in_use"]  # the file database's pool keeps a count
    assert in_use >= 0 and in_use == int(in_use)
    assert total(samples, "telemed_recordings_in_progress") == 0 and "telemed_recording_bytes_total" in samples
    assert "telemed_redis_round_trip_seconds" not in samples, "no Redis configured, no sample invented"


async def test_refused_outside_the_monitoring_network(fenced: TestClient) -> None:
    """Guards the fence: a peer outside TELEMED_METRICS_NETWORKS gets a 403 in the API's JSON shape saying why,
    and naming an allowed address in X-Forwarded-For does not get it in."""
    for headers in ({}, {"X-Forwarded-For": "10.1.2.3"}):
        response = await fenced.get("/metrics", headers=headers)
        assert response.status == 403
        error = (await response.json())["error"]
        assert error["code"] == "forbidden" and "TELEMED_METRICS_NETWORKS" in error["message"]


async def test_a_forwarded_request_is_not_the_scrapers(client: TestClient) -> None:
    """Guards the shipped layout, an nginx on loopback in front of the node: what it forwards comes from
    loopback but is some client's, so the default loopback network does not open the metrics to it."""
    response = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 403


async def test_the_token_opens_and_a_wrong_one_is_refused(with_token: TestClient) -> None:
    """Guards TELEMED_METRICS_TOKEN: the right Bearer token scrapes from anywhere; a wrong one or none is a
    401 saying what is missing, and the token never appears in an answer."""
    assert "telemed_rooms" in await scrape(with_token, Authorization=f"Bearer {TOKEN}")
    wrong = await with_token.get("/metrics", headers={"Authorization": f"Bearer {'x' * 40}"})
    assert wrong.status == 401 and (await wrong.json())["error"]["message"] == "Wrong metrics token."
    missing = await with_token.get("/metrics")
    assert missing.status == 401 and "Authorization: Bearer" in (await missing.json())["error"]["message"]
    for answer in (wrong, missing):
        assert TOKEN not in await answer.text()


async def test_a_wrong_token_is_refused_even_from_the_network(settings: Settings) -> None:
    """Guards against a misconfigured scraper passing unnoticed: a token sent is always checked."""
    client = await _start(dataclasses.replace(settings, metrics_token=Secret(TOKEN)))
    try:
        assert (await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})).status == 401
        assert "telemed_rooms" in await scrape(client)  # loopback without a token: the network decides
    finally:
        await client.close()


async def test_login_failures_and_throttles_are_counted(client: TestClient) -> None:
    """Guards the login counters: each wrong password counts once, and a login the throttle holds back
    counts as throttled (not as another failure)."""
    before = await scrape(client)
    for _ in range(5):
        answer = await client.post("/api/auth/login", json={"username": "dr.wang", "password": "guess-guess"})
        assert answer.status == 401
    held = await client.post("/api/auth/login", json={"username": "dr.wang", "password": "guess-guess"})
    assert held.status == 429
    after = await scrape(client)
    assert total(after, "telemed_login_failures_total") - total(before, "telemed_login_failures_total") == 5
    assert total(after, "telemed_login_throttled_total") - total(before, "telemed_login_throttled_total") == 1


async def test_audit_appends_are_counted(client: TestClient) -> None:
    """Guards the audit counter: a login appends one entry to the chain, and the count follows it."""
    before = total(await scrape(client), "telemed_audit_appends_total")
    await login(client, "dr.li")
    assert total(await scrape(client), "telemed_audit_appends_total") == before + 1


async def test_requests_are_counted_by_route_template_never_by_path(client: TestClient) -> None:
    """Guards the labels: an API request shows under its route's template, with its method and status class;
    the id in its path and a guest link's token appear nowhere in the exposition, and unknown paths share one
    label."""
    headers = await login(client, "dr.li")
    assert (await client.get("/api/consultations/1", headers=headers)).status == 200
    secret_link = "visit-token-that-must-not-leak"
    await client.get(f"/visit/{secret_link}")
    unknown_path = "/no/such/page/unheard-of-segment"  # letters: a number could turn up in a timestamp
    await client.get(unknown_path)
    answer = await client.get("/metrics")
    text = await answer.text()
    samples = await scrape(client)
    assert total(samples, "telemed_http_requests_total", route="/api/consultations/{consultation_id}",
                 method="GET", status="2xx") == 1
    assert total(samples, "telemed_http_request_duration_seconds_count",
                 route="/api/consultations/{consultation_id}") == 1
    assert total(samples, "telemed_http_requests_total", route="unmatched", status="4xx") >= 1
    assert secret_link not in text and "unheard-of-segment" not in text and "/api/consultations/1" not in text


async def test_rooms_participants_sockets_and_message_latency(client: TestClient) -> None:
    """Guards the hub's census and the signaling histogram: a clinician seated and a guest in the lobby show as
    one room, two sockets and a participant of each status; each message is timed under its type; and a socket
    is counted no more once closed."""
    li = await connect(client, await room_token(client, "dr.li"))
    await expect(li, "joined")
    guest = await connect(client, await guest_token(client))
    await expect(guest, "lobby")
    await expect(li, "lobby-update")
    await li.send_json({"type": "ping", "id": 1})
    await expect(li, "pong")
    samples = await scrape(client)
    assert total(samples, "telemed_rooms") == 1 and total(samples, "telemed_signaling_connections") == 2
    assert total(samples, "telemed_room_participants", status="present") == 1
    assert total(samples, "telemed_room_participants", status="waiting") == 1
    assert total(samples, "telemed_signaling_message_duration_seconds_count", type="join") == 2
    assert total(samples, "telemed_signaling_message_duration_seconds_count", type="ping") == 1
    await guest.close()
    await li.close()
    for _ in range(100):  # the server's side finishes a moment after the client's close
        if client.app[HUB].census().connections == 0:
            break
        await asyncio.sleep(0.02)
    assert total(await scrape(client), "telemed_signaling_connections") == 0


async def test_recordings_in_progress_and_bytes_kept(client: TestClient) -> None:
    """Guards the recording gauges, read from the store the relays record through: a segment begun is in
    progress until it finishes, and then its file's bytes are counted as kept."""
    store = DatabaseRecordingStore(client.app[DATABASE], client.app[SETTINGS].recordings_dir,
                                   client.app[RECORDING_KEY])
    metrics = Metrics()
    watch_recordings(metrics, store)
    segment = await store.begin(Room(room_id_for(1), max_participants=8))
    assert metrics.registry.get_sample_value("telemed_recordings_in_progress") == 1
    assert metrics.registry.get_sample_value("telemed_recording_bytes_total") == 0
    result = SegmentResult(path=segment.live_path, started_at=time.time(), tracks=[TrackInfo("p1", "video", "VP8")])
    await store.finish(segment, result, Finished(duration=2.0, sha256="0" * 64, size=4321, complete=True, streams=[]))
    assert metrics.registry.get_sample_value("telemed_recordings_in_progress") == 0
    assert metrics.registry.get_sample_value("telemed_recording_bytes_total") == 4321


async def test_each_app_has_a_registry_of_its_own(client: TestClient, fenced: TestClient) -> None:
    """Guards against the global registry: two apps in one process count their own requests, and a
    collector added to one is not in the other."""
    for _ in range(3):
        await client.get("/healthz")
    one, other = client.app[METRICS], fenced.app[METRICS]
    healthz = {"route": "/healthz", "method": "GET", "status": "2xx"}
    assert one.registry.get_sample_value("telemed_http_requests_total", healthz) == 3
    assert other.registry.get_sample_value("telemed_http_requests_total", healthz) is None
    one.on_scrape("telemed_test_only", "A reading of the first app's.", lambda: 1.0)
    assert one.registry.get_sample_value("telemed_test_only") == 1.0
    assert other.registry.get_sample_value("telemed_test_only") is None


def test_a_reading_that_fails_loses_only_its_own_sample() -> None:
    """Guards a scrape against one broken reading (a relay's collector that raises): it yields nothing."""
    def broken() -> float:
        raise RuntimeError("no state")
    assert list(ScrapeCollector("telemed_broken", "Broken.", broken).collect()) == []
    assert list(ScrapeCollector("telemed_none", "Nothing now.", lambda: None).collect()) == []


class CountedRelay:
    """A relay's census as a node's relay gives it (media/workers.py), counting how often it is taken (in a
    worker, a copy of the worker's last report; on the node's loop, a walk over every viewer's slots)."""

    def __init__(self, streams: dict[str, int], viewers: dict[str, int]) -> None:
        self.streams, self.viewers, self.taken = streams, viewers, 0

    def census(self) -> tuple[dict[str, int], dict[str, int]]:
        self.taken += 1
        return self.streams, self.viewers


async def test_each_relay_is_counted_once_a_scrape() -> None:
    """Guards the relay gauges' cost: a scrape takes each relay's census once (it walks every viewer's
    slots) for both the streams and the viewers, and sums the rooms."""
    relays = {"room-1": CountedRelay({"audio": 2, "video": 2}, {"high": 1, "low": 1, "paused": 0}),
              "room-2": CountedRelay({"audio": 6, "video": 3}, {"high": 1, "low": 0, "paused": 2})}
    metrics = Metrics()
    watch_relays(metrics, relays)  # type: ignore[arg-type]
    for scrapes in (1, 2):
        text, _ = await metrics.exposition()
        assert [relay.taken for relay in relays.values()] == [scrapes, scrapes]
    samples = {(s.name, tuple(s.labels.values())): s.value
               for family in text_string_to_metric_families(text.decode()) for s in family.samples}
    assert samples[("telemed_relays", ())] == 2
    assert samples[("telemed_relay_streams", ("audio",))] == 8
    assert samples[("telemed_relay_streams", ("video",))] == 5
    assert samples[("telemed_relay_viewers", ("high",))] == 2
    assert samples[("telemed_relay_viewers", ("low",))] == 1
    assert samples[("telemed_relay_viewers", ("paused",))] == 2


def metric_names_in(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: ``telemed_`` identifiers (functions and labels are not)."""
    return set(re.findall(r"\b(telemed_[a-z_]+)\b", expression))


async def test_the_dashboard_reads_only_metrics_the_app_exposes(settings: Settings, redis_server: RedisServer) -> None:
    """Guards deploy/grafana-dashboard.json against drift: every metric its panels query is one a real app
    (with Redis, so that its round trip has a sample) exposes, histograms by their _bucket series and counters
    by _total; and it has the panels the deploy README promises."""
    client = await _start(dataclasses.replace(settings, redis_url=redis_server.url))
    try:
        text = await exposition(client)
    finally:
        await client.close()
    exposed = series_names(text)
    assert "telemed_redis_round_trip_seconds 0." in text, "Redis answered within the probe's time"
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    assert any(v["type"] == "datasource" and v["query"] == "prometheus"
               for v in dashboard["templating"]["list"])
    queried = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
               for name in metric_names_in(target["expr"])}
    assert queried - exposed == set(), "queried but not exposed"
    for wanted in ("telemed_http_requests_total", "telemed_http_request_duration_seconds_bucket",
                   "telemed_signaling_connections", "telemed_rooms", "telemed_room_participants",
                   "telemed_login_failures_total", "telemed_login_throttled_total", "telemed_audit_appends_total",
                   "telemed_db_pool_connections_in_use", "telemed_redis_round_trip_seconds"):
        assert wanted in queried, wanted
