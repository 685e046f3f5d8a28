"""The topology of deploy/ started from its own files by deploy/pilot/pilot.py, on free ports: nginx with a
self-signed certificate, coturn, redis-server with persistence, two ``telemed serve`` nodes on a fresh
PostgreSQL database, seeded with the demo partnership. Only what a test needs (TURN peers on loopback, short
timers, media through TURN alone) is set here; the shipped templates are used as they are."""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from aioice.ice import get_host_addresses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.devprocs import ROOT, free_port

SERVER_NAME = "telemed.test"
TURN_SERVER_NAME = "turn.telemed.test"
PILOT_PATH = ROOT / "deploy" / "pilot" / "pilot.py"


def load_pilot() -> ModuleType:
    """deploy/pilot/pilot.py, the operator's script, imported as it is (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("telemed_pilot", PILOT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for the site's and TURN's names (and 127.0.0.1), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(SERVER_NAME), x509.DNSName(TURN_SERVER_NAME),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _free_udp_range(size: int = 40) -> tuple[int, int]:
    """A run of ports for coturn's relayed addresses, starting at a free one (coturn skips any taken)."""
    start = secrets.choice(range(20000, 30000, size))
    return start, start + size - 1


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str) -> Iterator[object]:
    """The pilot deployment, started; stopped (everything) at the end of the test. Its logs stay in
    ``tmp_path/state/logs``."""
    missing = [binary for binary in ("nginx", "turnserver", "redis-server")
               if shutil.which(binary, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: `make install-test` installs Debian's nginx, "
                    "libnginx-mod-stream, coturn and redis-server (deploy/dev/system-packages.sh)")
    pilot_module = load_pilot()
    cert, key = self_signed(tmp_path)
    turn_min, turn_max = _free_udp_range()
    settings = {
        "SERVER_NAME": SERVER_NAME, "TURN_SERVER_NAME": TURN_SERVER_NAME, "TLS_CERT": str(cert), "TLS_KEY": str(key),
        "TURN_SECRET": secrets.token_urlsafe(32), "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "STATE_DIR": str(tmp_path / "state"),
        "HTTPS_PORT": str(free_port()), "HTTP_PORT": str(free_port()),
        "NODE_PORTS": f"{free_port()},{free_port()}",
        "NGINX_INTERNAL_HTTPS_PORT": str(free_port()), "NGINX_INTERNAL_TURNS_PORT": str(free_port()),
        "TURN_LISTEN_IP": "127.0.0.1", "TURN_RELAY_IP": "127.0.0.1",
        "TURN_PORT": str(free_port()), "TURN_TLS_PORT": str(free_port()),
        "TURN_MIN_PORT": str(turn_min), "TURN_MAX_PORT": str(turn_max),
        "REDIS_PORT": str(free_port()),
        "TELEMED_COMMAND": shlex.join([sys.executable, "-m", "server.cli"]),
        "TELEMED_DATABASE_URL": postgres_url,
        "TELEMED_JWT_SECRET": secrets.token_urlsafe(48),
        "TELEMED_RECORDING_KEY": secrets.token_hex(32),
        "TELEMED_DEFAULT_LOCALE": "en",
        # Media through TURN over TLS alone: browsers are handed nothing else, and told to use relay candidates.
        "TELEMED_ICE_TRANSPORT_POLICY": "relay",
        # Short timers, so a killed node is noticed within seconds.
        "TELEMED_PRESENCE_TTL": "3", "TELEMED_RECONNECT_GRACE": "15", "TELEMED_DRAIN_SECONDS": "5",
    }
    settings["TELEMED_TURN_URLS"] = f"turns:{TURN_SERVER_NAME}:{settings['HTTPS_PORT']}?transport=tcp"
    # Test-only: everything here is on one host, so TURN's peers (the browsers' relayed addresses on 127.0.0.1
    # and the nodes' media relays on this host's addresses) are what the shipped configuration denies.
    peers = ["127.0.0.1", *get_host_addresses(use_ipv4=True, use_ipv6=False)]
    turn_overrides = ["--allow-loopback-peers", *(f"--allowed-peer-ip={address}" for address in peers)]
    pilot = pilot_module.Pilot(settings, extra_args={"turnserver": turn_overrides})
    print(f"deployment state and logs: {pilot.state}")
    try:
        pilot.start()
        subprocess.run(pilot.telemed("demo"), env={**os.environ, **pilot.node_environment()}, check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT)
        yield pilot
    finally:
        pilot.stop()

