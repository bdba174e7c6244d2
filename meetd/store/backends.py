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
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

Params = Sequence[Any]
T = TypeVar("T")

log = logging.getLogger("meetd.store")


class Reader(Protocol):
    """What a read function may ask: one row (or None), as a tuple, or all rows.

    The rows of ``rows`` act as tuples for indexing, slicing (to tuples), unpacking, hashing
    and comparing, and equal the tuples of their values; on PostgreSQL they are asyncpg's
    Records, which cannot be concatenated, pickled or encoded as JSON, nor are they
    ``isinstance(…, tuple)``: slice them or call ``tuple()`` first."""

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

    def __init__(self, raw: Any, dialect: str, cache: dict[str, Any] | None = None) -> None:
        self.raw = raw
        self.dialect = dialect
        self._translated: dict[str, str] = {}
        # What store modules keep between statements, shared by the connections of one
        # Backend (rooms: the database's room keys, and PostgreSQL's serials taken ahead).
        self.cache: dict[str, Any] = {} if cache is None else cache

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

    def copy_rows(self, table: str, columns: str, rows: Sequence[Params]) -> None:
        """PostgreSQL only: ``rows`` into ``table`` by ``COPY … FROM STDIN``. psycopg writes
        the rows in C; a multi-row INSERT of the same rooms cost four times the client's CPU,
        adapting each parameter in Python (docs/performance.md, the twelfth session)."""
        with (
            self.raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

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
    # Every connection's ``cache`` (Connection, and pg_readers' AsyncpgReader): what store
    # modules keep for the life of the process, whichever connection asks.
    cache: dict[str, Any]

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


# SQLite's words for a database it cannot use now, as against a statement it refuses.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open", "disk i/o error", "readonly")


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be used now (unreachable, gone silent,
    restarting, locked, read-only) rather than that a statement was wrong: worth a retry."""
    if isinstance(error, TimeoutError | ConnectionError):
        return True  # a read's limit (pg_readers), a refused or reset connection
    if isinstance(error, sqlite3.OperationalError):
        return any(words in str(error).lower() for words in _SQLITE_UNAVAILABLE)
    psycopg = sys.modules.get("psycopg")  # loaded by PostgreSQL servers only
    if psycopg is not None and isinstance(error, psycopg.OperationalError):
        return True  # connection lost or refused, server shutting down, statement cancelled
    if psycopg is not None and isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
        return True
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is not None:
        return isinstance(
            error,
            asyncpg.exceptions.InterfaceError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.TooManyConnectionsError
            | asyncpg.exceptions.ReadOnlySQLTransactionError,
        )
    return False


class SQLiteBackend(Backend):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        # The folder is not created here: the CLI creates the data dir and refuses a missing
        # folder elsewhere (meetd/data_dir.py), so a mistyped URL cannot hide the state.
        self.path = path
        self.cache = {}

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
        return Connection(raw, self.dialect, self.cache)

    def connect_writer(self) -> Connection:
        conn = self.connect()
        # The writer runs on the event loop: checkpoints (which fsync) must not run there.
        # A Checkpointer thread does them instead.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def begin_write(self, conn: Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def is_retryable(self, error: BaseException) -> bool:
        """SQLITE_BUSY: another connection holds the lock, and waiting may clear it. (Not
        SQLITE_LOCKED, "database table is locked": a conflict within one connection.)"""
        code = getattr(error, "sqlite_errorcode", None)
        return (
            isinstance(error, sqlite3.OperationalError)
            and code is not None
            and (code & 0xFF == sqlite3.SQLITE_BUSY)
        )


# PostgreSQL compiles a query to machine code when its estimated cost passes jit_above_cost
# (100 000 by default). Generic plans of list pages on a table of a million rooms are
# estimated past it, though they read a few index pages: each page then took 20 to 40 ms
# of compiling, and lists fell to 47 req/s. meetd's statements are all short, so never.
JIT = "off"


# libpq's own limits for the writer's connection (psycopg has no timeout of its own): give up
# connecting after 5 s, and find a dead peer by TCP keepalives and unacknowledged sends within
# about 30 s, instead of blocking the writer thread for as long as the network is gone (the
# kernel's defaults: two hours of keepalive silence, 15 minutes of retransmissions).
WRITER_CONNECTION_LIMITS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # milliseconds
}


class PostgresBackend(Backend):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.cache = {}

    def connect_writer(self) -> Connection:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self.url)  # what the URL sets itself wins
        limits = {k: v for k, v in WRITER_CONNECTION_LIMITS.items() if k not in given}
        raw = psycopg.connect(self.url, autocommit=False, **limits)
        raw.execute(f"SET jit = {JIT}")
        raw.commit()  # a SET made in a transaction lasts only if it commits
        return Connection(raw, self.dialect, self.cache)

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


class CommitGate(Protocol):
    """Holds the writer's commits while a checkpoint pass runs (runners.LoopWriter)."""

    def hold_commits(self, wait: float, longest: float) -> bool: ...

    def release_commits(self) -> None: ...


class Checkpointer(threading.Thread):
    """Copies the SQLite WAL back into the database file off the event loop, a pass every
    :attr:`PACE_SECONDS` while writes come.

    PASSIVE checkpoints never block the writer or readers; the WAL is truncated on close.

    A pass copies the frames committed before it began, and SQLite starts the WAL file over
    only at a write transaction that begins with *every* frame copied: no commit may come
    while a pass runs. Under writes that never pause (a commit every millisecond or two)
    that never happened: the WAL grew by 60 to 100 MB a second, and each commit's frames
    went to the end of a growing file, which costs the loop twice what overwriting does.
    Passes 10 ms apart let it start over at 3 000 creates a second, not at 6 000, and cost
    those creates 8 %. So once the WAL holds :attr:`START_OVER_FRAMES`, the thread catches
    up with a few passes back to back, closes in on the writer (:meth:`close_in`), then asks
    it (a :class:`CommitGate`) to hold its commits for one last pass, which has only a few
    milliseconds' frames to copy; the next write starts the WAL over (docs/performance.md).
    """

    PACE_SECONDS = 0.5
    START_OVER_FRAMES = 4096  # 16 MiB of 4 KiB pages
    CATCH_UP_PASSES = 2
    CLOSING_IN_CYCLES = 10  # at most, each a pass and a sync of the database file
    SHORT_CYCLE_SECONDS = 0.005  # a cycle this short leaves the held pass little to do
    HOLD_WAIT_SECONDS = 0.05  # for the loop to agree to hold its commits
    LONGEST_HOLD_SECONDS = 0.01  # the loop lets its commits go after this, pass or not

    def __init__(self, backend: SQLiteBackend, commits: CommitGate | None = None) -> None:
        super().__init__(name="meetd-checkpoint", daemon=True)
        self.conn = backend.connect()
        self.database_file = os.open(backend.path, os.O_RDONLY)
        self.commits = commits
        self.stopping = threading.Event()
        self.clock = time.monotonic

    def run(self) -> None:
        last: WalState | None = None
        while not self.stopping.wait(self.PACE_SECONDS):
            state = self.checkpoint()
            if self.should_start_over(state, last):
                state = self.start_over()
            last = state

    def should_start_over(self, state: WalState | None, last: WalState | None) -> bool:
        """Whether the WAL, written since the last pass, is long enough to start over (and a
        writer can hold its commits for it)."""
        return (
            self.commits is not None
            and state is not None
            and state.written_since(last)
            and state.frames >= self.START_OVER_FRAMES
        )

    def checkpoint(self) -> WalState | None:
        """One PASSIVE pass; None when it failed (logged)."""
        try:
            row = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            log.exception("WAL checkpoint failed")
            return None
        return WalState(frames=row[1], copied=row[2])  # row[0]: whether a lock stopped it

    def start_over(self) -> WalState | None:
        """Copy every frame with no commit in between, so that the next write starts the WAL
        over: a few passes first, each copying what came during the last, then one more with
        the writer's commits held. What the last pass found, or None when the writer could
        not hold its commits or a step failed."""
        assert self.commits is not None
        if not (self.catch_up() and self.close_in()):
            return None
        if not self.commits.hold_commits(self.HOLD_WAIT_SECONDS, self.LONGEST_HOLD_SECONDS):
            return None
        try:
            return self.checkpoint()
        finally:
            self.commits.release_commits()

    def catch_up(self) -> bool:
        return all(self.checkpoint() is not None for _ in range(self.CATCH_UP_PASSES))

    def close_in(self) -> bool:
        """Passes, each followed by a sync of the database file, until one such cycle is
        short: True then, and the held pass will have about as little to do. False when a
        step failed, or no cycle was short (the held pass would outlast the hold).

        A pass that commits overtake leaves the pages it copied unsynced, and the held pass,
        which copies everything, syncs them all. With a database of a million rooms their
        random pages cost 20-25 µs each to sync, and a held pass after one catching-up sync
        took 21-46 ms, too long for the hold. Each cycle copies and syncs only what came
        during the last, so cycles shorten until one takes a few milliseconds; held passes
        then took 3-7 ms (docs/performance.md)."""
        for _ in range(self.CLOSING_IN_CYCLES):
            began = self.clock()
            if self.checkpoint() is None or not self.sync_database_file():
                return False
            if self.clock() - began < self.SHORT_CYCLE_SECONDS:
                return True
        return False

    def sync_database_file(self) -> bool:
        try:
            os.fdatasync(self.database_file)
        except OSError:
            log.exception("syncing the database file failed")
            return False
        return True

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        with contextlib.suppress(sqlite3.Error):
            # Truncating waits for every other connection to leave the WAL; another process
            # may hold it for long. Give up soon: the next start copies what is left.
            self.conn.execute("PRAGMA busy_timeout=100")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.raw.close()
        os.close(self.database_file)
