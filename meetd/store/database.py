"""Where queries run: one writer that commits concurrent writes together, and reads that
never wait for it.

Every request that changes state hands a function to :meth:`Database.write`. The one writer
of the process takes everything queued since its last commit, runs it in *one* transaction —
a rejected request writes nothing while the others commit (:class:`runners.Batcher` says
how) — commits once, and only then resolves the waiting requests. Under load one commit
carries many requests. For SQLite the writer runs on the event loop between requests; for
PostgreSQL it is a thread, so the loop never waits on the network. Reads run on their own
connections and see the last committed state (SQLite WAL snapshots, PostgreSQL MVCC), so they
never queue behind the writer.

SQLite reads run inline on the event loop: an indexed lookup takes microseconds, less than a
thread hop would. PostgreSQL reads run on two reader threads with a connection each, which
hand results back to the loop a batch at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from meetd.store.backends import (
    Backend,
    Checkpointer,
    Connection,
    Params,
    PostgresBackend,
    SQLiteBackend,
    is_unique_violation,
)
from meetd.store.runners import READER_THREADS, Job, LoopWriter, ThreadReaders, ThreadWriter

T = TypeVar("T")

__all__ = ["Connection", "Database", "Params", "is_unique_violation", "open_database"]


class Database:
    """Runs store functions: writes through the batch writer, reads beside it."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.url = url
        self.dialect = backend.dialect
        self._writer: ThreadWriter | LoopWriter | None = None
        self._reader: Connection | None = None
        self._readers: ThreadReaders | None = None
        self._checkpointer: Checkpointer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._writer is not None:
            return
        if isinstance(self.backend, SQLiteBackend):
            self._writer = LoopWriter(self.backend)
            self._reader = self.backend.connect()
            self._checkpointer = Checkpointer(self.backend)
            self._checkpointer.start()
        else:
            self._writer = ThreadWriter(self.backend)
            self._writer.start()
            assert isinstance(self.backend, PostgresBackend)
            self._readers = ThreadReaders(self.backend, READER_THREADS)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._reader is not None:
            self._reader.raw.close()
            self._reader = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._readers is not None:
            self._readers.stop()
            self._readers = None

    @property
    def write_stats(self) -> tuple[int, int]:
        """(batches committed, writes committed) since start."""
        if self._writer is None:
            return (0, 0)
        return (self._writer.batcher.batches, self._writer.batcher.writes)

    # -- running functions -----------------------------------------------------------------
    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the next committed batch; return only once it is committed."""
        assert self._writer is not None, "Database.start() was not called"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._writer.submit(Job(fn, future, loop))
        return await future

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on committed data. Each statement sees what was committed when it
        started: reads run in autocommit on both backends, as a transaction would cost two
        more statements a read (on SQLite, a tenth of a GET; see docs/performance.md)."""
        if self._reader is not None:
            return fn(self._reader)
        assert self._readers is not None, "Database.start() was not called"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._readers.submit(Job(fn, future, loop))
        return await future

    def write_blocking(self, fn: Callable[[Connection], T]) -> T:
        """The blocking form of :meth:`write`, for the CLI and set-up code."""
        import concurrent.futures

        assert self._writer is not None, "Database.start() was not called"
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._writer.submit(Job(fn, future, None))
        return future.result()

    def read_blocking(self, fn: Callable[[Connection], T]) -> T:
        if self._reader is not None:
            return fn(self._reader)
        import concurrent.futures

        assert self._readers is not None, "Database.start() was not called"
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._readers.submit(Job(fn, future, None))
        return future.result()


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
