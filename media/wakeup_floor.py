"""The floor under a relay's fixed cost: what it costs a Python process on this machine only to be woken
for each packet of one stream, doing nothing with it.

``telemed bench relay`` measures it in the same run as the relay, at the rate the relay's publisher sent,
so the relay's CPU at a few subscribers can be read against what no Python receive path goes below: a
process on an asyncio loop (as the relay's is) that takes each datagram off its socket and drops it. The
datagrams come from this process, paced, 1100 bytes each (a full video packet); the receiver measures its
own CPU time (user and system, `time.process_time`: the clock ticks `os.times` counts in are
too coarse for a few seconds of a cheap process).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

PACKET = bytes(1100)
ANSWER_WITHIN = 10.0  # seconds for the receiver to answer, or it is taken for dead


def _receiver_main(conn: Connection) -> None:
    asyncio.run(_receive(conn))


async def _receive(conn: Connection) -> None:
    """Count datagrams until asked; answer "start" and "stop" with the CPU used and datagrams taken so far."""
    loop = asyncio.get_running_loop()
    taken = 0

    class Drop(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            nonlocal taken
            taken += 1

    transport, _ = await loop.create_datagram_endpoint(Drop, local_addr=("127.0.0.1", 0))
    conn.send(transport.get_extra_info("sockname")[1])
    try:
        while (await loop.run_in_executor(None, conn.recv)) != "done":
            conn.send((time.process_time(), taken))  # user and system, every thread, to the nanosecond
    finally:
        transport.close()


async def wakeup_floor(packets_per_second: float, seconds: float) -> dict[str, float]:
    """A receiver's CPU-seconds per second and microseconds per packet at ``packets_per_second``."""
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    process = context.Process(target=_receiver_main, args=(child,), daemon=True)
    process.start()
    child.close()  # the receiver's end is its own now: if it dies, reading ours ends instead of waiting
    loop = asyncio.get_running_loop()

    def answer() -> Any:
        if not conn.poll(ANSWER_WITHIN):
            raise TimeoutError(f"the floor's receiver did not answer within {ANSWER_WITHIN:g} s")
        return conn.recv()

    async def ask(request: str) -> Any:
        conn.send(request)
        return await loop.run_in_executor(None, answer)

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        port = await loop.run_in_executor(None, answer)
        interval = 1 / packets_per_second

        async def send_for(duration: float) -> None:
            due = time.monotonic()
            end = due + duration
            while due < end:
                sender.sendto(PACKET, ("127.0.0.1", port))
                due += interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))

        await send_for(1.0)  # the receiver's loop and caches settle
        (cpu0, taken0), t0 = await ask("start"), time.monotonic()
        await send_for(seconds)
        (cpu1, taken1), t1 = await ask("stop"), time.monotonic()
    finally:
        sender.close()
        with contextlib.suppress(OSError):
            conn.send("done")  # also after a failure here: the receiver ends, not lingers until we exit
        await loop.run_in_executor(None, process.join, ANSWER_WITHIN)
        if process.is_alive():
            process.kill()
        conn.close()
    cpu, taken = cpu1 - cpu0, taken1 - taken0
    return {"packets_per_second": round(taken / (t1 - t0), 1), "cpu_per_second": round(cpu / (t1 - t0), 4),
            "cpu_us_per_packet": round(cpu / taken * 1e6, 1) if taken else 0.0}
