"""Unpredictable ids, drawn from the OS's random source a block at a time.

``uuid.uuid4()`` asks the kernel for 16 bytes on every call. Inside a busy server those
system calls cost a noticeable share of a request (measured with py-spy under ``wrk``;
docs/performance.md). Here the bytes come from ``os.urandom`` 4 KiB at a time, so they are
just as unpredictable and almost every draw is a slice of memory. (A room's own id and
meeting code are not drawn: see :mod:`meetd.domain.room_keys`.)

A child made by ``fork`` starts with an empty block, so two processes never hand out the
same bytes.
"""

from __future__ import annotations

import os

_BLOCK_BYTES = 4096


class _Block:
    __slots__ = ("data", "offset")

    def __init__(self) -> None:
        self.data = b""
        self.offset = 0

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            self.data = os.urandom(max(_BLOCK_BYTES, count))
            self.offset, end = 0, count
        taken = self.data[self.offset : end]
        self.offset = end
        return taken

    def forget(self) -> None:
        self.data, self.offset = b"", 0


_block = _Block()
os.register_at_fork(after_in_child=_block.forget)


def random_bytes(count: int) -> bytes:
    return _block.take(count)


def new_uuid() -> str:
    """A random (version 4) UUID in its canonical lower-case form, as ``str(uuid.uuid4())``."""
    raw = bytearray(_block.take(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return uuid_text(raw.hex())


def uuid_text(hex32: str) -> str:
    """32 hex digits as a UUID's canonical text: hyphens after the 8th, 12th, 16th, 20th."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"
