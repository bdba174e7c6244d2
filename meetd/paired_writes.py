"""One send a response: uvicorn's HTTP protocols with their writes paired.

uvicorn writes a response in two calls to its transport, the head and then the body, and
both uvloop and asyncio try each write on the socket at once: two ``write`` system calls,
two TCP segments, and two wake-ups of the client, for a response of a few hundred bytes.
:class:`PairedWrites` sits between the protocol and the transport and holds a write until
the next one, which goes out with it in one call, or until the loop's next turn at the
latest. The head and body written in one step of the request's task, as every
non-streaming response is, become one system call.

Measured (docs/performance.md, the ninth session): the server's CPU time per request fell
by 10 to 15 % for creates and GETs on the standard stack, and the client's by a quarter; GET
room went from 57 to 64 % of the benchmark's hello.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class PairedWrites(asyncio.Transport):
    """A transport that sends each write together with the one after it (or on the loop's
    next turn); everything else goes straight to the transport underneath."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if not data:  # h11 ends a response with one; uvicorn writes an empty body as one
            self._send_held()
        elif held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._send_held)
        else:
            self._held = None
            self._transport.write(held + data)

    def _send_held(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (len(held) if held else 0)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class PairedH11Protocol(H11Protocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(PairedWrites(transport, self.loop))


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # a plain ``pip install uvicorn``: h11 only
    PairedHttpToolsProtocol: type[asyncio.Protocol] | None = None
else:

    class PairedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[no-redef]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(PairedWrites(transport, self.loop))


def paired_protocol(http: str) -> type[asyncio.Protocol]:
    """The protocol class for ``--http`` (``auto``: httptools when installed), with paired
    writes."""
    if http == "h11" or (http == "auto" and PairedHttpToolsProtocol is None):
        return PairedH11Protocol
    if PairedHttpToolsProtocol is None:
        raise RuntimeError("--http httptools needs the httptools package")
    return PairedHttpToolsProtocol
