"""An impaired link made of real kernel parts, for the impairment test and benchmark (media/impairment.py): a
network namespace joined to this one by a veth pair, whose host-side end can be capped at 300 kbit/s with a
short queue (``tc`` token bucket) and made to lose 5 % of what it sends (an nftables rule).

``tc netem`` would do both, but not every kernel has ``sch_netem`` (this project's machine has not); the
token bucket and nftables are in every Debian kernel. Needs root, iproute2 and nftables; where a namespace
cannot be made, :class:`NamespaceUnavailable` says why.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess

# 300 kbit/s with at most 50 ms of queue: a link that drops what it cannot carry, not one that buffers for ever
CAP = ("tbf", "rate", "300kbit", "burst", "6kb", "latency", "50ms")
LOSS_PERCENT = 5
TOOLS = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables"}


class NamespaceUnavailable(RuntimeError):
    """No network namespace can be made here (not root, or a tool missing); the message says why."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.PIPE)
    _, error = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {error.decode().strip()}")


class ImpairedLink:
    """A namespace ``ns`` behind a veth pair: this side's end is ``device`` at ``address``; what goes out
    of it (to the namespace) is what :meth:`impair` caps and drops."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns, self.device, self._inner = f"tm-{tag}", f"tmh{tag}", f"tmv{tag}"
        net = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
        self.address, self._inner_address = f"{net}.1", f"{net}.2"
        self._table = f"telemed_{self.device}"
        self.impaired = False

    def open(self) -> ImpairedLink:
        """Make the namespace and the pair; :class:`NamespaceUnavailable` where it cannot be done."""
        missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
        if missing:
            raise NamespaceUnavailable(f"cannot make an impaired link: install {' and '.join(missing)}")
        try:
            _ip("netns", "add", self.ns)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = error.stderr.strip() if isinstance(error, subprocess.CalledProcessError) else str(error)
            raise NamespaceUnavailable(f"cannot make a network namespace here ({detail}); run as root") from error
        try:
            _ip("link", "add", self.device, "type", "veth", "peer", "name", self._inner)
            _ip("link", "set", self._inner, "netns", self.ns)
            _ip("addr", "add", f"{self.address}/30", "dev", self.device)
            _ip("link", "set", self.device, "up")
            _ip("netns", "exec", self.ns, "ip", "addr", "add", f"{self._inner_address}/30", "dev", self._inner)
            _ip("netns", "exec", self.ns, "ip", "link", "set", self._inner, "up")
            _ip("netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError as error:
            self.close()
            raise NamespaceUnavailable(f"cannot make a veth pair: {error.stderr.strip()}") from error
        return self

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]

    async def impair(self) -> None:
        """Cap the device's outgoing traffic at 300 kbit/s and drop LOSS_PERCENT of it at random."""
        await _run("tc", "qdisc", "add", "dev", self.device, "root", *CAP)
        self.impaired = True
        await _run("nft", "add", "table", "inet", self._table)
        await _run("nft", "add", "chain", "inet", self._table, "out",
                   "{ type filter hook postrouting priority 0; }")
        await _run("nft", "add", "rule", "inet", self._table, "out", "oifname", self.device, "numgen", "random",
                   "mod", "100", "lt", str(LOSS_PERCENT), "drop")

    async def lift(self) -> None:
        """The link as it was: no cap, no loss."""
        for command in (("tc", "qdisc", "del", "dev", self.device, "root"),
                        ("nft", "delete", "table", "inet", self._table)):
            process = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.DEVNULL)
            await process.wait()
        self.impaired = False

    def close(self) -> None:
        if self.impaired:
            subprocess.run(["nft", "delete", "table", "inet", self._table], capture_output=True)
        subprocess.run(["ip", "link", "del", self.device], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
