"""``telemed serve`` as a real process on a free port, for tests that need whole nodes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TelemedNode:
    """One ``telemed serve --demo --port 0`` process; ``url`` is read back from what it prints."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.env = data_dir, env or {}
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.printed = ""

    def start(self) -> TelemedNode:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--demo", "--port", "0", "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env={**os.environ, **self.env})
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("Log in as"):
                break
        self.printed = "".join(lines)
        match = re.search(r"listening on (http://\S+)", self.printed)
        assert match, f"no address printed:\n{self.printed}"
        self.url = match.group(1)
        # Keep reading the log so a full pipe never blocks the server.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def __enter__(self) -> TelemedNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
