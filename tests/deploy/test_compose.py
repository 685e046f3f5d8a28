"""deploy/docker-compose.yml: the same services as the pilot script, and a file Docker's own parser accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.devprocs import ROOT

from .conftest import load_pilot

pytestmark = pytest.mark.deploy

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
EXAMPLE = ROOT / "deploy" / "pilot" / "pilot.env.example"


def _example_settings(tmp_path: Path) -> Path:
    """pilot.env.example with its blanks (secrets) filled, as an operator would."""
    lines = [line + "x" * 32 if line.endswith("=") and not line.startswith("#") else line
             for line in EXAMPLE.read_text().splitlines()]
    path = tmp_path / "pilot.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_container_is_a_service_of_the_pilot_script(tmp_path: Path) -> None:
    """Each container runs ``pilot.py --run <service>`` with a service the script knows (or is PostgreSQL's own
    image), so compose and the pilot start one topology from one set of templates: nginx, coturn, Redis, the
    migrations and two nodes."""
    compose = yaml.safe_load(COMPOSE.read_text())
    pilot_module = load_pilot()
    settings = pilot_module.read_env_file(_example_settings(tmp_path))
    pilot = pilot_module.Pilot({**settings, "STATE_DIR": str(tmp_path / "state")})
    commands = {name: service.get("command", []) for name, service in compose["services"].items()}
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    run = {name: command[0] for name, command in commands.items() if name != "postgres"}
    assert sorted(run.values()) == sorted(["redis-server", "turnserver", "migrate", "nginx", *pilot.node_names])
    for service in run.values():
        command, _ = pilot.command(service)  # raises SystemExit for a service the script does not know
        assert command
    assert all(compose["services"][name]["network_mode"] == "host" for name in run)


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    """``docker compose config`` parses and resolves the file with the example settings."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        said = (probe.stderr.strip() or probe.stdout.strip()).splitlines()[:1]
        pytest.skip(f"the docker client has no compose plugin ({' '.join(said)})")
    env = {**os.environ, "TELEMED_PILOT_ENV": str(_example_settings(tmp_path))}
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--quiet"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
