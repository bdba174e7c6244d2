"""PostgreSQL reads on the event loop: a few asyncpg connections, handed out in turn. Writes
that fit in one statement (room creates) run on the loop the same way, on connections of
their own (meetd.store.database.Database.write_in_one_statement).

Reads used to run on two threads with psycopg, which handed results back to the loop. Each
read then cost the loop a queue hand-off and a wake-up, and the threads competed with it for
the GIL: about 66 µs of CPU a read. asyncpg's protocol is written in Cython and runs on the
loop: 26 to 33 µs, and GET room went from 5 800 to 9 500 req/s (docs/performance.md).

Connections are opened on the first reads, on the loop that runs them (asyncpg ties each
connection to one loop, so a Database read from another loop has a pool there too). They
are given to waiting reads strictly in arrival order: the read that waited longest gets the
next free connection, so none starves behind newer ones. (An ``asyncio.Queue`` lets a
newcomer take a connection just put back, ahead of the woken waiter: p99 rose to 40 to 260 ms.)
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from meetd.store.backends import JIT, Params

T = TypeVar("T")

# Four: one read waits on the network while others run; more connections measured no faster
# (8 gave 5 % more on a 2-core machine, within noise) and cost the server a process each.
READER_CONNECTIONS = 4

# Writes made in one statement on the loop (Database.write_in_one_statement: room creates)
# have a connection of their own, so reads never queue behind them. One: while its statement
# runs, the next requests queue, and the next statement takes them all. Measured against two
# (a statement sent while the other commits) and four: the same creates a second, within
# noise, one a little ahead (docs/performance.md, the thirteenth session).
STATEMENT_WRITE_CONNECTIONS = 1

# How long a statement there waits for a row lock before it gives up and leaves its rows to
# the writer thread (rooms.insert_plain_rooms): the statements of other processes hold an
# application's row a millisecond or two, and a wait that ends a deadlock with a writer
# thread's transaction (which locks applications in its own order) ends well before
# PostgreSQL's own detection, a second in.
STATEMENT_LOCK_TIMEOUT = "100ms"

_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …`` (the store's SQL has no literal ``?``)."""
    count = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


# Without these a server that stops answering (packets dropped, not refused) held a read for
# as long as the network did: asyncpg waits 60 s to connect and forever for a query, and the
# expiry sweeper, whose reads wait with the rest, stopped expiring rooms meanwhile. Reads
# take milliseconds; these only end the ones that will never answer.
CONNECT_TIMEOUT_SECONDS = 5.0
QUERY_TIMEOUT_SECONDS = 30.0


async def _connect(url: str, settings: dict[str, str] | None = None) -> asyncpg.Connection:
    # asyncpg prepares every statement, and PostgreSQL plans a prepared statement anew for
    # its parameters until a generic plan looks no dearer. For the statement that answers
    # several list pages at once it never does: planning took 0.5 ms each time, more than
    # running it, and lists ran at 800 to 1 200 req/s against 2 400 to 2 700 with the generic
    # plan. The reads are written so that their generic plans walk the right index (see
    # store.paging, and tests/store/test_paging_plans.py), so they always use those.
    return await asyncpg.connect(
        url,
        server_settings={"plan_cache_mode": "force_generic_plan", "jit": JIT, **(settings or {})},
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=QUERY_TIMEOUT_SECONDS,
    )


class AsyncpgReader:
    """A :class:`~meetd.store.backends.Reader` on one asyncpg connection."""

    dialect = "postgresql"

    def __init__(self, raw: asyncpg.Connection, cache: dict[str, Any]) -> None:
        self.raw = raw
        self.cache = cache  # the Backend's (see backends.Connection.cache)

    async def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        found = await self.raw.fetchrow(numbered(sql), *params)
        return None if found is None else tuple(found)

    async def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        # asyncpg's Records, not copies as tuples (see backends.Reader): a copy cost 0.2 µs a
        # row, 3 % of a list page's CPU.
        records: list[Any] = await self.raw.fetch(numbered(sql), *params)
        return records


class ReaderPool:
    """Up to ``size`` autocommit connections, all on one event loop. ``cache``: the Backend's,
    given to each connection; ``settings``: PostgreSQL settings for their sessions."""

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        size: int = READER_CONNECTIONS,
        cache: dict[str, Any] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.loop = loop
        self.size = size
        self.cache: dict[str, Any] = {} if cache is None else cache
        self.settings = settings or {}  # PostgreSQL settings of its sessions, beside the above
        self._all: list[AsyncpgReader] = []
        self._idle: list[AsyncpgReader] = []
        self._opening = 0
        # None wakes a waiter to try opening a connection itself (one failed to open).
        self._waiting: collections.deque[asyncio.Future[AsyncpgReader | None]] = collections.deque()

    async def run(self, fn: Callable[[AsyncpgReader], Awaitable[T]], *, again: bool = True) -> T:
        """``fn`` on a free connection. ``again``: when the connection turns out to be lost,
        run ``fn`` once more on a new one (not for a write, which may have committed)."""
        reader: AsyncpgReader | None = await self._acquire()
        assert reader is not None
        try:
            try:
                return await fn(reader)
            except Exception as error:
                if not reader.raw.is_closed():
                    raise
                if reader not in self._all:  # the pool was closed meanwhile (meetd stops)
                    reader = None
                    raise ConnectionError("the database's connections were closed") from error
                if not again:  # dropped from the pool: the next run opens a new one
                    self._all.remove(reader)
                    self._wake(None)
                    reader = None
                    raise
            # The server restarted or the network dropped: once more, on a new connection.
            reader = await self._replace(reader)
            return await fn(reader)
        finally:
            if reader is not None:
                self._release(reader)

    async def _acquire(self) -> AsyncpgReader:
        while True:
            if self._idle:
                return self._idle.pop()
            if len(self._all) + self._opening < self.size:
                return await self._open()
            waiter: asyncio.Future[AsyncpgReader | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting.append(waiter)
            try:
                reader = await waiter
            except asyncio.CancelledError:
                # Cancelled just after a connection was handed over: pass it on.
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    self._release(handed)
                raise
            if reader is not None:
                return reader

    async def _open(self) -> AsyncpgReader:
        self._opening += 1
        try:
            reader = AsyncpgReader(await _connect(self.url, self.settings), self.cache)
        except BaseException:
            self._wake(None)  # the place is free again: a waiter may try it
            raise
        finally:
            self._opening -= 1
        self._all.append(reader)
        return reader

    def _release(self, reader: AsyncpgReader) -> None:
        if not self._wake(reader):
            self._idle.append(reader)

    def _wake(self, reader: AsyncpgReader | None) -> bool:
        """Hand ``reader`` (or a free place) to the longest waiter; False when none waits."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a read cancelled while it waited is passed over
                waiter.set_result(reader)
                return True
        return False

    async def _replace(self, broken: AsyncpgReader) -> AsyncpgReader:
        reader = AsyncpgReader(await _connect(self.url, self.settings), self.cache)
        self._all[self._all.index(broken)] = reader
        return reader

    async def aclose(self) -> None:
        """Close every connection politely, on the pool's loop."""
        readers, self._all, self._idle = self._all, [], []
        for reader in readers:
            try:
                await reader.raw.close(timeout=2)
            except Exception:
                reader.raw.terminate()

    def close(self) -> None:
        """Drop every connection at once, from any thread. Once the pool's loop is closed its
        connections can no longer be closed: close the pool (:meth:`aclose`) before that."""
        readers, self._all, self._idle = self._all, [], []
        if self.loop.is_closed():
            return
        on_loop = self.loop.is_running() and _running_loop() is self.loop
        for reader in readers:
            if on_loop or not self.loop.is_running():
                reader.raw.terminate()
            else:
                self.loop.call_soon_threadsafe(reader.raw.terminate)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
