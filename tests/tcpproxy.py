"""A TCP proxy on loopback that misbehaves on demand, for the outage tests: put it between
feedsvc and PostgreSQL (or Redis) and make the server behind it look refused, silent or
cut, the way a network and a database really fail.

* ``refuse()``: the port stops listening (new connections are refused) and every open
  connection is reset, as when the server process is down; ``restore()`` listens again.
* ``drop()``: nothing moves any more in either direction and new connections get no
  answer, without a reset or an error, as in a partition that loses packets; ``restore()``
  lets through what waited, as TCP's retransmissions would.
* ``cut()``: every open connection is reset now, and new ones are accepted as usual.

It runs on the event loop of the test that starts it.
"""

from __future__ import annotations

import asyncio
import contextlib


class _Link:
    """One client connection and its connection to the server behind."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultyProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._stop_listening()
        self._flowing.set()
        self.cut()

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def upstream_ports(self) -> set[int]:
        """The local ports of the proxy's connections to the server (how the server sees them)."""
        ports = set()
        for link in self._links:
            if link.upstream is not None:
                sock = link.upstream.get_extra_info("sockname")
                if sock:
                    ports.add(sock[1])
        return ports

    # --- faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        for link in list(self._links):
            link.reset()
        self._links.clear()

    async def refuse(self) -> None:
        self._stop_listening()
        self.cut()

    def drop(self) -> None:
        self._flowing.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()
        self._flowing.set()

    # --- forwarding -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._flowing.wait()  # a silent network: no answer to the connection
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
            self._links.discard(link)
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        link.reset()
        self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # read before the drop: held, then delivered
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
