"""Several real ``telemed serve`` nodes sharing one Redis and one data directory (database, signing key,
recordings), which a fault test kills, stops and starts again, each under its name and on its port."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server.devprocs import TelemedNode


class Cluster:
    """Nodes ``node-<name>``; ``urls`` is in the order of ``names`` and stays valid across restarts. The nodes
    named in ``media`` are media nodes (``TELEMED_NODE_ROLE=media``): they serve no participant, and are
    left out of ``urls``; ``env_of`` adds settings of one node."""

    def __init__(self, data_dir: Path, env: dict[str, str], names: tuple[str, ...] = ("a", "b", "c"),
                 logs: Path | None = None, *, media: tuple[str, ...] = (),
                 env_of: dict[str, dict[str, str]] | None = None) -> None:
        def env_for(name: str) -> dict[str, str]:
            role = {"TELEMED_NODE_ROLE": "media"} if name in media else {}
            return {**env, "TELEMED_NODE_ID": f"node-{name}", **role, **(env_of or {}).get(name, {})}

        self.nodes = {name: TelemedNode(data_dir, env_for(name), log_file=logs / f"node-{name}.log" if logs else None)
                      for name in (*names, *media)}
        self.media = media
        self.logs = logs

    def start(self) -> Cluster:
        first, *rest = self.nodes.values()
        first.start()  # the first migrates the shared SQLite database and seeds it; the rest only check
        with ThreadPoolExecutor(len(rest) or 1) as pool:
            for started in [pool.submit(node.start) for node in rest]:
                started.result()
        return self

    def __getitem__(self, name: str) -> TelemedNode:
        return self.nodes[name]

    @property
    def urls(self) -> list[str]:
        """Where participants connect: every node but the media nodes."""
        return [node.url for name, node in self.nodes.items() if name not in self.media]

    def url(self, name: str) -> str:
        return self.nodes[name].url

    def name_of(self, url: str | None) -> str | None:
        return next((name for name, node in self.nodes.items() if node.url == url), None)

    async def kill(self, name: str) -> float:
        """SIGKILL the node; the loop's time of the signal (it is dead when this returns)."""
        at = asyncio.get_running_loop().time()
        self.nodes[name].send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.nodes[name].wait, 10)
        return at

    def terminate(self, name: str) -> float:
        """SIGTERM the node (a graceful stop) and return at once: the loop's time of the signal."""
        at = asyncio.get_running_loop().time()
        self.nodes[name].send_signal(signal.SIGTERM)
        return at

    async def exited(self, name: str, within: float) -> int:
        """The node's exit status, once it has exited (at most ``within`` seconds from now)."""
        return await asyncio.to_thread(self.nodes[name].wait, within)

    async def start_again(self, name: str) -> float:
        """Start the node again under the same name, on the same port; the loop's time it was serving."""
        await asyncio.to_thread(self.nodes[name].start_again)
        return asyncio.get_running_loop().time()

    def close(self) -> None:
        for node in self.nodes.values():
            if node.running:
                node.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.running:
                try:
                    node.wait(15)
                except Exception:
                    node.send_signal(signal.SIGKILL)
                    node.wait(10)
