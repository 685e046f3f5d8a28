"""deploy/pilot/pilot.py's rendering: every placeholder of every template gets a value, nginx's own variables are
left alone, and a missing value stops it naming what is missing (never an empty hole in a configuration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import load_pilot
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
    render = load_pilot().render
    assert render("listen ${PORT}; proxy_set_header Host $host;", {"PORT": "443"}) == \
        "listen 443; proxy_set_header Host $host;"
    with pytest.raises(KeyError, match="TLS_CERT"):
        render("ssl_certificate ${TLS_CERT};", {})


def test_required_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="SERVER_NAME.*TURN_SECRET"):
        load_pilot().Pilot({"STATE_DIR": str(tmp_path)})
