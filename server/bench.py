"""``telemed bench signaling``: connections held, memory per connection, throughput and relay latency.

Measures real ``telemed serve`` processes from a load generator in this process: first one node on the
in-process bus (the baseline), then two nodes over a real redis-server with every room split across
both nodes, so every message takes the Redis path. Ratios are against the baseline of the same run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from signaling.grants import HOST, RoomClaims
from signaling.messages import PROTOCOL_VERSION

from .cli import tune_collector
from .consultations.room_tokens import room_token
from .devprocs import RedisServer, TelemedNode, raise_open_file_limit
from .identity.signing_keys import load_keyring
from .settings import Settings

ROOM_SIZES = (2, 3, 4)


@dataclass
class Phase:
    """What one rate of messages did."""

    offered_per_second: int
    sent: int = 0
    delivered: int = 0
    seconds: float = 0.0
    closed_by_server: int = 0  # connections the server cut (slow consumers) by the end of the phase
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def delivered_per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "offered_per_second": self.offered_per_second,
            "sent": self.sent,
            "delivered": self.delivered,
            "delivered_per_second": round(self.delivered_per_second, 1),
            "latency_ms_p50": round(_percentile(lat, 50), 3),
            "latency_ms_p99": round(_percentile(lat, 99), 3),
            "latency_ms_max": round(lat[-1], 3) if lat else None,
            "closed_by_server": self.closed_by_server,
        }


@dataclass
class Setup:
    name: str
    nodes: int
    clients: int
    rooms: int
    held: int = 0
    connect_seconds: float = 0.0
    memory_per_connection_kib: float = 0.0
    phases: list[Phase] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "phases"}
        data["phases"] = [p.summary() for p in self.phases]
        return data


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


class Client:
    """One simulated participant: a socket, its room, and the latencies of what reached it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, room: int) -> None:
        self.ws, self.room = ws, room
        self.id = ""
        self.peers: list[str] = []
        self.sink: list[float] | None = None
        self.received = 0

    async def pump(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                return
            message = json.loads(frame.data)
            kind = message["type"]
            if kind == "candidate" and self.sink is not None:
                sent_at = float(message["candidate"]["candidate"].split(" ", 2)[1])
                self.sink.append((time.perf_counter() - sent_at) * 1000)
                self.received += 1
            elif kind == "ping":
                await self.ws.send_json({"type": "pong", "id": message.get("id")})
            elif kind == "participant-joined":
                self.peers.append(message["participant"]["id"])
            elif kind == "participant-left":
                if message["participant_id"] in self.peers:
                    self.peers.remove(message["participant_id"])


async def _connect_all(http: aiohttp.ClientSession, urls: list[str], tokens: list[tuple[int, str]],
                       node_of: list[int]) -> list[Client]:
    clients: list[Client] = []
    gate = asyncio.Semaphore(100)  # connect a hundred at a time, as a crowd arriving would

    async def one(index: int) -> None:
        room, token = tokens[index]
        async with gate:
            ws = await http.ws_connect(f"{urls[node_of[index]]}/api/consultations/{room}/signaling",
                                       heartbeat=None, max_msg_size=0)
            await ws.send_json({"type": "join", "protocol": PROTOCOL_VERSION, "token": token})
            first = json.loads((await ws.receive(timeout=30)).data)
            if first["type"] != "joined":
                raise RuntimeError(f"join refused: {first}")
            client = Client(ws, room)
            client.id = first["self"]["id"]
            client.peers = [p["id"] for p in first["participants"]]
            clients.append(client)

    await asyncio.gather(*(one(i) for i in range(len(tokens))))
    return clients


async def _send_at_rate(clients: list[Client], rate: int, seconds: float) -> Phase:
    phase = Phase(offered_per_second=rate)
    latencies: list[float] = []
    for client in clients:
        client.sink, client.received = latencies, 0
    senders = [c for c in clients if c.peers and not c.ws.closed]
    interval = 1.0 / rate
    start = time.perf_counter()
    next_at = start
    n = 0
    while time.perf_counter() - start < seconds:
        sender = senders[n % len(senders)]
        n += 1
        if sender.ws.closed or not sender.peers:
            continue  # the server closed it (a slow consumer under overload): counted below
        to = sender.peers[n % len(sender.peers)]
        # The candidate string carries the send time; sender and receiver share this process's clock.
        candidate = {"candidate": f"bench {time.perf_counter():.9f} {n}"}
        try:
            await sender.ws.send_json({"type": "candidate", "to": to, "candidate": candidate})
        except aiohttp.ClientError:
            continue
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif n % 200 == 0:
            await asyncio.sleep(0)  # behind schedule: still let the receivers run
    phase.sent = n
    await asyncio.sleep(1.0)  # let the last messages land
    phase.seconds = time.perf_counter() - start - 1.0
    phase.delivered = len(latencies)
    phase.latencies_ms = latencies
    phase.closed_by_server = sum(1 for c in clients if c.ws.closed)
    for client in clients:
        client.sink = None
    return phase


async def _run_setup(setup: Setup, urls: list[str], node_pids: list[TelemedNode], keys_dir: Path,
                     rates: list[int], seconds: float, split_rooms: bool) -> None:
    keyring = load_keyring(Settings.load(environ={}, data_dir=keys_dir))
    tokens: list[tuple[int, str]] = []
    node_of: list[int] = []
    room = 1000
    while len(tokens) < setup.clients:
        size = min(ROOM_SIZES[room % len(ROOM_SIZES)], setup.clients - len(tokens))
        for seat in range(size):
            claims = RoomClaims(identity=f"user:bench-{room}-{seat}", room=f"consultation:{room}",
                                name=f"bench {seat}", role="specialist", user_id=None, grants=HOST)
            tokens.append((room, room_token(keyring, "telemed", claims, ttl=3600)))
            # Split rooms put neighbouring seats on different nodes: every message crosses Redis.
            node_of.append(seat % len(urls) if split_rooms else 0)
        room += 1
    setup.rooms = room - 1000
    before = sum(node.rss_bytes() for node in node_pids)
    # limit=0: every open WebSocket holds a connection, and the default pool stops at 100.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as http:
        started = time.perf_counter()
        clients = await _connect_all(http, urls, tokens, node_of)
        setup.connect_seconds = round(time.perf_counter() - started, 2)
        setup.held = len(clients)
        pumps = [asyncio.create_task(c.pump()) for c in clients]
        await asyncio.sleep(2.0)  # participant-joined messages settle
        tune_collector()  # its own collector pauses must not count as relay latency: tuned as the server is
        after = sum(node.rss_bytes() for node in node_pids)
        setup.memory_per_connection_kib = round((after - before) / max(1, setup.held) / 1024, 1)
        for rate in rates:
            setup.phases.append(await _send_at_rate(clients, rate, seconds))
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
        for pump in pumps:
            pump.cancel()


async def run(clients: int, rates: list[int], seconds: float) -> dict[str, Any]:
    raise_open_file_limit()
    results: list[Setup] = []
    with tempfile.TemporaryDirectory(prefix="telemed-bench-") as tmp:
        base_env = {"TELEMED_LOG_LEVEL": "WARNING", "TELEMED_ROOM_MAX_PARTICIPANTS": "8"}
        one = Setup("one node, in-process bus", nodes=1, clients=clients, rooms=0)
        with TelemedNode(Path(tmp) / "one", base_env) as node:
            await _run_setup(one, [node.url], [node], Path(tmp) / "one", rates, seconds, split_rooms=False)
        results.append(one)

        redis = RedisServer(Path(tmp)).start()
        try:
            env = {**base_env, "TELEMED_REDIS_URL": redis.url}
            two = Setup("two nodes, Redis bus, every room split across nodes", nodes=2, clients=clients, rooms=0)
            data = Path(tmp) / "two"
            with TelemedNode(data, {**env, "TELEMED_NODE_ID": "a"}) as a, \
                    TelemedNode(data, {**env, "TELEMED_NODE_ID": "b"}) as b:
                await _run_setup(two, [a.url, b.url], [a, b], data, rates, seconds, split_rooms=True)
            results.append(two)
        finally:
            redis.stop()
    base, cross = results[0].phases[0], results[1].phases[0]
    base_p50 = base.summary()["latency_ms_p50"]
    return {
        "benchmark": "signaling",
        "clients": clients,
        "rates": rates,
        "seconds_per_rate": seconds,
        "setups": [r.summary() for r in results],
        "redis_added_latency_ms_p50": round(cross.summary()["latency_ms_p50"] - base_p50, 3),
        "redis_latency_ratio_p50": round(cross.summary()["latency_ms_p50"] / base_p50, 2) if base_p50 else None,
    }


def as_text(report: dict[str, Any]) -> str:
    lines = [f"signaling benchmark: {report['clients']} clients in rooms of 2 to 4, "
             f"{report['seconds_per_rate']:.0f} s at each rate"]
    for setup in report["setups"]:
        lines.append(f"\n{setup['name']}")
        lines.append(f"  connections held: {setup['held']} of {setup['clients']} ({setup['rooms']} rooms), "
                     f"connected in {setup['connect_seconds']} s")
        lines.append(f"  memory per connection: {setup['memory_per_connection_kib']} KiB (server RSS growth)")
        for p in setup["phases"]:
            lines.append(f"  {p['offered_per_second']:>6} msg/s offered: {p['delivered_per_second']:>8} delivered/s, "
                         f"latency p50 {p['latency_ms_p50']} ms, p99 {p['latency_ms_p99']} ms, "
                         f"max {p['latency_ms_max']} ms"
                         + (f", {p['closed_by_server']} connections cut as slow" if p["closed_by_server"] else ""))
    lines.append(f"\nRedis path adds {report['redis_added_latency_ms_p50']} ms at p50 "
                 f"({report['redis_latency_ratio_p50']}x the one-node p50) at the first rate")
    return "\n".join(lines)


# How much worse than the recorded figure a run may be before --compare calls it a regression, as a
# fraction of the recorded value. Memory repeats within a few per cent; latency on a shared machine
# does not, and the tail least of all, so the latency bounds are wide: they catch a path that became
# several times slower (as the audit-per-join regression made the Redis path), not noise.
TOLERANCES = {
    "memory_per_connection_kib": 0.15,
    "latency_ms_p50": 0.75,
    "latency_ms_p99": 2.0,
    "redis_added_latency_ms_p50": 1.5,
}


@dataclass(frozen=True)
class Check:
    """One figure of a run against the recorded one."""

    what: str
    recorded: float
    now: float
    tolerance: float

    @property
    def ratio(self) -> float:
        return self.now / self.recorded if self.recorded else float("inf") if self.now else 1.0

    @property
    def regressed(self) -> bool:
        return self.now > self.recorded * (1 + self.tolerance)

    def line(self) -> str:
        verdict = f"REGRESSED (limit {1 + self.tolerance:.2f}x)" if self.regressed else "ok"
        return f"  {self.what:<58} {self.recorded:>9g} -> {self.now:>9g}  {self.ratio:5.2f}x  {verdict}"


def compare(report: dict[str, Any], recorded: dict[str, Any],
            tolerances: dict[str, float] | None = None) -> tuple[list[Check], list[str]]:
    """Each figure of ``report`` that ``recorded`` also has, and notes on what could not be compared or
    was lost outright (connections not held, messages not delivered): those count as regressions too."""
    limits = {**TOLERANCES, **(tolerances or {})}
    checks: list[Check] = []
    problems: list[str] = []
    if (report.get("clients"), report.get("seconds_per_rate")) != (recorded.get("clients"),
                                                                   recorded.get("seconds_per_rate")):
        problems.append(f"note: recorded with {recorded.get('clients')} clients, "
                        f"{recorded.get('seconds_per_rate')} s per rate; this run "
                        f"{report.get('clients')}, {report.get('seconds_per_rate')} s: compare like with like")
    then_setups = {s["nodes"]: s for s in recorded.get("setups", [])}
    for setup in report["setups"]:
        then = then_setups.get(setup["nodes"])
        if then is None:
            continue
        name = "one node" if setup["nodes"] == 1 else f"{setup['nodes']} nodes"
        if setup["held"] < setup["clients"]:
            problems.append(f"REGRESSED: {name} held {setup['held']} of {setup['clients']} connections")
        checks.append(Check(f"{name}: memory per connection (KiB)", then["memory_per_connection_kib"],
                            setup["memory_per_connection_kib"], limits["memory_per_connection_kib"]))
        then_phases = {p["offered_per_second"]: p for p in then["phases"]}
        for phase in setup["phases"]:
            rate = phase["offered_per_second"]
            if phase["delivered"] < phase["sent"]:
                problems.append(f"REGRESSED: {name} at {rate} msg/s delivered {phase['delivered']} "
                                f"of {phase['sent']}")
            if (old := then_phases.get(rate)) is None:
                continue
            for metric in ("latency_ms_p50", "latency_ms_p99"):
                checks.append(Check(f"{name} at {rate} msg/s: {metric.removeprefix('latency_ms_')} (ms)",
                                    old[metric], phase[metric], limits[metric]))
    if "redis_added_latency_ms_p50" in recorded and report["rates"][:1] == recorded.get("rates", [])[:1]:
        checks.append(Check("Redis path added at p50 (ms)", recorded["redis_added_latency_ms_p50"],
                            report["redis_added_latency_ms_p50"], limits["redis_added_latency_ms_p50"]))
    return checks, problems


def comparison_text(checks: list[Check], problems: list[str], source: str) -> str:
    lines = [f"against {source} (recorded -> now, ratio):", *(c.line() for c in checks), *problems]
    regressed = sum(c.regressed for c in checks) + sum(p.startswith("REGRESSED") for p in problems)
    lines.append(f"{regressed} regression(s)" if regressed else "no regression beyond the tolerances")
    return "\n".join(lines)


def regressed(checks: list[Check], problems: list[str]) -> bool:
    return any(c.regressed for c in checks) or any(p.startswith("REGRESSED") for p in problems)


def main(clients: int, rates: list[int], seconds: float, as_json: bool, compare_with: Path | None = None,
         tolerances: dict[str, float] | None = None) -> int:
    """Run, print, and with ``compare_with`` (a recorded --json report) also print each figure against it:
    the exit status is 1 when any is worse than its tolerance allows."""
    recorded = json.loads(compare_with.read_text()) if compare_with else None
    report = asyncio.run(run(clients, rates, seconds))
    print(json.dumps(report, indent=2) if as_json else as_text(report))
    if recorded is None:
        return 0
    checks, problems = compare(report, recorded, tolerances)
    print(comparison_text(checks, problems, str(compare_with)), file=sys.stderr if as_json else sys.stdout)
    return 1 if regressed(checks, problems) else 0
