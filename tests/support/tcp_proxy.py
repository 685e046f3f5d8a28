"""A TCP proxy a test can switch off and on: ``refuse()`` makes its port refuse connections (and cuts every open
one, as a database that crashes or a network that drops would), ``accept()`` listens again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class TcpProxy:
    """Listens on 127.0.0.1 (port 0 picks a free port, kept across ``refuse``/``accept``) and forwards each
    connection to ``target``. Between ``refuse()`` and ``accept()`` nothing listens there, so a connect gets
    ECONNREFUSED, exactly as when the server behind is down."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.connections = 0  # accepted since the start, for tests that want to see traffic went through
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._trap: tuple[bytes, asyncio.Event] | None = None
        self._refusing: asyncio.Task[None] | None = None

    @property
    def accepting(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> TcpProxy:
        await self.accept()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def accept(self) -> None:
        """Listen (again) on the proxy's port."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop listening and cut every open connection with a reset: new connects are refused, and a
        client in the middle of a query sees its connection drop."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()
        pumps, self._pumps = list(self._pumps), set()
        for pump in pumps:
            pump.cancel()
        for pump in pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
        if server is not None:
            await server.wait_closed()

    close = refuse

    def refuse_at_reply(self, marker: bytes) -> asyncio.Event:
        """Arm a trap: the next reply from the target holding ``marker`` is swallowed and the proxy refuses
        at once, so the client never hears it. With ``b"COMMIT\\0"`` (PostgreSQL's CommandComplete tag), the
        database has committed and the client sees its connection drop mid-commit. The event is set when
        the trap springs."""
        sprung = asyncio.Event()
        self._trap = (marker, sprung)
        return sprung

    def disarm(self) -> None:
        """Take back a trap that has not sprung."""
        self._trap = None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        if self._server is None:  # refused while this connection was being set up
            _reset(client_writer)
            _reset(upstream_writer)
            return
        self._open |= {client_writer, upstream_writer}
        for reader, writer, replies in ((client_reader, upstream_writer, False),
                                        (upstream_reader, client_writer, True)):
            pump = asyncio.get_running_loop().create_task(self._pump(reader, writer, replies))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool) -> None:
        """Copy one direction until its end closes, then close the other end's writing side."""
        try:
            while data := await reader.read(65536):
                if replies and self._trap is not None and self._trap[0] in data:
                    sprung = self._trap[1]
                    self._trap = None
                    _reset(writer)
                    # Not awaited here: refuse() cancels and awaits every pump, this one included.
                    self._refusing = asyncio.get_running_loop().create_task(self.refuse())
                    self._refusing.add_done_callback(lambda _, sprung=sprung: sprung.set())
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0), as a peer that vanished does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
