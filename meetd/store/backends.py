"""What differs between SQLite and PostgreSQL: connections that take ``?`` placeholders,
how a write transaction begins, which failures are worth a retry, and SQLite's checkpoints.

Store functions that only read are coroutines over a :class:`Reader`: ``await conn.row(…)``,
``await conn.rows(…)``. On PostgreSQL, :mod:`meetd.store.pg_readers` runs them on the event
loop itself. A :class:`Connection` is a Reader too, whose awaits complete at once: SQLite's
reads and every write run store coroutines to the end in one step (:func:`run_now`), so a
write can call a read function without waiting on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

Params = Sequence[Any]
T = TypeVar("T")

log = logging.getLogger("meetd.store")


class Reader(Protocol):
    """What a read function may ask: one row (or None) or all rows, as tuples."""

    dialect: str

    async def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    async def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...


@overload
def run_now(step: Coroutine[Any, Any, T]) -> T: ...


@overload
def run_now(step: T) -> T: ...


def run_now(step: Any) -> Any:
    """The result of a store function on a :class:`Connection`. A coroutine's awaits complete
    at once there, so it runs to the end in one step, off any event loop."""
    if not isinstance(step, Coroutine):
        return step
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    step.close()
    raise RuntimeError("a store function waited on something other than its connection")


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

    def fetch_each(self, sql: str, rows: Sequence[Params]) -> list[Any]:
        """PostgreSQL: ``sql`` once for each row of parameters, all in one round trip
        (psycopg's pipeline mode); the first row of each result."""
        assert self.dialect == "postgresql", "SQLite has no pipeline: run the statements"
        if not rows:
            return []
        found = []
        with self.raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows, returning=True)
            while True:
                found.append(cursor.fetchone())
                if not cursor.nextset():
                    break
        return found

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())

    # The Reader methods: the same queries, for read functions (see the module docstring).
    async def row(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        found = self.execute(sql, params).fetchone()
        return None if found is None else tuple(found)

    async def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(found) for found in self.execute(sql, params).fetchall()]

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


class Backend:
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


def is_unique_violation(error: BaseException) -> bool:
    """Whether ``error`` is a broken UNIQUE constraint, on either backend. Store functions
    check uniqueness first; this catches the race that a check in another process can lose."""
    if isinstance(error, sqlite3.IntegrityError):
        return "UNIQUE" in str(error)
    import psycopg.errors

    return isinstance(error, psycopg.errors.UniqueViolation)


class SQLiteBackend(Backend):
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
        # A multi-row insert keeps a statement journal of every page it changes, to undo
        # itself alone; past 64 KiB SQLite spills it to a temporary file, and under load it
        # did so every few batches (a file opened, written page by page, unlinked). In memory,
        # creates went 8 to 14 % faster (docs/performance.md).
        raw.execute("PRAGMA temp_store=MEMORY")
        return Connection(raw, self.dialect)

    def connect_writer(self) -> Connection:
        conn = self.connect()
        # The writer runs on the event loop: checkpoints (which fsync) must not run there.
        # A Checkpointer thread does them instead.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# PostgreSQL compiles a query to machine code when its estimated cost passes jit_above_cost
# (100 000 by default). Generic plans of list pages on a table of a million rooms are
# estimated past it, though they read a few index pages: each page then took 20 to 40 ms
# of compiling, and lists fell to 47 req/s. meetd's statements are all short, so never.
JIT = "off"


class PostgresBackend(Backend):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url

    def connect_writer(self) -> Connection:
        import psycopg

        raw = psycopg.connect(self.url, autocommit=False)
        raw.execute(f"SET jit = {JIT}")
        raw.commit()  # a SET made in a transaction lasts only if it commits
        return Connection(raw, self.dialect)

    def begin_write(self, conn: Connection) -> None:
        pass  # psycopg opens a transaction with the first statement

    def is_retryable(self, error: BaseException) -> bool:
        import psycopg.errors

        return isinstance(
            error, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure
        )


class IterationSnapshots:
    """SQLite reads on the event loop, the reads of one loop iteration in one read transaction.

    A statement outside a transaction takes and drops a WAL read lock itself (system calls on
    the ``-shm`` file). Under load a loop iteration serves several requests; their reads now
    share one lock. GET room went from 14 300 to 16 100 req/s (docs/performance.md).

    A request served in an iteration arrived before the iteration began, and the snapshot is
    taken at the iteration's first read, so every read still sees everything committed before
    its request arrived. The transaction also ends before each write batch on the loop
    (:meth:`release`): reads after a write see it, and SQLite can start the WAL file over,
    which it cannot while a reader holds a snapshot.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._loop: Any = None  # the loop whose iteration holds the transaction, if any
        self._generation = 0

    def begin(self) -> None:
        """Called before each read on the loop: open this iteration's transaction if needed."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self.end(self._generation)  # a transaction left by a loop that stopped
        if not self.conn.raw.in_transaction:  # (another thread's loop may have begun one)
            self.conn.execute("BEGIN")
        self._loop = loop
        self._generation += 1
        loop.call_soon(self.end, self._generation)

    def release(self) -> None:
        """End the current transaction now (before a write on the loop); the next read
        begins another."""
        self.end(self._generation)

    def end(self, generation: int) -> None:
        if self._loop is not None and generation == self._generation:
            self._loop = None
            if self.conn.raw.in_transaction:  # (another thread's loop may have ended it)
                self.conn.execute("COMMIT")


@dataclass(frozen=True)
class WalState:
    """What a checkpoint pass reports: the frames in the WAL, and how many it has copied."""

    frames: int
    copied: int

    def written_since(self, earlier: WalState | None) -> bool:
        """Whether the WAL changed between the earlier pass and this one: commits reached it
        (more frames, or fewer when it started over), or a reader that held frames let go."""
        return self.frames > 0 and self != earlier

    def started_over_since(self, earlier: WalState | None) -> bool:
        """Whether the WAL started over from its beginning since the earlier pass, as far as
        the counts tell: it holds fewer frames. (It may also have started over and grown past
        the earlier count; passes close together seldom let it.)"""
        return earlier is not None and self.frames < earlier.frames


class CheckpointPacing:
    """When the checkpoint thread's next pass comes, from what the last two passes found.

    A pass copies the frames committed before it began, and SQLite starts the WAL file over
    only at a write transaction that begins with *every* frame copied: no commit may come
    while a pass runs. Under writes that never pause (a commit every few milliseconds) a pass
    every half second never leaves the WAL in that state, and the file grew by about 60 MB a
    second. So while the WAL keeps changing, passes follow each other :attr:`QUICK_SECONDS`
    apart: each then has only a few milliseconds' commits to copy, and soon one ends before
    the next commit and the WAL starts over.

    That needs gaps between commits longer than a pass. When commits come closer (measured:
    at 6 000 creates a second, not at 3 000), the WAL never starts over, and quick passes only
    cost, each with its two fsyncs: creates went 8 % slower with them. So after
    :attr:`QUICK_TRIES` quick passes without the WAL starting over, the next pass waits a
    pause, half a second at first and twice as long after each such round, up to
    :attr:`LONGEST_PAUSE`; then quick passes try again. The WAL starting over, or a pass that
    finds nothing new, brings back the first pace (docs/performance.md).
    """

    IDLE_SECONDS = 0.5
    QUICK_SECONDS = 0.01
    QUICK_TRIES = 10
    LONGEST_PAUSE = 2.0

    def __init__(self) -> None:
        self.tries = self.QUICK_TRIES  # quick passes left before a pause
        self.pause = self.IDLE_SECONDS  # the next pause after quick passes that failed

    def reset(self) -> float:
        """The first pace again: the wait before the next pass."""
        self.tries, self.pause = self.QUICK_TRIES, self.IDLE_SECONDS
        return self.IDLE_SECONDS

    def next_wait(self, state: WalState, last: WalState | None) -> float:
        """The wait before the next pass, after one that found ``state`` (``last``: what the
        one before it found, if any)."""
        if state.started_over_since(last):
            self.reset()
            return self.QUICK_SECONDS
        if not state.written_since(last):
            return self.reset()
        if self.tries > 0:
            self.tries -= 1
            return self.QUICK_SECONDS
        wait = self.pause
        self.tries, self.pause = self.QUICK_TRIES, min(2 * self.pause, self.LONGEST_PAUSE)
        return wait


class Checkpointer(threading.Thread):
    """Copies the SQLite WAL back into the database file off the event loop, paced by
    :class:`CheckpointPacing`.

    PASSIVE checkpoints never block the writer or readers; the WAL is truncated on close.
    """

    def __init__(self, backend: SQLiteBackend) -> None:
        super().__init__(name="meetd-checkpoint", daemon=True)
        self.conn = backend.connect()
        self.stopping = threading.Event()
        self.pacing = CheckpointPacing()

    def run(self) -> None:
        last: WalState | None = None
        wait = self.pacing.reset()
        while not self.stopping.wait(wait):
            try:
                row = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                log.exception("WAL checkpoint failed")
                last, wait = None, self.pacing.reset()
                continue
            state = WalState(frames=row[1], copied=row[2])  # row[0]: whether a lock stopped it
            wait = self.pacing.next_wait(state, last)
            last = state

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.raw.close()
