"""Where queries run: one writer that commits concurrent writes together, and reads that
never wait for it.

Every request that changes state hands a function to :meth:`Database.write`. The one writer
of the process takes everything queued since its last commit, runs it in *one* transaction —
each function inside its own savepoint, so a rejected request rolls back alone and writes
nothing — commits once, and only then resolves the waiting requests. Under load one commit
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
import contextlib
import dataclasses
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Params = Sequence[Any]

log = logging.getLogger("meetd.store")

# Two, not more: with more threads, contention for the GIL costs more than the parallel
# round trips gain (measured: 1 thread 8 500 GET/s, 2 → 6 900, 8 → 6 700); two keep one
# slow read from holding up every other.
READER_THREADS = 2
# Failures that concern the whole transaction, not one request: the batch is run again.
_RETRIES = 5


class Connection:
    """A DB-API connection that takes ``?`` placeholders on every backend."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect
        self._translated: dict[str, str] = {}

    def execute(self, sql: str, params: Params = ()) -> Any:
        if self.dialect == "postgresql":
            pg_sql = self._translated.get(sql)
            if pg_sql is None:
                pg_sql = self._translated[sql] = sql.replace("?", "%s")
            return self.raw.execute(pg_sql, params)
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if self.dialect == "postgresql":
            with self.raw.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)
        else:
            self.raw.executemany(sql, rows)

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def savepoint(self, name: str = "request") -> Iterator[None]:
        """Run a block that rolls back alone when it raises."""
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")


class _Backend:
    """What differs between SQLite and PostgreSQL: how connections open and transactions run."""

    dialect: str

    def connect_writer(self) -> Connection:
        raise NotImplementedError

    def begin_write(self, conn: Connection) -> None:
        raise NotImplementedError

    def commit(self, conn: Connection) -> None:
        conn.raw.commit() if self.dialect == "postgresql" else conn.execute("COMMIT")

    def rollback(self, conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.raw.rollback() if self.dialect == "postgresql" else conn.execute("ROLLBACK")

    def is_retryable(self, error: BaseException) -> bool:
        raise NotImplementedError


class _SQLiteBackend(_Backend):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def connect(self) -> Connection:
        raw = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        raw.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of meetd; only a power cut can lose
        # the last commits. FULL would fsync every commit (see docs/architecture.md).
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("PRAGMA foreign_keys=ON")
        # SQLite's default page cache is 2 MB; with a million rooms the indexes a write touches
        # no longer fit, and every insert would fault pages in from the OS.
        raw.execute("PRAGMA cache_size=-65536")  # 64 MiB per connection
        raw.execute("PRAGMA mmap_size=268435456")
        return Connection(raw, self.dialect)

    def connect_writer(self) -> Connection:
        conn = self.connect()
        # The writer runs on the event loop: checkpoints (which fsync) must not run there.
        # A _Checkpointer thread does them instead.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


class _PostgresBackend(_Backend):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url

    def connect_writer(self) -> Connection:
        import psycopg

        return Connection(psycopg.connect(self.url, autocommit=False), self.dialect)

    def begin_write(self, conn: Connection) -> None:
        pass  # psycopg opens a transaction with the first statement

    def is_retryable(self, error: BaseException) -> bool:
        import psycopg.errors

        return isinstance(
            error, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure
        )


class _Checkpointer(threading.Thread):
    """Copies the SQLite WAL back into the database file off the event loop.

    PASSIVE checkpoints never block the writer or readers; the WAL is truncated on close.
    """

    INTERVAL_SECONDS = 0.5

    def __init__(self, backend: _SQLiteBackend) -> None:
        super().__init__(name="meetd-checkpoint", daemon=True)
        self.conn = backend.connect()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.INTERVAL_SECONDS):
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.exception("WAL checkpoint failed")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.raw.close()


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self, fn: Callable[[Connection], Any], future: Any, loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    """In a batch without savepoints, the write at ``index`` raised ``error``; the
    transaction was rolled back."""

    index: int
    error: Exception


class _Batcher:
    """Commits a batch of writes in one transaction, so that a failing write fails alone.

    With ``savepoints`` (SQLite, where they cost microseconds) each write runs in its own
    savepoint and a failure rolls back just that one. Without (PostgreSQL, where each
    savepoint costs two round trips, as much as a room's insert), a failure rolls back the
    transaction, and the batch runs again without the failed write — rare, since requests are
    validated before they reach the writer.
    """

    def __init__(
        self, backend: _Backend, conn: Connection, *, on_loop: bool = False, savepoints: bool
    ) -> None:
        self.backend = backend
        self.conn = conn
        self.on_loop = on_loop  # commits run on the waiters' own event loop
        self.savepoints = savepoints
        self.batches = 0
        self.writes = 0

    def commit(self, batch: list[_Job]) -> None:
        settled: list[tuple[_Job, bool, Any]] = []
        pending = batch
        attempts = 0
        while pending:
            result = self._try(pending)
            if isinstance(result, _Failed):
                settled.append((pending[result.index], False, result.error))
                pending = pending[: result.index] + pending[result.index + 1 :]
                continue
            if isinstance(result, BaseException):
                attempts += 1
                if attempts < _RETRIES and self.backend.is_retryable(result):
                    log.info("write batch retried", extra={"error": str(result)})
                    continue
                if attempts < _RETRIES and self._reconnected():
                    continue
                settled += [(job, False, result) for job in pending]
                break
            settled += [(job, ok, value) for job, (ok, value) in zip(pending, result, strict=True)]
            break
        self.batches += 1
        self.writes += len(batch)
        if self.on_loop:
            for item, ok, value in settled:
                if item.loop is not None:
                    _settle(item.future, ok, value)
                else:
                    _resolve(item, ok, value)
        else:
            _settle_batch(settled)

    def _lost(self) -> bool:
        """Whether the PostgreSQL connection died (a database restart, a dropped network)."""
        raw = self.conn.raw
        return self.backend.dialect == "postgresql" and bool(raw.closed or raw.broken)

    def _reconnected(self) -> bool:
        """After a lost connection, a new one: True when made."""
        if not self._lost():
            return False
        log.warning("writer connection lost; reconnecting")
        try:
            self.conn = self.backend.connect_writer()
        except Exception:
            log.exception("reconnecting the writer failed")
            return False
        return True

    def _try(self, batch: list[_Job]) -> list[tuple[bool, Any]] | _Failed | BaseException:
        conn, backend = self.conn, self.backend
        outcomes: list[tuple[bool, Any]] = []
        try:
            backend.begin_write(conn)
            for index, item in enumerate(batch):
                if len(batch) == 1:
                    outcomes.append((True, item.fn(conn)))
                    continue
                if not self.savepoints:
                    try:
                        outcomes.append((True, item.fn(conn)))
                    except Exception as error:
                        if backend.is_retryable(error) or self._lost():
                            raise
                        backend.rollback(conn)
                        return _Failed(index, error)
                    continue
                try:
                    with conn.savepoint():
                        outcomes.append((True, item.fn(conn)))
                except Exception as error:
                    if backend.is_retryable(error):
                        raise
                    outcomes.append((False, error))
            backend.commit(conn)
        except Exception as error:
            backend.rollback(conn)
            if len(batch) == 1 and not backend.is_retryable(error) and not self._lost():
                return [(False, error)]
            return error
        return outcomes


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _ThreadWriter(threading.Thread):
    """The writer for PostgreSQL: a thread, so the event loop never waits on the network."""

    def __init__(self, backend: _Backend) -> None:
        super().__init__(name="meetd-writer", daemon=True)
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.batcher = _Batcher(backend, backend.connect_writer(), savepoints=False)

    def submit(self, item: _Job) -> None:
        self.queue.put(item)

    def run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self.batcher.commit(batch)
            if stop:
                break
        self.batcher.conn.raw.close()

    def stop(self) -> None:
        self.queue.put(None)
        self.join(timeout=10)


class _ThreadReaders:
    """PostgreSQL reads: a few threads, each with its own autocommit connection, draining one
    queue. A thread takes every read waiting when it wakes, runs them one after another, and
    hands all their results back to the loop in one call — one loop wake-up per batch, not per
    read, which is what a thread pool would cost."""

    def __init__(self, backend: _PostgresBackend, count: int) -> None:
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.threads = [
            threading.Thread(target=self._run, args=(backend,), name=f"meetd-read-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, item: _Job) -> None:
        self.queue.put(item)

    def _run(self, backend: _PostgresBackend) -> None:
        import psycopg

        raw = psycopg.connect(backend.url, autocommit=True)
        conn = Connection(raw, "postgresql")
        try:
            while True:
                first = self.queue.get()
                if first is None:
                    return
                batch = [first]
                while len(batch) < 64:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self.queue.put(None)  # leave the stop signal for this thread's next turn
                        break
                    batch.append(item)
                outcomes: list[tuple[_Job, bool, Any]] = []
                for item in batch:
                    try:
                        outcomes.append((item, True, item.fn(conn)))
                    except Exception as error:
                        if not (raw.closed or raw.broken):
                            outcomes.append((item, False, error))
                            continue
                        # The server restarted or the network dropped: once more, afresh.
                        try:
                            raw = psycopg.connect(backend.url, autocommit=True)
                            conn = Connection(raw, "postgresql")
                            outcomes.append((item, True, item.fn(conn)))
                        except Exception as again:
                            outcomes.append((item, False, again))
                _settle_batch(outcomes)
        finally:
            raw.close()

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join(timeout=10)


def _settle_batch(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    by_loop: dict[Any, list[tuple[Any, bool, Any]]] = {}
    for item, ok, value in outcomes:
        if item.loop is None:
            _resolve(item, ok, value)
        else:
            by_loop.setdefault(item.loop, []).append((item.future, ok, value))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[Any, bool, Any]]) -> None:
    for future, ok, value in settled:
        _settle(future, ok, value)


class _LoopWriter:
    """The writer for SQLite: runs on the event loop itself, after the requests that arrived
    in the same loop iteration have queued their writes. A WAL commit without fsync takes
    tens of microseconds, less than handing the batch to a thread and back (and no GIL
    hand-offs), so the loop does it between requests."""

    def __init__(self, backend: _Backend) -> None:
        self.batcher = _Batcher(backend, backend.connect_writer(), on_loop=True, savepoints=True)
        self.pending: list[_Job] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()  # blocking callers without a loop (CLI, set-up code)

    def submit(self, item: _Job) -> None:
        if item.loop is None:
            if self.loop is not None and self.loop.is_running() and not _on_loop(self.loop):
                # Another thread (a test, a tool) writes while the server runs: go through
                # the loop, which owns the connection.
                self.loop.call_soon_threadsafe(self._queue, item)
            else:
                with self.lock:
                    self.batcher.commit([item])
            return
        self.loop = item.loop
        self._queue(item)

    def _queue(self, item: _Job) -> None:
        self.pending.append(item)
        if len(self.pending) == 1:
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            self.batcher.commit(batch)

    def stop(self) -> None:
        self._flush()
        self.batcher.conn.raw.close()


def _resolve(item: _Job, ok: bool, value: Any) -> None:
    if item.loop is None:  # a blocking caller waits on a concurrent.futures.Future
        if ok:
            item.future.set_result(value)
        else:
            item.future.set_exception(value)
        return

    item.loop.call_soon_threadsafe(_settle, item.future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Database:
    """Runs store functions: writes through the batch writer, reads beside it."""

    def __init__(self, backend: _Backend, url: str) -> None:
        self.backend = backend
        self.url = url
        self.dialect = backend.dialect
        self._writer: _ThreadWriter | _LoopWriter | None = None
        self._reader: Connection | None = None
        self._readers: _ThreadReaders | None = None
        self._checkpointer: _Checkpointer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._writer is not None:
            return
        if isinstance(self.backend, _SQLiteBackend):
            self._writer = _LoopWriter(self.backend)
            self._reader = self.backend.connect()
            self._checkpointer = _Checkpointer(self.backend)
            self._checkpointer.start()
        else:
            self._writer = _ThreadWriter(self.backend)
            self._writer.start()
            assert isinstance(self.backend, _PostgresBackend)
            self._readers = _ThreadReaders(self.backend, READER_THREADS)

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
        self._writer.submit(_Job(fn, future, loop))
        return await future

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a consistent snapshot of committed data."""
        if self._reader is not None:
            return _read_sqlite(self._reader, fn)
        assert self._readers is not None, "Database.start() was not called"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._readers.submit(_Job(fn, future, loop))
        return await future

    def write_blocking(self, fn: Callable[[Connection], T]) -> T:
        """The blocking form of :meth:`write`, for the CLI and set-up code."""
        import concurrent.futures

        assert self._writer is not None, "Database.start() was not called"
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._writer.submit(_Job(fn, future, None))
        return future.result()

    def read_blocking(self, fn: Callable[[Connection], T]) -> T:
        if self._reader is not None:
            return _read_sqlite(self._reader, fn)
        import concurrent.futures

        assert self._readers is not None, "Database.start() was not called"
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._readers.submit(_Job(fn, future, None))
        return future.result()


def _read_sqlite(conn: Connection, fn: Callable[[Connection], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


def open_database(url: str) -> Database:
    """A started Database for ``sqlite:///path`` or ``postgresql://...``."""
    backend: _Backend
    if url.startswith("sqlite:///"):
        backend = _SQLiteBackend(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        backend = _PostgresBackend(url)
    else:
        raise ValueError(f"unsupported database URL: {url!r}")
    database = Database(backend, url)
    database.start()
    return database
