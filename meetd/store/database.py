"""Where queries run: one writer that commits concurrent writes together, and reads that
never wait for it.

Every request that changes state hands a function to :meth:`Database.write`. The one writer
of the process takes everything queued since its last commit, runs it in *one* transaction —
a rejected request writes nothing while the others commit (:class:`runners.Batcher` says
how) — commits once, and only then resolves the waiting requests. Under load one commit
carries many requests. For SQLite the writer runs on the event loop between requests; for
PostgreSQL it is a thread, so the loop never waits on the network; there, writes that fit in
one statement (room creates) can also run on the loop, the requests queued meanwhile in one
autocommit statement (:meth:`Database.write_in_one_statement`). Reads run on their own
connections and see the last committed state (SQLite WAL snapshots, PostgreSQL MVCC), so they
never queue behind the writer.

Read functions are coroutines over a :class:`~meetd.store.backends.Reader`. SQLite reads run
inline on the event loop: an indexed lookup takes microseconds, less than a thread hop would.
PostgreSQL reads run on the loop too, on a few asyncpg connections
(:mod:`meetd.store.pg_readers`). On both, reads that concurrent requests can share (a room by
its id, a page of rooms) go in one call for all of them (:meth:`Database.read_together`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from meetd.store.backends import (
    Backend,
    Checkpointer,
    Connection,
    IterationSnapshots,
    Params,
    PostgresBackend,
    Reader,
    SQLiteBackend,
    is_unique_violation,
    run_now,
)
from meetd.store.runners import Group, Job, LoopWriter, ThreadWriter

if TYPE_CHECKING:  # asyncpg takes 0.1 s to import: only PostgreSQL servers load it
    from meetd.store.pg_readers import AsyncpgReader, ReaderPool

T = TypeVar("T")

__all__ = [
    "Connection",
    "Database",
    "Params",
    "Reader",
    "is_unique_violation",
    "open_database",
    "run_now",
]

# A read function is a coroutine function over a Reader. A write function takes the writer's
# Connection and returns its result, or a coroutine of it (run at once: see run_now).
ReadFn = Callable[[Reader], Coroutine[Any, Any, T]]
# Reads that concurrent requests may share: ``group(reader, items)`` answers every item at
# once, in order, each with its result or the exception to raise for it.
ReadGroup = Callable[[Reader, list[Any]], Coroutine[Any, Any, list[Any]]]
# Writes that concurrent requests may share in one statement, on the loop (PostgreSQL):
# ``group(conn, items)``, as a ReadGroup (see Database.write_in_one_statement).
StatementGroup = Callable[["AsyncpgReader", list[Any]], Coroutine[Any, Any, list[Any]]]
# The items waiting for their group's next call, by loop and group.
_Waiting = dict[tuple[asyncio.AbstractEventLoop, Any], list[tuple[Any, asyncio.Future[Any]]]]


class Database:
    """Runs store functions: writes through the batch writer, reads beside it."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.url = url
        self.dialect = backend.dialect
        self._writer: ThreadWriter | LoopWriter | None = None
        self._reader: Connection | None = None
        self._snapshots: IterationSnapshots | None = None
        self._pools: dict[asyncio.AbstractEventLoop, ReaderPool] | None = None
        self._checkpointer: Checkpointer | None = None
        # PostgreSQL: the items waiting for their group's next call, by loop and group.
        self._read_groups: _Waiting = {}
        self._read_tasks: set[asyncio.Task[None]] = set()
        # PostgreSQL: the connections of writes made in one statement on the loop, by loop;
        # and their items waiting for their group's next call.
        self._statement_pools: dict[asyncio.AbstractEventLoop, ReaderPool] | None = None
        self._statement_groups: _Waiting = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._writer is not None:
            return
        if isinstance(self.backend, SQLiteBackend):
            self._reader = self.backend.connect()
            self._snapshots = IterationSnapshots(self._reader)
            self._writer = LoopWriter(self.backend, before_commit=self._snapshots.release)
            self._checkpointer = Checkpointer(self.backend, commits=self._writer)
            self._checkpointer.start()
        else:
            self._writer = ThreadWriter(self.backend)
            self._writer.start()
            self._pools = {}
            self._statement_pools = {}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._reader is not None:
            self._reader.raw.close()
            self._reader = self._snapshots = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        for pools in (self._pools, self._statement_pools):
            for pool in (pools or {}).values():
                pool.close()
        self._pools = self._statement_pools = None

    async def close_reads(self) -> None:
        """Close the running loop's connections (PostgreSQL: reads, and writes made in one
        statement): call it before the loop ends, as the app's lifespan does. :meth:`close`
        can only drop them."""
        for pools in (self._pools, self._statement_pools):
            pool = (pools or {}).pop(asyncio.get_running_loop(), None)
            if pool is not None:
                await pool.aclose()

    @property
    def write_stats(self) -> tuple[int, int]:
        """(batches committed, writes committed) since start."""
        if self._writer is None:
            return (0, 0)
        return (self._writer.batcher.batches, self._writer.batcher.writes)

    # -- running functions -----------------------------------------------------------------
    @overload
    async def write(self, fn: Callable[[Connection], Coroutine[Any, Any, T]]) -> T: ...

    @overload
    async def write(self, fn: Callable[[Connection], T]) -> T: ...

    async def write(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn`` in the next committed batch; return only once it is committed."""
        return await self._committed(fn)

    async def write_together(self, group: Group, item: Any) -> Any:
        """Like :meth:`write` for ``group(conn, [item])``, but the writer may run ``group`` once
        for every item queued in the same batch: ``group(conn, [item, …])``."""
        return await self._committed(lambda conn: group(conn, [item])[0], group, item)

    async def _committed(
        self, fn: Callable[[Connection], Any], group: Group | None = None, item: Any = None
    ) -> Any:
        assert self._writer is not None, "Database.start() was not called"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._writer.submit(Job(fn, future, loop, group, item))
        return await future

    async def write_in_one_statement(self, group: StatementGroup, item: Any) -> Any:
        """PostgreSQL only: ``group(conn, [item])[0]``, run on the loop on an autocommit
        connection of its own (asyncpg), where one call takes every item queued until the
        connection is free. Each statement there is a transaction, committed before it
        answers: ``group`` must make its writes in one statement. It answers each item with
        its result, or with None when it wrote nothing for it (the caller then writes it
        through :meth:`write`); raised errors are the items' too. A call whose connection is
        lost is not made again: it may have committed.

        Why: the writer thread's transactions take several round trips, and each hand-off
        between the thread and the loop waits on the GIL; POST create room went from 13 % to
        24 % of the benchmark's hello this way (docs/performance.md)."""
        assert self._statement_pools is not None, "write_in_one_statement is PostgreSQL's"
        return await self._together(self._statement_groups, group, item)

    async def read(self, fn: ReadFn[T]) -> T:
        """Run the read function ``fn`` on committed data: what was committed before the
        request arrived, at least. PostgreSQL reads run in autocommit; SQLite reads share a
        read transaction with the other reads of the loop iteration (IterationSnapshots)."""
        if self._reader is not None:
            assert self._snapshots is not None
            self._snapshots.begin()
            return await fn(self._reader)
        return await self._reader_pool().run(fn)

    async def read_together(self, group: ReadGroup, item: Any) -> Any:
        """``group(reader, [item])[0]``, raised when it is an exception. The items of all the
        requests that ask in one loop iteration go in one call, run at the next: one query
        for all of them, where each read's own query cost the loop more than the rest of its
        request (docs/performance.md). On PostgreSQL that is also one round trip (GET room
        8 800 → 16 000 req/s); on SQLite, where the call runs on the loop at once, GET room
        went from 12 700 to 18 000 req/s over 500 rooms."""
        return await self._together(self._read_groups, group, item)

    async def _together(
        self,
        waiting: _Waiting,
        group: ReadGroup | StatementGroup,
        item: Any,
    ) -> Any:
        """Queue ``item`` for ``group``'s next call (in ``waiting``: the reads' or the
        one-statement writes'), and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        key = (loop, group)
        queued = waiting.get(key)
        if queued is None:
            queued = waiting[key] = []
            if self._reader is not None:
                loop.call_soon(self._read_group_now, key)
            else:
                task = loop.create_task(self._group_call(waiting, key))
                self._read_tasks.add(task)  # the loop keeps only a weak reference
                task.add_done_callback(self._read_tasks.discard)
        queued.append((item, future))
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _read_group_now(self, key: tuple[asyncio.AbstractEventLoop, Any]) -> None:
        """SQLite: the group's call, run to its end on the loop (its awaits complete at once
        on a Connection), in the iteration's read transaction."""
        assert self._reader is not None and self._snapshots is not None
        queued = self._read_groups.pop(key)
        items = [item for item, _ in queued]
        try:
            self._snapshots.begin()
            results = run_now(key[1](self._reader, items))
        except Exception as error:
            results = [error] * len(queued)
        _settle_reads(queued, results)

    async def _group_call(
        self,
        waiting: _Waiting,
        key: tuple[asyncio.AbstractEventLoop, Any],
    ) -> None:
        """PostgreSQL: the group's call, on a read connection for the items queued in the
        loop iteration; or for a write, on a connection of the one-statement writes, for
        every item queued until one was free (while all are busy, the next statement takes
        what comes meanwhile), and not run again on a new connection when the first is lost
        (it may have committed)."""
        group = key[1]
        reads = waiting is self._read_groups
        queued = waiting.pop(key) if reads else []

        async def call(conn: Any) -> list[Any]:
            if not reads:
                queued.extend(waiting.pop(key))
            results: list[Any] = await group(conn, [item for item, _ in queued])
            return results

        try:
            pool = self._reader_pool() if reads else self._statement_pool()
            results = await pool.run(call, again=reads)
        except BaseException as error:
            if not queued:  # a write's call never ran: its items still wait in ``waiting``
                queued.extend(waiting.pop(key, []))
            if not isinstance(error, Exception):  # cancelled (the loop is closing)
                for _, future in queued:
                    future.cancel()
                raise
            results = [error] * len(queued)
        _settle_reads(queued, results)

    def _reader_pool(self) -> ReaderPool:
        """The running loop's PostgreSQL read connections, made on its first read."""
        assert self._pools is not None, "Database.start() was not called"
        return self._loop_pool(self._pools, statements=False)

    def _statement_pool(self) -> ReaderPool:
        """The running loop's connections for writes made in one statement (PostgreSQL)."""
        assert self._statement_pools is not None, "Database.start() was not called"
        return self._loop_pool(self._statement_pools, statements=True)

    def _loop_pool(
        self, pools: dict[asyncio.AbstractEventLoop, ReaderPool], *, statements: bool
    ) -> ReaderPool:
        """The running loop's pool of ``pools``, made on its first use (the serving loop's
        first request, or a test's new loop), when the pools of closed loops are dropped."""
        loop = asyncio.get_running_loop()
        pool = pools.get(loop)
        if pool is None:
            for ended in [other for other in pools if other.is_closed()]:
                pools.pop(ended).close()
            assert isinstance(self.backend, PostgresBackend)
            from meetd.store import pg_readers

            size, settings = pg_readers.READER_CONNECTIONS, {}
            if statements:
                size = pg_readers.STATEMENT_WRITE_CONNECTIONS
                settings = {"lock_timeout": pg_readers.STATEMENT_LOCK_TIMEOUT}
            pool = pools[loop] = pg_readers.ReaderPool(
                self.backend.url, loop, size, cache=self.backend.cache, settings=settings
            )
        return pool

    @overload
    def write_blocking(self, fn: Callable[[Connection], Coroutine[Any, Any, T]]) -> T: ...

    @overload
    def write_blocking(self, fn: Callable[[Connection], T]) -> T: ...

    def write_blocking(self, fn: Callable[[Connection], Any]) -> Any:
        """The blocking form of :meth:`write`, for the CLI and set-up code."""
        import concurrent.futures

        assert self._writer is not None, "Database.start() was not called"
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._writer.submit(Job(fn, future, None))
        return future.result()

    def read_blocking(self, fn: ReadFn[T]) -> T:
        """The blocking form of :meth:`read`. On PostgreSQL it runs on the writer's
        connection: the reader connections belong to the serving loop."""
        if self._reader is not None:
            return run_now(fn(self._reader))
        result: T = self.write_blocking(fn)
        return result


def _settle_reads(queued: list[tuple[Any, asyncio.Future[Any]]], results: list[Any]) -> None:
    """Give each request of a read group its own result (a row, or its own error)."""
    for (_, future), result in zip(queued, results, strict=True):
        if not future.done():  # (a request cancelled meanwhile)
            future.set_result(result)


def open_database(url: str) -> Database:
    """A started Database for ``sqlite:///path`` or ``postgresql://...``."""
    backend: Backend
    if url.startswith("sqlite:///"):
        backend = SQLiteBackend(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        backend = PostgresBackend(url)
    else:
        raise ValueError(f"unsupported database URL: {url!r}")
    database = Database(backend, url)
    database.start()
    return database
