"""The one settings object: typed, frozen, read from ``TELEMED_*`` variables and command-line flags."""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.logcontext import FORMATS as LOG_FORMATS

from .errors import SettingsError
from .i18n import SUPPORTED_LOCALES

ENV_PREFIX = "TELEMED_"
MIN_SECRET_BYTES = 32
DEFAULT_TIMEZONE = "Asia/Shanghai"


class Secret:
    """A value that never shows itself in a repr, a log line, an f-string or a traceback.

    Not a ``str``: joining or encoding it fails loudly instead of quietly copying it into a message.
    The few places that need the value (signing, HMAC, the recordings' key) ask for it with ``reveal()``.
    """

    __slots__ = ("_value",)
    MASK = "**********"

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a string")
        self._value = value

    def reveal(self) -> str:
        """The value itself: for signing and key derivation only, never for a message."""
        return self._value

    def __str__(self) -> str:
        return self.MASK

    def __repr__(self) -> str:
        return f"Secret('{self.MASK}')"

    def __format__(self, spec: str) -> str:
        return format(self.MASK, spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_time_zone(raw: str) -> str:
    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as Asia/Shanghai") from None
    return raw.strip()


def _parse_port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError("expected a port number from 0 to 65535")
    return port


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive whole number")
    return value


def _parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a positive number of seconds")
    return value


def _parse_video_codec(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"vp8", "h264"}:
        raise ValueError("expected vp8 or h264")
    return value


def _parse_node_id(raw: str) -> str:
    if not raw.replace("-", "").replace("_", "").isalnum() or len(raw) > 64:
        raise ValueError("expected letters, digits, - or _ (at most 64)")
    return raw


def _parse_database_url(raw: str) -> str:
    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError("expected a URL starting with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return raw


def _parse_redis_url(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a URL starting with redis://, rediss:// or unix://")
    return raw


def _parse_public_url(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")) or "?" in raw or "#" in raw:
        raise ValueError("expected an http:// or https:// URL without a query or fragment")
    return raw.rstrip("/")


def _parse_secret(raw: str) -> Secret | None:
    if not raw:
        return None
    if len(raw.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
    return Secret(raw)


def _parse_secret_list(raw: str) -> tuple[Secret, ...]:
    secrets = [part.strip() for part in raw.split(",") if part.strip()]
    return tuple(_parse_secret(secret) for secret in secrets)  # type: ignore[misc]


def _parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or networks (10.0.0.7, 10.0.0.0/8, ::1); nothing at all trusts none."""
    return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())


def _parse_ice_servers(raw: str) -> tuple[dict[str, Any], ...]:
    """Either a JSON list of RTCIceServer objects or a comma-separated list of stun:/turn: URLs."""
    raw = raw.strip()
    if not raw:
        return ()
    if raw.startswith("["):
        servers = json.loads(raw)
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ValueError("expected a JSON list of objects with a 'urls' field")
        return tuple(servers)
    urls = [url.strip() for url in raw.split(",") if url.strip()]
    for url in urls:
        if not url.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
    return tuple({"urls": url} for url in urls)


def _parse_locale(raw: str) -> str:
    if raw not in SUPPORTED_LOCALES:
        raise ValueError(f"expected one of {', '.join(SUPPORTED_LOCALES)}")
    return raw


def _parse_log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser of a word among ``choices``, in any case."""
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected {' or '.join(choices)}")
        return value
    return parse


def _parse_recording_key(raw: str) -> Secret:
    value = raw.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("expected 64 hex digits (a 256-bit key)")
    return Secret(value)


def _parse_url_list(raw: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    for url in urls:
        if not url.startswith(("turn:", "turns:", "stun:")):
            raise ValueError(f"{url!r} is not a turn:, turns: or stun: URL")
    return urls


ICE_TRANSPORT_POLICIES = ("all", "relay")
NODE_ROLES = ("all", "media")


def _setting(default: Any, parse: Callable[[str], Any], doc: str) -> Any:
    return field(default=default, metadata={"parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Everything the server can be told. Each field is read from ``TELEMED_<FIELD NAME IN CAPITALS>``."""

    host: str = _setting("127.0.0.1", str, "Address to listen on.")
    port: int = _setting(8080, _parse_port, "Port to listen on; 0 picks a free one.")
    data_dir: Path = _setting(
        Path("var"), Path, "Where the embedded database, the signing key and recordings are kept."
    )
    database_url: str = _setting(
        "",
        _parse_database_url,
        "SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db. "
        "Default: an SQLite file in the data directory.",
    )
    redis_url: str | None = _setting(
        None,
        _parse_redis_url,
        "Redis URL: the bus that lets several nodes serve the same rooms. Unset: in-process bus, one node.",
    )
    redis_prefix: str = _setting(
        "telemed", _parse_node_id, "Prefix of every Redis key, so deployments can share one Redis."
    )
    jwt_secret: Secret | None = _setting(
        None,
        _parse_secret,
        "Key that signs access tokens (32 bytes or more). Unset: generated once and kept in the data directory.",
    )
    jwt_previous_secrets: tuple[Secret, ...] = _setting(
        (), _parse_secret_list, "Comma-separated keys still accepted for verification while keys rotate."
    )
    jwt_issuer: str = _setting("telemed", str, "The iss claim of tokens this server issues and accepts.")
    access_token_ttl: int = _setting(
        8 * 3600, _parse_positive_int, "Lifetime of an access token in seconds (a clinic shift by default)."
    )
    public_url: str | None = _setting(
        None,
        _parse_public_url,
        "This installation's own address as others reach it (https://telemed.example.org): the base of the FHIR "
        "API's identifier systems and extension URLs, so two installations never collide. Unset: the address "
        "each request came to.",
    )
    cookie_secure: bool = _setting(
        False, _parse_bool,
        "Mark the session cookie and patients' identity cookies Secure. Set to true whenever the server is behind "
        "HTTPS.",
    )
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = _setting(
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")),
        _parse_networks,
        "Comma-separated addresses or networks of the reverse proxies in front of this node (the shipped "
        "nginx runs on the same host). Only a request from one of these has its client's address read from "
        "X-Forwarded-For, from the right up to the first address not listed. Empty: trust no proxy.",
    )
    metrics_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = _setting(
        (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")),
        _parse_networks,
        "Comma-separated addresses or networks that may read GET /metrics without a token (a Prometheus on "
        "this host by default). Matched against the connection's own peer address, never X-Forwarded-For: a "
        "scraper comes to the node directly, not through the public proxy, so a request a proxy forwarded (it "
        "carries X-Forwarded-For) needs the token wherever it came from. Empty: only TELEMED_METRICS_TOKEN "
        "opens it.",
    )
    metrics_token: Secret | None = _setting(
        None, _parse_secret,
        "Bearer token (32 bytes or more) that opens GET /metrics from any address, for a scraper outside "
        "TELEMED_METRICS_NETWORKS. Compared in constant time and never logged. Unset: the networks alone decide.",
    )
    ice_servers: tuple[dict[str, Any], ...] = _setting(
        (),
        _parse_ice_servers,
        "STUN/TURN servers handed to browsers: a JSON list of RTCIceServer objects or comma-separated URLs.",
    )
    turn_urls: tuple[str, ...] = _setting(
        (), _parse_url_list,
        "Comma-separated TURN URLs (turn:host:3478?transport=udp,...) given time-limited credentials.",
    )
    turn_secret: Secret | None = _setting(
        None, _parse_secret, "Shared secret with coturn (static-auth-secret) that signs TURN credentials.",
    )
    ice_transport_policy: str = _setting(
        "all", _one_of(ICE_TRANSPORT_POLICIES),
        "Browsers' iceTransportPolicy: all (direct, STUN and TURN paths) or relay (media only through TURN, "
        "for networks that allow nothing else, and to test TURN).",
    )
    turn_credential_ttl: int = _setting(
        6 * 3600, _parse_positive_int, "Seconds a TURN credential stays valid (a long consultation and more).",
    )
    recording_key: Secret | None = _setting(
        None, _parse_recording_key,
        "AES-256 key that seals recordings at rest, as 64 hex digits. Unset: generated once into keys/ in the "
        "data directory (development only; in production give it from a secrets store, apart from recordings).",
    )
    report_signing_cert: Path | None = _setting(
        None, Path,
        "PEM file of the certificate consultation reports are signed with (PAdES): the consulting hospital's, "
        "optionally followed by its issuers. Unset: a self-signed one is generated once into keys/ in the data "
        "directory (demo and development only).",
    )
    report_signing_key: Path | None = _setting(
        None, Path, "PEM file of the private key of TELEMED_REPORT_SIGNING_CERT (unencrypted PKCS#8 or PKCS#1).",
    )
    report_signing_dir: Path | None = _setting(
        None, Path,
        "Directory of hospitals' own report signing pairs, <hospital id>.crt.pem and <hospital id>.key.pem: a "
        "specialist's report is signed with their hospital's pair, else with TELEMED_REPORT_SIGNING_CERT.",
    )
    relay_video_codec: str = _setting(
        "vp8", _parse_video_codec,
        "The one video codec of relayed rooms, vp8 or h264: the relay forwards packets untouched, so every "
        "browser in a room sends and receives it. Recordings of h264 rooms are Matroska, not WebM.",
    )
    relay_workers: int | None = _setting(
        None, _parse_non_negative_int,
        "Worker processes that run this node's media relays, so that media work never delays signaling and "
        "HTTP (started as relayed rooms need them; one that dies is replaced and its rooms' relays move). "
        "0: relays run in the node's own process. Unset: one per core.",
    )
    relay_limit: int | None = _setting(
        None, _parse_non_negative_int,
        "The most media relays this node should run. New relayed rooms go to a media node, else to a node with "
        "room (this one first if it has); when none has, the relay runs here anyway and /readyz says "
        "over-capacity. Unset: no limit.",
    )
    node_role: str = _setting(
        "all", _one_of(NODE_ROLES),
        "What this node does: all (pages, API, signaling and relays) or media (only the relays other nodes "
        "hand it, and /healthz, /readyz and /metrics; needs TELEMED_REDIS_URL). Also `telemed serve --role`.",
    )
    recording_segment_seconds: float = _setting(
        900.0, _parse_positive_float,
        "A recording is split into files of at most this many seconds (each is held in memory while it is "
        "made seekable at its end).",
    )
    room_opens_minutes_before: int = _setting(
        15, _parse_positive_int, "Minutes before a consultation's planned start that its room lets people in."
    )
    room_closes_minutes_after: int = _setting(
        60, _parse_positive_int,
        "Minutes after a consultation's planned end (its slot's end; an hour after the start if unbooked) "
        "that its room stops letting people in. Those already in stay.",
    )
    invitation_hours: int = _setting(
        24, _parse_positive_int,
        "Hours a patient's invitation link lasts when the consultation has no planned end to expire with.",
    )
    identity_attempts: int = _setting(
        5, _parse_positive_int,
        "Wrong answers to a patient's identity check (name and last four of the national ID) before their "
        "invitation link locks; the clinician then sends a new link.",
    )
    reminder_minutes_before: int = _setting(
        30, _parse_positive_int, "Minutes before an appointment that its participants get a reminder."
    )
    attachment_max_bytes: int = _setting(
        20 * 1024 * 1024, _parse_positive_int, "Largest referral attachment (a test result or an image) accepted."
    )
    retention_recordings_days: int = _setting(
        3 * 365, _parse_positive_int,
        "Days audio and video recordings are kept after they end; then the purge deletes each file and its key.",
    )
    retention_records_days: int = _setting(
        15 * 365, _parse_positive_int,
        "Days a consultation's records are kept: a referral's attachments and signed reports' PDFs are purged "
        "this long after the referral last changed. The audit trail is never deleted.",
    )
    retention_interval: int = _setting(
        24 * 3600, _parse_non_negative_int,
        "Seconds between scheduled purges, run by one node at a time (a lease in the database); 0: only "
        "`telemed retention run` purges.",
    )
    default_locale: str = _setting(
        "zh-CN", _parse_locale, "Language of pages when neither the user nor the browser asks for one."
    )
    default_timezone: str = _setting(
        DEFAULT_TIMEZONE, _parse_time_zone,
        "Time zone of the times shown to an account without a hospital (the shell's administrator), an IANA name.",
    )
    log_level: str = _setting("INFO", _parse_log_level, "DEBUG, INFO, WARNING or ERROR.")
    log_format: str = _setting(
        "text", _one_of(LOG_FORMATS),
        "How log lines are written: text (readable lines) or json (one JSON object per line with time, level, "
        "logger, message and, when known, request_id, room and participant).",
    )
    signaling_max_message_bytes: int = _setting(
        192 * 1024, _parse_positive_int, "Largest signaling message accepted; larger ones get an error."
    )
    room_max_participants: int = _setting(
        8, _parse_positive_int, "Most participants a consultation room admits at once (and most waiting)."
    )
    heartbeat_interval: float = _setting(
        20.0, _parse_positive_float, "Seconds of silence on a signaling socket before the server pings it."
    )
    heartbeat_timeout: float = _setting(
        45.0, _parse_positive_float, "Seconds of silence after which the socket is closed and its seat held."
    )
    join_timeout: float = _setting(
        10.0, _parse_positive_float, "Seconds a new signaling socket has to send a valid join before it is closed."
    )
    reconnect_grace: float = _setting(
        30.0, _parse_positive_float, "Seconds a participant whose connection dropped keeps their seat."
    )
    presence_ttl: float = _setting(
        10.0, _parse_positive_float,
        "Seconds within which the other nodes declare a crashed node lost (its participants then reconnect "
        "elsewhere, or leave one TTL later; a relay it ran moves).",
    )
    account_sweep_seconds: float = _setting(
        15.0, _parse_positive_float,
        "Seconds between a node's looks for clinicians in its calls whose account was changed where no room "
        "could be told (the console without a Redis, or one the bus did not answer for): disabled or reset, they "
        "are sent out of the call; a licence changed or verified changes what they may do there.",
    )
    node_id: str = _setting(
        "", _parse_node_id, "This node's name among several (each start is a new run of it, and the run before "
        "is declared lost at once). Default: a random name at each start."
    )
    drain_seconds: float = _setting(
        10.0, _parse_positive_float, "Seconds a stopping node (SIGTERM) waits for its sockets to move to other "
        "nodes before it exits; its relays move at once."
    )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from the environment, then apply already-typed overrides (from flags).

        Raises SettingsError naming the variable when a value cannot be used.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = env_name(f.name)
            if name in environ:
                try:
                    values[f.name] = f.metadata["parse"](environ[name])
                except (ValueError, json.JSONDecodeError) as exc:
                    raise SettingsError(f"{name}: {exc} (got {_shown(f.name, environ[name])})") from None
        values.update({key: value for key, value in overrides.items() if value is not None})
        settings = cls(**values)
        if not settings.database_url:
            db_path = (settings.data_dir / "telemed.db").resolve()
            settings = dataclasses.replace(settings, database_url=f"sqlite+aiosqlite:///{db_path}")
        return settings

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _shown(field_name: str, raw: str) -> str:
    secret = "secret" in field_name or "key" in field_name or field_name.endswith("_token")
    return "a secret value" if secret else repr(raw)


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for --help and the README table."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default if f.default is not None else ""
        if isinstance(default, tuple):  # shown the way the variable is written: comma-separated
            default = ",".join(str(item) for item in default)
        rows.append((env_name(f.name), str(default), f.metadata["doc"]))
    return rows
