#!/usr/bin/env python3
"""Start a whole telemed deployment on one machine from Debian's packages, for a pilot hospital.

    python3 deploy/pilot/pilot.py --env /etc/telemed/pilot.env

What it starts, each from the templates beside this directory (deploy/*.template), rendered into
``STATE_DIR/etc``: redis-server with persistence, coturn (TURN over UDP and, through nginx, over TLS on
443), two or more ``telemed serve`` nodes on loopback, and nginx in front of them all. PostgreSQL is the
system's own (Debian's ``postgresql`` service): create the database first (deploy/README.md). It applies the
database's migrations, then runs in the foreground until SIGTERM or Ctrl-C, restarting a node that dies,
and stops everything on the way out. Logs go to ``STATE_DIR/logs``, process ids to ``STATE_DIR/run``.

The settings file holds ``NAME=value`` lines: the topology's names (``PARAMETERS`` below, also in
pilot.env.example) and any ``TELEMED_*`` setting for the nodes. Each service is given only the settings it
reads (``READS`` below): its configuration file holds its own secrets alone, and a node's environment none of
Redis's or coturn's but what it uses to reach them. ``--run SERVICE`` without ``--env`` takes that service's
settings from the environment, as docker-compose.yml gives each container its own. Standard library only: it
runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DEPLOY = Path(__file__).resolve().parents[1]
TEMPLATES = {"nginx.conf": DEPLOY / "nginx.conf.template", "turnserver.conf": DEPLOY / "turnserver.conf.template",
             "redis.conf": DEPLOY / "redis.conf.template"}
# Debian builds nginx's stream module (TLS on 443 shared with TURN) as a module of its own.
DEBIAN_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# The topology's names, with their defaults (None: required).
PARAMETERS: dict[str, str | None] = {
    "SERVER_NAME": None,  # the site's host name, in the TLS certificate
    "TURN_SERVER_NAME": None,  # TURN's host name (same address, another name), in the certificate too
    "TLS_CERT": None,  # full chain (PEM) for both names
    "TLS_KEY": None,
    "TURN_SECRET": None,  # coturn's static-auth-secret, which is TELEMED_TURN_SECRET
    "TURN_RELAY_IP": None,  # this machine's address that browsers can reach (media is relayed from it)
    "REDIS_PASSWORD": None,
    "STATE_DIR": "/var/lib/telemed-pilot",
    "HTTPS_PORT": "443",
    "HTTP_PORT": "80",
    "NODE_PORTS": "8081,8082",  # one telemed node per port, on 127.0.0.1
    # nginx's upstream, when the nodes run elsewhere (--render-only for other hosts): host:port,host:port
    "NODE_ADDRESSES": "",
    "NGINX_INTERNAL_HTTPS_PORT": "8443",  # loopback hops inside nginx
    "NGINX_INTERNAL_TURNS_PORT": "8444",
    "NGINX_MODULES": "",  # default: Debian's stream module (libnginx-mod-stream) loaded, if nginx is built so
    "TURN_LISTEN_IP": "0.0.0.0",
    "TURN_PORT": "3478",
    "TURN_TLS_PORT": "5349",  # on loopback only in effect: reached through nginx's 443
    "TURN_MIN_PORT": "49160",
    "TURN_MAX_PORT": "49359",
    "TURN_ALLOWED_PEER_IPS": "",  # default: TURN_RELAY_IP, where the nodes' media relays are reached
    "REDIS_BIND": "127.0.0.1",
    "REDIS_PORT": "6379",
    "TELEMED_COMMAND": "telemed",  # e.g. /opt/telemed/.venv/bin/telemed
}

# The settings each service reads, and nothing else reaches it: a secret goes only where it is used (the TURN
# secret to coturn and the nodes, Redis's password to Redis and the nodes, nothing secret to nginx). A node also
# reads every TELEMED_* setting; the migrations only the database's URL. docker-compose.yml gives each container
# exactly these (tests/deploy/test_compose.py holds the two to it).
READS: dict[str, frozenset[str]] = {
    "redis-server": frozenset({"STATE_DIR", "REDIS_PASSWORD", "REDIS_BIND", "REDIS_PORT"}),
    "turnserver": frozenset({
        "STATE_DIR", "TURN_SERVER_NAME", "TLS_CERT", "TLS_KEY", "TURN_SECRET", "TURN_RELAY_IP", "TURN_LISTEN_IP",
        "TURN_PORT", "TURN_TLS_PORT", "TURN_MIN_PORT", "TURN_MAX_PORT", "TURN_ALLOWED_PEER_IPS"}),
    "nginx": frozenset({
        "STATE_DIR", "SERVER_NAME", "TURN_SERVER_NAME", "TLS_CERT", "TLS_KEY", "HTTPS_PORT", "HTTP_PORT",
        "NODE_PORTS", "NODE_ADDRESSES", "NGINX_INTERNAL_HTTPS_PORT", "NGINX_INTERNAL_TURNS_PORT", "NGINX_MODULES",
        "TURN_LISTEN_IP", "TURN_TLS_PORT"}),
    "migrate": frozenset({"STATE_DIR", "TELEMED_COMMAND", "TELEMED_DATABASE_URL"}),
    # Where the node is reached (its port, the public URL, TURN's URLs) and the secrets of what it reaches.
    "node": frozenset({
        "STATE_DIR", "TELEMED_COMMAND", "NODE_PORTS", "SERVER_NAME", "HTTPS_PORT", "TURN_SERVER_NAME", "TURN_PORT",
        "TURN_SECRET", "REDIS_PASSWORD", "REDIS_PORT"}),
}
# What each service renders from the templates.
CONFIGURATION = {"redis-server": ("redis.conf",), "turnserver": ("turnserver.conf",), "nginx": ("nginx.conf",)}


def reads(service: str, name: str) -> bool:
    """Whether ``service`` (``node-a``... for a node) is given the setting ``name``."""
    kind = "node" if service.startswith("node-") else service
    if kind not in READS:
        raise SystemExit(f"no service {service!r}: one of redis-server, turnserver, nginx, migrate, node-a...")
    return name in READS[kind] or (kind == "node" and name.startswith("TELEMED_"))


def settings_for(service: str, settings: Mapping[str, str]) -> dict[str, str]:
    """The part of ``settings`` (a settings file, or an environment) that ``service`` reads."""
    return {name: value for name, value in settings.items() if reads(service, name)}


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; blank lines and ``#`` comments skipped; a value may be quoted."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise SystemExit(f"{path}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each capitalised name in braces replaced; nginx's own ``$names`` are left alone.
    A name without a value is an error naming it, never an empty hole in a configuration."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def wait_for_port(port: int, process: subprocess.Popen, what: str, within: float = 30, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {within:.0f} s")


@dataclass
class Pilot:
    """The deployment: ``settings`` are the file's names (topology and ``TELEMED_*``). ``extra_args`` adds
    command-line options to a service (``"turnserver"``, ``"nginx"``, ``"redis-server"``), which override its
    configuration file: the tests use it for what only a test needs. ``service`` narrows it to one service (a
    container's): only that service's settings are kept and required, and only its configuration written."""

    settings: dict[str, str]
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    service: str | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        needed = list(PARAMETERS) if self.service is None else [
            name for name in PARAMETERS if reads(self.service, name)]
        given = self.settings if self.service is None else settings_for(self.service, self.settings)
        values = {name: PARAMETERS[name] or "" for name in needed}
        values.update(given)
        missing = [name for name in needed if PARAMETERS[name] is None and not values.get(name)]
        if missing:
            raise SystemExit(f"settings missing: {', '.join(missing)} (see deploy/pilot/pilot.env.example)")
        state = Path(values["STATE_DIR"])
        if "NGINX_MODULES" in values and not values["NGINX_MODULES"] and DEBIAN_STREAM_MODULE.exists():
            values["NGINX_MODULES"] = f"load_module {DEBIAN_STREAM_MODULE};"
        if "TURN_RELAY_IP" in values:
            values["TURN_ALLOWED_PEER_IPS"] = values.get("TURN_ALLOWED_PEER_IPS") or values["TURN_RELAY_IP"]
        # Names the templates use, made from the settings (each only where what it is made from is given).
        values.update({"NGINX_RUN_DIR": str(state / "run" / "nginx"), "NGINX_LOG_DIR": str(state / "logs" / "nginx"),
                       "TURN_RUN_DIR": str(state / "run" / "turn"),
                       "TURN_LOG_FILE": str(state / "logs" / "turnserver.log"), "REDIS_DIR": str(state / "redis")})
        if "TURN_SERVER_NAME" in values:
            values["TURN_REALM"] = values["TURN_SERVER_NAME"]
        if "TURN_LISTEN_IP" in values and "TURN_TLS_PORT" in values:
            values["TURN_TLS_UPSTREAM"] = f"{self.turn_host(values)}:{values['TURN_TLS_PORT']}"
        if "NODE_ADDRESSES" in values and "NODE_PORTS" in values:
            values["TELEMED_UPSTREAM_SERVERS"] = " ".join(f"server {address} max_fails=1 fail_timeout=10s;"
                                                          for address in self.node_addresses(values))
        self.values, self.state = values, state

    @staticmethod
    def turn_host(values: Mapping[str, str]) -> str:
        """Where nginx finds coturn's TLS port: loopback, unless coturn listens on one address only."""
        return "127.0.0.1" if values["TURN_LISTEN_IP"] in ("0.0.0.0", "") else values["TURN_LISTEN_IP"]

    @classmethod
    def node_addresses(cls, values: Mapping[str, str]) -> list[str]:
        listed = [address.strip() for address in values["NODE_ADDRESSES"].split(",") if address.strip()]
        return listed or [f"127.0.0.1:{port}" for port in cls.node_ports(values)]

    @staticmethod
    def node_ports(values: Mapping[str, str]) -> list[int]:
        return [int(port) for port in values["NODE_PORTS"].split(",") if port.strip()]

    @property
    def node_names(self) -> list[str]:
        return [f"node-{chr(ord('a') + i)}" for i in range(len(self.node_ports(self.values)))]

    @property
    def public_url(self) -> str:
        port = self.values["HTTPS_PORT"]
        return f"https://{self.values['SERVER_NAME']}" + ("" if port == "443" else f":{port}")

    @property
    def redis_url(self) -> str:
        return f"redis://:{quote(self.values['REDIS_PASSWORD'], safe='')}@127.0.0.1:{self.values['REDIS_PORT']}/0"

    def node_environment(self) -> dict[str, str]:
        """What every node is given: the file's TELEMED_* settings over what this topology implies (and no other
        setting: Redis's password only inside TELEMED_REDIS_URL, the TURN secret as TELEMED_TURN_SECRET)."""
        v = self.values
        implied = {
            "TELEMED_HOST": "127.0.0.1",
            "TELEMED_DATA_DIR": str(self.state / "data"),
            "TELEMED_REDIS_URL": self.redis_url,
            "TELEMED_PUBLIC_URL": self.public_url,
            "TELEMED_COOKIE_SECURE": "true",
            # nginx connects to the nodes from 127.0.0.1, and it alone: a client on this host is a client.
            "TELEMED_TRUSTED_PROXIES": "127.0.0.1",
            "TELEMED_TURN_SECRET": v["TURN_SECRET"],
            "TELEMED_TURN_URLS": (f"turn:{v['TURN_SERVER_NAME']}:{v['TURN_PORT']}?transport=udp,"
                                  f"turns:{v['TURN_SERVER_NAME']}:{v['HTTPS_PORT']}?transport=tcp"),
        }
        return {**implied, **{name: value for name, value in v.items() if name.startswith("TELEMED_")
                              and name not in ("TELEMED_COMMAND", "TELEMED_UPSTREAM_SERVERS")}}

    def telemed(self, *args: str) -> list[str]:
        return [*shlex.split(self.values["TELEMED_COMMAND"]), *args]

    # ---- configuration ----

    def write_configuration(self) -> dict[str, Path]:
        """Render the templates into STATE_DIR/etc (secrets inside: readable by root alone); for one service,
        its own alone."""
        etc = self.state / "etc"
        for folder in (etc, self.state / "logs" / "nginx", self.state / "run" / "nginx", self.state / "run" / "turn",
                       self.state / "redis", self.state / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        etc.chmod(0o700)
        names = list(TEMPLATES) if self.service is None else CONFIGURATION.get(self.service, ())
        written = {}
        for name in names:
            template, path = TEMPLATES[name], etc / name
            # Whole or not at all: a service never reads a half-written file.
            partial = etc / f".{name}.{os.getpid()}"
            partial.write_text(render(template.read_text(), self.values))
            partial.chmod(0o600)
            partial.replace(path)
            written[name] = path
        return written

    def command(self, service: str) -> tuple[list[str], dict[str, str]]:
        """The command line and extra environment of one service: ``redis-server``, ``turnserver``, ``nginx``,
        a node (``node-a``...), or ``migrate`` (the database's migrations, once per upgrade)."""
        etc = self.state / "etc"
        if service == "redis-server":
            return [_binary("redis-server"), str(etc / "redis.conf"), *self.extra_args.get(service, [])], {}
        if service == "turnserver":
            return [_binary("turnserver"), "-c", str(etc / "turnserver.conf"), *self.extra_args.get(service, [])], {}
        if service == "nginx":
            return [_binary("nginx"), "-c", str(etc / "nginx.conf"), "-p", str(self.state),
                    "-e", str(self.state / "logs" / "nginx" / "error.log"), "-g", "daemon off;",
                    *self.extra_args.get(service, [])], {}
        if service == "migrate":
            return self.telemed("db", "upgrade"), {
                "TELEMED_DATA_DIR": str(self.state / "data"),
                **{name: value for name, value in self.values.items() if name == "TELEMED_DATABASE_URL"}}
        if service in self.node_names:
            port = self.node_ports(self.values)[self.node_names.index(service)]
            return self.telemed("serve"), {**self.node_environment(), "TELEMED_NODE_ID": service,
                                           "TELEMED_PORT": str(port)}
        raise SystemExit(f"no service {service!r}: one of redis-server, turnserver, nginx, migrate, "
                         f"{', '.join(self.node_names)}")

    # ---- processes ----

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> subprocess.Popen:
        log = (self.state / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**_inherited(), **env},
                                   start_new_session=True)  # a Ctrl-C at the terminal reaches this script alone
        log.close()
        self.processes[name] = process
        (self.state / "run" / f"{name}.pid").write_text(f"{process.pid}\n")
        return process

    def start(self) -> Pilot:
        """Everything, in dependency order, each one answering before the next starts."""
        self.write_configuration()
        v = self.values
        redis = self._spawn("redis-server", *self.command("redis-server"))
        wait_for_port(int(v["REDIS_PORT"]), redis, "redis-server")
        turn = self._spawn("turnserver", *self.command("turnserver"))
        wait_for_port(int(v["TURN_TLS_PORT"]), turn, "turnserver", host=self.turn_host(v))
        # Once for all nodes, before any serves: they share the database.
        command, env = self.command("migrate")
        subprocess.run(command, env={**_inherited(), **env}, check=True, stdout=subprocess.DEVNULL)
        for name in self.node_names:
            self.start_node(name)
        nginx = self._spawn("nginx", *self.command("nginx"))
        wait_for_port(int(v["HTTPS_PORT"]), nginx, "nginx")
        return self

    def start_node(self, name: str) -> subprocess.Popen:
        """Node ``name`` (node-a, node-b, ...) on its port, once its /healthz answers."""
        port = self.node_ports(self.values)[self.node_names.index(name)]
        process = self._spawn(name, *self.command(name))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}: see {self.state}/logs/{name}.log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return process
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer on port {port}")

    def run(self, service: str) -> None:
        """Become one service, in the foreground (a container's whole life; see docker-compose.yml). The
        settings themselves stay behind: the service gets them through its configuration file or its own
        environment (a node's TELEMED_*), never as the names this script reads."""
        self.write_configuration()
        command, env = self.command(service)
        sys.stdout.flush()
        os.execvpe(command[0], command, {**_inherited(), **env})  # noqa: S606

    def stop(self) -> None:
        """nginx first (no new requests), then the nodes (they drain), coturn and Redis last."""
        order = ["nginx", *self.node_names, "turnserver", "redis-server"]
        for name in order:
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(45 if name.startswith("node-") else 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def supervise(self) -> None:
        """Until SIGTERM or SIGINT: restart a node that dies (as systemd's Restart=on-failure would); any other
        service dying ends the pilot, since the deployment cannot work without it."""
        stopping: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _frame: stopping.append(number))
        print(f"telemed is at {self.public_url} (logs in {self.state / 'logs'}); Ctrl-C stops it", flush=True)
        while not stopping:
            time.sleep(1)
            for name, process in list(self.processes.items()):
                if process.poll() is None or stopping:
                    continue
                if not name.startswith("node-"):
                    print(f"{name} exited with status {process.returncode}: stopping", file=sys.stderr, flush=True)
                    stopping.append(0)
                    break
                print(f"{name} exited with status {process.returncode}: starting it again", flush=True)
                try:
                    self.start_node(name)
                except RuntimeError as error:
                    print(error, file=sys.stderr, flush=True)


def _inherited() -> dict[str, str]:
    """This process's environment without the settings this script reads (PATH, HOME, locale...): a service
    gets its settings from ``Pilot.command`` alone, whatever this script was started with."""
    return {name: value for name, value in os.environ.items()
            if name not in PARAMETERS and not name.startswith("TELEMED_")}


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        package = {"turnserver": "coturn"}.get(name, name)
        raise SystemExit(f"{name} is not installed: apt-get install {package}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path,
                        help="settings file (see pilot.env.example); with --run, the environment if not given")
    parser.add_argument("--render-only", action="store_true",
                        help="write the configuration files into STATE_DIR/etc and exit")
    parser.add_argument("--run", metavar="SERVICE",
                        help="run one service in the foreground (redis-server, turnserver, nginx, migrate, node-a...), "
                             "as each container of docker-compose.yml does, with that service's settings alone")
    args = parser.parse_args(argv)
    if args.env is None and not args.run:
        parser.error("--env is needed, unless --run takes the settings from the environment")
    settings = read_env_file(args.env) if args.env is not None else dict(os.environ)
    if args.run:
        Pilot(settings, service=args.run).run(args.run)
    pilot = Pilot(settings)
    if args.render_only:
        for path in pilot.write_configuration().values():
            print(path)
        return 0
    try:
        pilot.start()
        pilot.supervise()
    finally:
        pilot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
