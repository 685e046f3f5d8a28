"""A process that records a relay call until it is killed: ``python -m tests.support.recording_child DIR KEYHEX``.

Prints "recording" once frames are being written; the crash test then kills it with SIGKILL."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from media.recorder import Segment
from media.relay import Relay

from .peers import RelayClient, until


async def main(directory: Path, key: bytes) -> None:
    clients: dict[str, RelayClient] = {}
    relay = Relay(on_layout=lambda pid, layout: clients[pid].on_layout(layout))
    for pid in ("doctor", "specialist"):
        clients[pid] = RelayClient(pid, slots=1)
        await clients[pid].join(relay)
    await until(lambda: len(relay.publications()) == 4)
    segment = Segment(directory / "segment.live", key, relay.publications())
    await until(lambda: segment.result.packets > 0)
    print("recording", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), bytes.fromhex(sys.argv[2])))
