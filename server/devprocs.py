"""Local processes for tests and benchmarks: a ``telemed serve`` node, a ``redis-server``, both on free ports."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


def raise_open_file_limit() -> int:
    """Thousands of sockets need more than the common default of 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TelemedNode:
    """One ``telemed serve --demo`` process, on ``port`` (0: a free one); ``url`` is read back from what it
    prints. With ``log_file``, everything it prints is appended there (a fault test's evidence)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, *, port: int = 0,
                 log_file: Path | None = None) -> None:
        self.data_dir, self.env, self.port, self.log_file = data_dir, env or {}, port, log_file
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.printed = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> TelemedNode:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--demo", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env={**os.environ, **self.env})
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith(("Log in as", "Telemed media node is listening")):  # (a media node has no logins)
                break
        self.printed = "".join(lines)
        match = re.search(r"listening on (http://\S+)", self.printed)
        if not match:
            self.process.kill()
            raise RuntimeError(f"telemed did not start:\n{self.printed}")
        self.url = match.group(1)
        # Keep reading the log so a full pipe never blocks the server.
        threading.Thread(target=self._keep_reading, args=(self.process.stdout,), daemon=True).start()
        return self

    def _keep_reading(self, stream: IO[str]) -> None:
        if self.log_file is None:
            stream.read()
            return
        with self.log_file.open("a") as log:
            log.write(self.printed)
            for line in stream:
                log.write(line)
                log.flush()

    def start_again(self) -> TelemedNode:
        """A new process (a new incarnation) with the same name and settings, on the port the last one
        listened on, so the node's URL stays valid for clients that know it."""
        assert self.process is not None and self.process.poll() is not None, "stop the running process first"
        self.port = int(self.url.rsplit(":", 1)[1])
        for attempt in range(20):  # the port is free once the old process is gone; a moment's retry is enough
            try:
                return self.start()
            except RuntimeError:
                if attempt == 19:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` and return at once (``wait`` for the exit)."""
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def rss_bytes(self) -> int:
        """Resident memory of the process now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc")

    def __enter__(self) -> TelemedNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


class RedisServer:
    """One redis-server process that keeps nothing on disk; can be stopped and started again on its port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: `make test` installs Debian's redis-server, "
                               "or point TELEMED_TEST_REDIS_URL at a running one")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
