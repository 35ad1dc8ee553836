"""feedsvc's coupling to uvicorn's internals (feedsvc.http.uvicorn_front) holds for the
installed uvicorn.

``FrontProtocol`` subclasses uvicorn's httptools protocol and uses state that is not
uvicorn's public API. These tests fail, naming what is missing, when the installed uvicorn
is outside the supported range or lacks any method (with its parameters) or attribute the
module lists; tests/test_front.py then checks the behaviour over real connections.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from feedsvc.http.uvicorn_front import ATTRIBUTES, METHODS, SUPPORTED_UVICORN, FrontProtocol

ROOT = Path(__file__).resolve().parent.parent


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_installed_uvicorn_is_in_the_supported_range() -> None:
    low, high = SUPPORTED_UVICORN
    installed = version_tuple(uvicorn.__version__)
    assert low <= installed < high, (
        f"uvicorn {uvicorn.__version__} is outside the range feedsvc.http.uvicorn_front supports "
        f"({'.'.join(map(str, low))} to before {'.'.join(map(str, high))}): see that module's docstring"
    )


def test_pyproject_pins_uvicorn_to_the_supported_range() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("uvicorn"))
    low, high = SUPPORTED_UVICORN
    assert re.search(rf">=\s*{low[0]}\.{low[1]}\b", pin) and re.search(rf"<\s*{high[0]}\.{high[1]}\b", pin), pin


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_the_front_overrides_or_calls_exists_with_its_parameters(name: str) -> None:
    method = getattr(HttpToolsProtocol, name, None)
    assert callable(method), f"uvicorn's HttpToolsProtocol has no {name}()"
    assert tuple(inspect.signature(method).parameters) == METHODS[name], name


def test_the_status_lines_are_uvicorns() -> None:
    assert httptools_impl.STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n"
    assert httptools_impl.STATUS_LINE[304] == b"HTTP/1.1 304 Not Modified\r\n"


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_every_attribute_the_front_uses_is_there_on_a_real_connection() -> None:
    """A FrontProtocol on a real socket, through a request uvicorn answers itself (the app
    has no Front, so every request goes uvicorn's way): each attribute is looked up on the
    object it lives on, as the front reaches it."""
    loop = asyncio.get_running_loop()
    config = Config(app, http=FrontProtocol, lifespan="off", log_config=None, access_log=False)
    state = ServerState()
    protocol = FrontProtocol(config, state, {}, loop)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    try:
        await loop.create_connection(lambda: protocol, sock=ours)
        await loop.sock_sendall(theirs, b"GET /feed.rss HTTP/1.1\r\nhost: localhost\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += await asyncio.wait_for(loop.sock_recv(theirs, 4096), 10)
        assert reply.startswith(b"HTTP/1.1 204"), reply
        objects = {
            "protocol": protocol,
            "flow": protocol.flow,
            "cycle": protocol.cycle,
            "server_state": state,
            "config": config,
            "parser": protocol.parser,
        }
        assert isinstance(protocol.cycle, RequestResponseCycle)
        missing = [
            f"{where}.{name}"
            for where, names in ATTRIBUTES.items()
            for name in names
            if not hasattr(objects[where], name)
        ]
        assert not missing, f"uvicorn {uvicorn.__version__} lacks what feedsvc.http.uvicorn_front uses: {missing}"
    finally:
        theirs.close()
        if protocol.transport is not None:
            protocol.transport.close()
            # The socket closes in a callback of the loop: let it run before the loop ends.
            for _ in range(500):
                if protocol.parser is None:  # connection_lost ran
                    break
                await asyncio.sleep(0.01)
