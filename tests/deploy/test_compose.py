"""deploy/docker-compose.yml: the same services as the pilot script, each container given the settings its
service reads and no other secret, and a file Docker's own parser accepts and resolves as intended."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.devprocs import ROOT
from server.settings import ENV_PREFIX, Settings

from .conftest import load_pilot

pytestmark = pytest.mark.deploy

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
EXAMPLE = ROOT / "deploy" / "pilot" / "pilot.env.example"
STATE = "/var/lib/telemed-pilot"
# What compose sets inside its containers itself, whatever the settings file says.
PINNED = {"STATE_DIR": STATE, "TELEMED_COMMAND": "/opt/telemed/.venv/bin/telemed"}
# Who may hold which secret: the deployment is held to this table. PostgreSQL's password is also inside
# TELEMED_DATABASE_URL, which the migrations and the nodes use to reach it.
NODE_SECRETS = {"TURN_SECRET", "REDIS_PASSWORD", "TELEMED_JWT_SECRET", "TELEMED_RECORDING_KEY", "POSTGRES_PASSWORD"}
NEEDS = {"postgres": {"POSTGRES_PASSWORD"}, "redis": {"REDIS_PASSWORD"}, "turn": {"TURN_SECRET"}, "nginx": set(),
         "migrate": {"POSTGRES_PASSWORD"}, "node-a": NODE_SECRETS, "node-b": NODE_SECRETS}
SECRETS = set().union(*NEEDS.values())
# Each service's pilot service (the command its container runs).
PILOT_SERVICE = {"redis": "redis-server", "turn": "turnserver", "nginx": "nginx", "migrate": "migrate",
                 "node-a": "node-a", "node-b": "node-b"}


def _example_values() -> dict[str, str]:
    """pilot.env.example with its blanks (secrets) filled as an operator would, each with a value of its own (and
    the example's database password replaced by one), so each secret can be told apart wherever it turns up."""
    pilot_module = load_pilot()
    values = {}
    for name, value in pilot_module.read_env_file(EXAMPLE).items():
        values[name] = value or secrets.token_hex(32)
    password = secrets.token_hex(16)
    return {name: value.replace("CHANGE-ME", password) for name, value in values.items()}


def _example_settings(tmp_path: Path, **changes: str | None) -> Path:
    """The filled example as a settings file; ``changes`` sets or (None) leaves out names."""
    values = {**_example_values(), **changes}
    path = tmp_path / "pilot.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items() if value is not None))
    return path


def _node_settings() -> set[str]:
    """Every setting of a node (server/settings.py) but the two the pilot sets per node."""
    names = {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}
    return names - {"TELEMED_NODE_ID", "TELEMED_PORT"}


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
    assert run == PILOT_SERVICE
    assert sorted(run.values()) == sorted(["redis-server", "turnserver", "migrate", "nginx", *pilot.node_names])
    for service in run.values():
        command, _ = pilot.command(service)  # raises SystemExit for a service the script does not know
        assert command
    assert all(compose["services"][name]["network_mode"] == "host" for name in run)


def test_each_container_is_given_what_its_service_reads() -> None:
    """Compose and the pilot agree on who gets which setting: each container's environment names exactly what
    pilot.py says its service reads (READS), a node's every TELEMED_* setting of server/settings.py besides (so a
    new setting cannot be forgotten here), PostgreSQL's its own three names; and no container is handed the
    whole settings file (``env_file``), which would give every container every secret."""
    compose = yaml.safe_load(COMPOSE.read_text())
    pilot_module = load_pilot()
    for name, service in compose["services"].items():
        assert "env_file" not in service, f"{name} is handed the whole settings file"
        given = set(service["environment"])
        if name == "postgres":
            assert given == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
            continue
        kind = "node" if name.startswith("node-") else PILOT_SERVICE[name]
        expected = set(pilot_module.READS[kind]) | (_node_settings() if kind == "node" else set())
        assert given == expected, f"{name}: given {sorted(given - expected)}, not given {sorted(expected - given)}"
        assert all(pilot_module.reads(PILOT_SERVICE[name], setting) for setting in given)
        for setting, value in PINNED.items():
            assert setting not in given or service["environment"][setting] == value


def test_each_secret_reaches_only_the_services_that_use_it(tmp_path: Path) -> None:
    """What the pilot hands each service when it runs it alone (as in a container): the settings it keeps, the
    configuration it writes and the command and environment it starts, hold each secret only where NEEDS says,
    and those settings are enough to start it. The whole pilot still writes every file from the one file."""
    pilot_module = load_pilot()
    settings = {**_example_values(), "STATE_DIR": str(tmp_path / "whole")}
    for name, service in PILOT_SERVICE.items():
        state = tmp_path / name
        pilot = pilot_module.Pilot({**settings, "STATE_DIR": str(state)}, service=service)
        written = pilot.write_configuration()
        command, env = pilot.command(service)
        held = "\n".join([repr(pilot.values), repr(command), repr(env),
                          *(path.read_text() for path in written.values())])
        found = {secret for secret in SECRETS if settings[secret] in held}
        assert found == NEEDS[name], f"{service} holds {sorted(found)}"
        assert set(written) == set(pilot_module.CONFIGURATION.get(service, ()))
    env = pilot_module.Pilot(settings, service="node-a").command("node-a")[1]
    assert env["TELEMED_TURN_SECRET"] == settings["TURN_SECRET"]
    assert settings["REDIS_PASSWORD"] in env["TELEMED_REDIS_URL"]
    assert not {"TURN_SECRET", "REDIS_PASSWORD", "POSTGRES_PASSWORD"} & set(env)
    assert set(pilot_module.Pilot(settings).write_configuration()) == {"nginx.conf", "turnserver.conf", "redis.conf"}


@pytest.fixture
def compose_tool() -> list[str]:
    """The command that reads compose files here: the docker client's compose plugin (v2), else Debian 12's
    docker-compose (v1.29, which deploy/dev/system-packages.sh installs where the plugin is missing)."""
    docker = shutil.which("docker")
    tried = []
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
        said = (probe.stderr.strip() or probe.stdout.strip()).splitlines()[:1]
        tried.append(f"the docker client has no compose plugin ({' '.join(said)})")
    else:
        tried.append("no docker client")
    v1 = shutil.which("docker-compose")
    if v1 is not None:
        return [v1]
    pytest.skip(f"{'; '.join(tried)}, and no docker-compose (v1): `make install-test` installs Debian's")


def _config(tool: list[str], settings: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``config`` with nothing but the settings file: no variable from this shell but where the docker client
    finds its plugins, and a DOCKER_HOST where no daemon is (reading a compose file needs none)."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "DOCKER_CONFIG") if name in os.environ}
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-daemon.sock"
    return subprocess.run([*tool, "--env-file", str(settings), "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def _mounts(service: dict) -> set[tuple[str, str, bool]]:
    """(source, target, read-only) of a resolved service's volumes, in v1's short or v2's long form."""
    found = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found.add((source, target, mode == ["ro"]))
        else:
            found.add((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return found


def test_docker_compose_accepts_and_resolves_the_file(compose_tool: list[str], tmp_path: Path) -> None:
    """Docker's own parser (v2's ``docker compose config``, else v1.29's ``docker-compose config``: the file is
    written for both, e.g. its project's name comes from COMPOSE_PROJECT_NAME, not a top-level ``name:`` that
    v1 refuses) reads the file with the filled example settings and no Docker daemon, and resolves it to what
    the pilot would give each service: each container's environment is the settings its service reads with
    the example's values (PostgreSQL's its POSTGRES_* names), each secret appears in the services NEEDS lists
    and nowhere else, the volumes are each service's own (recordings for the nodes, Redis's files for Redis, the
    certificate read-only for nginx and coturn alone, the settings file mounted nowhere), and the nodes wait for
    the migrations and a healthy Redis. Under v1 this proves v1.29's schema and interpolation, not v2's."""
    settings = _example_values()
    result = _config(compose_tool, _example_settings(tmp_path, **settings), tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == {"postgres", *PILOT_SERVICE}
    assert resolved.get("name", "telemed") == "telemed"  # v2 prints the project's name; v1 does not
    pilot_module = load_pilot()
    for name, service in services.items():
        environment = {key: value for key, value in service["environment"].items() if value is not None}
        if name == "postgres":
            expected = {key: settings[key] for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")}
        else:
            expected = {**pilot_module.settings_for(PILOT_SERVICE[name], settings),
                        **{key: value for key, value in PINNED.items() if key in environment}}
        assert environment == expected, name
        text = yaml.safe_dump(service)
        found = {secret for secret in SECRETS if settings[secret] in text}
        assert found == NEEDS[name], f"{name} is given {sorted(found)}"
        assert service["network_mode"] == "host", name
    tls = ("/etc/letsencrypt", "/etc/letsencrypt", True)
    assert {name: _mounts(service) for name, service in services.items()} == {
        "postgres": {("postgres", "/var/lib/postgresql/data", False)},
        "redis": {("redis", f"{STATE}/redis", False)},
        "turn": {("logs", f"{STATE}/logs", False), tls},
        "nginx": {("logs", f"{STATE}/logs", False), tls},
        "migrate": set(),
        "node-a": {("data", f"{STATE}/data", False)},
        "node-b": {("data", f"{STATE}/data", False)},
    }
    for node in ("node-a", "node-b"):
        depends = {name: condition["condition"] for name, condition in services[node]["depends_on"].items()}
        assert depends == {"migrate": "service_completed_successfully", "redis": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_docker_compose_names_a_missing_secret(compose_tool: list[str], tmp_path: Path) -> None:
    """A settings file without a required secret is refused by compose itself, naming it, before any container
    starts without it."""
    result = _config(compose_tool, _example_settings(tmp_path, TURN_SECRET=None), tmp_path)
    assert result.returncode != 0
    assert "TURN_SECRET is not set" in result.stderr
