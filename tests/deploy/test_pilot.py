"""deploy/pilot/pilot.py's rendering: every placeholder of every template gets a value, nginx's own variables are
left alone, and a missing value stops it naming what is missing (never an empty hole in a configuration)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server.devprocs import free_port

from .conftest import PILOT_PATH, load_pilot
from .test_compose import _example_settings

pytestmark = pytest.mark.deploy


def test_the_example_settings_fill_every_template(tmp_path: Path) -> None:
    """pilot.env.example, its secrets filled, renders all three files with no placeholder left, and the values
    where they belong: both nodes upstream, TURN's name routed to coturn, nginx's variables untouched."""
    pilot_module = load_pilot()
    settings = pilot_module.read_env_file(_example_settings(tmp_path))
    pilot = pilot_module.Pilot({**settings, "STATE_DIR": str(tmp_path / "state")})
    written = pilot.write_configuration()
    for path in written.values():
        text = path.read_text()
        assert not pilot_module.PLACEHOLDER.search(text), path
        assert path.stat().st_mode & 0o077 == 0, f"{path} holds secrets: readable by its owner alone"
    nginx = written["nginx.conf"].read_text()
    assert "server 127.0.0.1:8081 max_fails=1 fail_timeout=10s; server 127.0.0.1:8082" in nginx
    assert "turn.example-hospital.cn  127.0.0.1:8444;" in nginx
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx
    turn = written["turnserver.conf"].read_text()
    assert "static-auth-secret=" + settings["TURN_SECRET"] in turn
    assert "allowed-peer-ip=203.0.113.10" in turn
    assert "appendonly yes" in written["redis.conf"].read_text()
    env = pilot.node_environment()
    assert env["TELEMED_TRUSTED_PROXIES"] == "127.0.0.1"
    assert env["TELEMED_TURN_URLS"] == ("turn:turn.example-hospital.cn:3478?transport=udp,"
                                        "turns:turn.example-hospital.cn:443?transport=tcp")
    assert env["TELEMED_PUBLIC_URL"] == "https://telemed.example-hospital.cn"


def test_nodes_on_other_hosts_are_named_upstream(tmp_path: Path) -> None:
    """For a larger deployment the same templates name nodes elsewhere (NODE_ADDRESSES), every one upstream."""
    pilot_module = load_pilot()
    settings = pilot_module.read_env_file(_example_settings(tmp_path))
    pilot = pilot_module.Pilot({**settings, "STATE_DIR": str(tmp_path / "state"),
                                "NODE_ADDRESSES": "10.0.0.11:8080, 10.0.0.12:8080,10.0.0.13:8080"})
    nginx = pilot.write_configuration()["nginx.conf"].read_text()
    assert nginx.count("max_fails=1 fail_timeout=10s;") == 3
    assert "server 10.0.0.13:8080 max_fails" in nginx and "127.0.0.1:8081" not in nginx


def test_a_missing_value_is_named() -> None:
    """A template's placeholders are filled and nginx's own $variables left alone; a placeholder with no value stops
    the rendering with an error naming it, never an empty hole."""
    render = load_pilot().render
    assert render("listen ${PORT}; proxy_set_header Host $host;", {"PORT": "443"}) == \
        "listen 443; proxy_set_header Host $host;"
    with pytest.raises(KeyError, match="TLS_CERT"):
        render("ssl_certificate ${TLS_CERT};", {})


def test_required_settings_are_named(tmp_path: Path) -> None:
    """The whole pilot requires every required name; one service (a container) only those it reads."""
    pilot_module = load_pilot()
    with pytest.raises(SystemExit, match="SERVER_NAME.*TURN_SECRET"):
        pilot_module.Pilot({"STATE_DIR": str(tmp_path)})
    turn = r"missing: TURN_SERVER_NAME, TLS_CERT, TLS_KEY, TURN_SECRET, TURN_RELAY_IP \("
    with pytest.raises(SystemExit, match=turn):
        pilot_module.Pilot({"STATE_DIR": str(tmp_path)}, service="turnserver")
    with pytest.raises(SystemExit, match=r"missing: REDIS_PASSWORD \("):
        pilot_module.Pilot({"STATE_DIR": str(tmp_path), "TURN_SECRET": "x" * 32}, service="redis-server")
    with pytest.raises(SystemExit, match="no service 'postgres'"):
        pilot_module.Pilot({"STATE_DIR": str(tmp_path)}, service="postgres")


def test_a_service_runs_from_its_own_environment(tmp_path: Path) -> None:
    """As in its container (Dockerfile's entrypoint, docker-compose.yml's environment): ``pilot.py --run
    redis-server`` with no settings file, Redis's settings alone in its environment, renders its configuration
    and becomes redis-server, which asks for the password; and the password is in its configuration file, not
    in the environment of the process it became."""
    port, password = free_port(), secrets.token_hex(16)
    env = {"PATH": os.environ["PATH"] + ":/usr/sbin:/sbin", "STATE_DIR": str(tmp_path / "state"),
           "REDIS_PASSWORD": password, "REDIS_PORT": str(port)}
    process = subprocess.Popen([sys.executable, str(PILOT_PATH), "--run", "redis-server"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        load_pilot().wait_for_port(port, process, "redis-server")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"PING\r\n")
            assert connection.recv(100).startswith(b"-NOAUTH")
            connection.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                answer += connection.recv(100)
            assert answer == b"+OK\r\n+PONG\r\n"
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert b"redis-server" in Path(f"/proc/{process.pid}/cmdline").read_bytes()  # the script became it
        assert not [entry for entry in environ if entry.startswith((b"REDIS_", b"STATE_DIR="))]
        assert f"requirepass {password}" in (tmp_path / "state" / "etc" / "redis.conf").read_text()
    finally:
        process.terminate()
        process.wait(10)
