"""Responses go out in one write: meetd.paired_writes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from meetd.paired_writes import (
    PairedH11Protocol,
    PairedHttpToolsProtocol,
    PairedWrites,
    paired_protocol,
)


def in_a_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a loop of its own."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class RecordingTransport(asyncio.Transport):
    """What a protocol wrote, call by call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol


@in_a_loop
async def test_two_writes_in_one_step_go_out_as_one() -> None:
    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    paired.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert under.writes == []
    paired.write(memoryview(b"{}"))
    assert under.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    await asyncio.sleep(0)  # the held write's fallback finds nothing left to send
    assert under.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


@in_a_loop
async def test_a_write_alone_goes_out_on_the_loops_next_turn() -> None:
    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    paired.write(b"chunk 1")
    assert paired.get_write_buffer_size() == 7 + len(b"chunk 1")
    await asyncio.sleep(0)
    assert under.writes == [b"chunk 1"]
    assert paired.get_write_buffer_size() == 7
    paired.writelines([b"chunk ", b"2"])
    paired.write(b"chunk 3")
    await asyncio.sleep(0)
    assert under.writes == [b"chunk 1", b"chunk 2chunk 3"]
    paired.write(b"head")
    paired.write(b"")  # an empty body: the head goes now
    assert under.writes == [b"chunk 1", b"chunk 2chunk 3", b"head"]
    paired.write(b"")
    await asyncio.sleep(0)
    assert under.writes == [b"chunk 1", b"chunk 2chunk 3", b"head"]


@in_a_loop
async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    paired.write(b"last words")
    paired.close()
    assert under.writes == [b"last words"]
    assert under.closed

    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    paired.write(b"never sent")
    paired.abort()
    await asyncio.sleep(0)
    assert under.writes == []
    assert under.aborted


@in_a_loop
async def test_a_held_write_is_dropped_once_the_transport_closes_under_it() -> None:
    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    paired.write(b"too late")
    under.closed = True  # the peer went away: the transport closed itself
    await asyncio.sleep(0)
    assert under.writes == []
    assert paired.is_closing()


@in_a_loop
async def test_the_rest_goes_to_the_transport_underneath() -> None:
    under = RecordingTransport()
    paired = PairedWrites(under, asyncio.get_running_loop())
    assert paired.get_extra_info("peername") == ("127.0.0.1", 50000)
    assert paired.get_extra_info("nothing", "default") == "default"
    protocol = asyncio.Protocol()
    paired.set_protocol(protocol)
    assert paired.get_protocol() is protocol


async def _json_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b'{"hello":"world"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"17")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("http", ["httptools", "h11"])
@in_a_loop
async def test_uvicorn_sends_a_whole_response_in_one_write(http: str) -> None:
    """Stock uvicorn writes the head and the body apart; with paired writes, once."""
    protocol_class = paired_protocol(http)
    assert protocol_class is {"httptools": PairedHttpToolsProtocol, "h11": PairedH11Protocol}[http]
    config = uvicorn.Config(
        _json_app, lifespan="off", access_log=False, server_header=False, date_header=False
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {})  # type: ignore[call-arg]
    under = RecordingTransport()
    protocol.connection_made(under)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(under.writes) == 1
    (sent,) = under.writes
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    assert sent.endswith(b'\r\n\r\n{"hello":"world"}')
    protocol.connection_lost(None)
