"""The floor under a relay's fixed cost: what it costs a Python process on this machine only to be woken
for each packet of one stream, doing nothing with it.

``telemed bench relay`` measures it in the same run as the relay, at the rate the relay's publisher sent,
so the relay's CPU at a few subscribers can be read against what no Python receive path goes below: a
process on an asyncio loop (as the relay's is) that takes each datagram off its socket and drops it. The
datagrams come from this process, paced, 1100 bytes each (a full video packet); the receiver measures its
own CPU time (user and system, `time.process_time`: the clock ticks `os.times` counts in are
too coarse for a few seconds of a cheap process).

With ``viewers``, the receiver does the least a relay of its own below aiortc would do for each packet (way 3
of docs/packet-forwarding.md: SRTP through pylibsrtp, no ICE, DTLS or RTCP): SRTP-unprotect it, and for each
viewer write its header anew (sequence number, timestamp, SSRC), SRTP-protect it with the viewer's own session
and send it from the viewer's own socket (as aioice has one per connection), synchronously, where it arrived.
That is a floor under any Python relay at that many viewers, to set against mediasoup's 0.002 CPU-s/s a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import struct
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from pylibsrtp import Policy, Session

PACKET = bytes(1100)
ANSWER_WITHIN = 10.0  # seconds for the receiver to answer, or it is taken for dead
HEADER = struct.Struct("!BBHII")  # an RTP header without CSRCs or extensions: V/P/X/CC, M/PT, seq, ts, SSRC
SRTP_TAG = 10  # bytes of authentication tag SRTP adds (AES_CM_128_HMAC_SHA1_80)


def _receiver_main(conn: Connection, viewers: int, sink: int, key: bytes) -> None:
    asyncio.run(_receive(conn, viewers, sink, key))


class _Forward:
    """Each packet SRTP-unprotected, then written anew and SRTP-protected for each viewer, and sent."""

    def __init__(self, viewers: int, sink: int, key: bytes) -> None:
        self.inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
        self.sink = ("127.0.0.1", sink)
        self.viewers = [(Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)),
                         socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x1000 + n, 7 * n, 3000 * n)
                        for n in range(viewers)]

    def __call__(self, data: bytes) -> None:
        rtp = self.inbound.unprotect(data)
        first, marker_type, seq, timestamp, _ = HEADER.unpack_from(rtp)
        payload = rtp[HEADER.size:]
        for session, sock, ssrc, seq_offset, ts_offset in self.viewers:
            header = HEADER.pack(first, marker_type, (seq + seq_offset) & 0xFFFF, (timestamp + ts_offset) & 0xFFFFFFFF,
                                 ssrc)
            sock.sendto(session.protect(header + payload), self.sink)

    def close(self) -> None:
        for _, sock, *_rest in self.viewers:
            sock.close()


async def _receive(conn: Connection, viewers: int, sink: int, key: bytes) -> None:
    """Take datagrams (and, with ``viewers``, forward them) until asked; answer "start" and "stop" with the CPU
    used and datagrams taken so far."""
    loop = asyncio.get_running_loop()
    taken = 0
    forward = _Forward(viewers, sink, key) if viewers else None

    class Drop(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            nonlocal taken
            taken += 1
            if forward is not None:
                forward(data)

    transport, _ = await loop.create_datagram_endpoint(Drop, local_addr=("127.0.0.1", 0))
    conn.send(transport.get_extra_info("sockname")[1])
    try:
        while (await loop.run_in_executor(None, conn.recv)) != "done":
            conn.send((time.process_time(), taken))  # user and system, every thread, to the nanosecond
    finally:
        transport.close()
        if forward is not None:
            forward.close()


def _drain(sock: socket.socket, done: threading.Event, got: list[int]) -> None:
    """Read what the viewers' sockets send until ``done`` (so none of it is dropped for a full buffer, which
    would cost the sender less than a real send), counting it in ``got``."""
    sock.settimeout(0.2)
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            sock.recv(2048)
            got[0] += 1


async def wakeup_floor(packets_per_second: float, seconds: float, viewers: int = 0) -> dict[str, float]:
    """A receiver's CPU-seconds per second and microseconds per packet at ``packets_per_second``; with
    ``viewers``, forwarding each packet to that many (module docstring)."""
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    key = os.urandom(30)  # SRTP master key and salt
    outbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    loop = asyncio.get_running_loop()
    drained, forwarded = threading.Event(), [0]
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the viewers' copies go (unused without)
    drain = threading.Thread(target=_drain, args=(sink, drained, forwarded), daemon=True)
    try:
        sink.bind(("127.0.0.1", 0))
        if viewers:
            sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            drain.start()
        process = context.Process(target=_receiver_main, args=(child, viewers, sink.getsockname()[1], key),
                                  daemon=True)
        process.start()
    except BaseException:
        drained.set()
        sink.close()
        raise
    child.close()  # the receiver's end is its own now: if it dies, reading ours ends instead of waiting

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

        sent = 0

        async def send_for(duration: float) -> None:
            nonlocal sent
            due = time.monotonic()
            end = due + duration
            while due < end:
                if viewers:  # a real SRTP packet of the same size, one frame of 90 kHz video later each
                    header = HEADER.pack(0x80, 0x80 | 96, sent & 0xFFFF, (sent * 3000) & 0xFFFFFFFF, 0xCAFE)
                    packet = outbound.protect(header + PACKET[:len(PACKET) - HEADER.size - SRTP_TAG])
                else:
                    packet = PACKET
                sender.sendto(packet, ("127.0.0.1", port))
                sent += 1
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
        drained.set()
        if drain.is_alive():
            await loop.run_in_executor(None, drain.join)
        sink.close()
    cpu, taken = cpu1 - cpu0, taken1 - taken0
    found = {"packets_per_second": round(taken / (t1 - t0), 1), "cpu_per_second": round(cpu / (t1 - t0), 4),
             "cpu_us_per_packet": round(cpu / taken * 1e6, 1) if taken else 0.0}
    if viewers:
        found |= {"viewers": viewers, "cpu_per_viewer": round(cpu / (t1 - t0) / viewers, 5),
                  "forwarded_per_packet": round(forwarded[0] / sent, 2) if sent else 0.0}
    return found
