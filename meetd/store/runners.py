"""Who runs write functions: the batch-committing writers, and how their results reach the
requests waiting on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from meetd.store.backends import Backend, Connection, run_now

log = logging.getLogger("meetd.store")


# Failures that concern the whole transaction, not one request: the batch is run again.
_RETRIES = 5


# A write that concurrent requests may share: ``group(conn, items)`` does for all of them at
# once what ``group(conn, [item])`` does for one, and returns their results in order.
Group = Callable[[Connection, list[Any]], list[Any]]


class Job:
    __slots__ = ("fn", "future", "group", "item", "locked_since", "loop")

    def __init__(
        self,
        fn: Callable[[Connection], Any],
        future: Any,
        loop: asyncio.AbstractEventLoop | None,
        group: Group | None = None,
        item: Any = None,
    ) -> None:
        self.fn = fn
        self.future = future
        self.loop = loop
        self.group = group  # when set, fn is group(conn, [item])'s one result
        self.item = item
        self.locked_since: float | None = None  # when it first found the database locked


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    """In a batch without savepoints, the write at ``index`` raised ``error``; the
    transaction was rolled back."""

    index: int
    error: Exception


@dataclasses.dataclass(frozen=True, slots=True)
class Locked:
    """Another connection held the database's write lock: ``jobs`` did not run (their
    transaction was rolled back) and wait to be tried again; ``error`` is SQLite's."""

    jobs: list[Job]
    error: BaseException


@dataclasses.dataclass(frozen=True, slots=True)
class _Ungroup:
    """A group's shared write raised; the transaction was rolled back. Its jobs run one at a
    time from now on, so that a failure reaches only its own request."""

    indexes: list[int]


class Batcher:
    """Commits a batch of writes in one transaction, so that a failing write fails alone.

    With ``savepoints`` (SQLite, where they cost microseconds) each write runs in its own
    savepoint and a failure rolls back just that one. Without (PostgreSQL, where each
    savepoint costs two round trips, as much as a room's insert), a failure rolls back the
    transaction, and the batch runs again without the failed write — rare, since requests are
    validated before they reach the writer. On both, the jobs of one :data:`Group` (room
    creates) run first and together, in one call: a few statements for all of them instead
    of a few each. When that call fails, the transaction is rolled back and the group's jobs
    run one at a time from then on.

    Without ``lock_waits`` (the loop's writer, whose connection does not wait for SQLite's
    write lock) a batch that finds the database locked is handed back to the caller, which
    tries it again later (:class:`LoopWriter`), instead of being run again at once.
    """

    def __init__(
        self,
        backend: Backend,
        conn: Connection,
        *,
        on_loop: bool = False,
        savepoints: bool,
        lock_waits: bool = True,
    ) -> None:
        self.backend = backend
        self.conn = conn
        self.on_loop = on_loop  # commits run on the waiters' own event loop
        self.savepoints = savepoints
        self.lock_waits = lock_waits
        self.batches = 0
        self.writes = 0

    def commit(self, batch: list[Job]) -> Locked | None:
        """Run and commit the batch, and settle each job with its outcome; or, without
        ``lock_waits``, hand back the jobs that found the database locked."""
        settled: list[tuple[Job, bool, Any]] = []
        pending = batch
        attempts = 0
        while pending:
            result = self._try(pending)
            if isinstance(result, _Ungroup):
                for index in result.indexes:
                    pending[index].group = None
                continue
            if isinstance(result, _Failed):
                settled.append((pending[result.index], False, result.error))
                pending = pending[: result.index] + pending[result.index + 1 :]
                continue
            if isinstance(result, BaseException):
                if not self.lock_waits and self.backend.is_retryable(result):
                    self._settle_outcomes(settled)
                    return Locked(pending, result)
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
        self._settle_outcomes(settled)
        return None

    def fail(self, locked: Locked) -> None:
        """Settle jobs handed back as locked with the lock's error: their wait is over."""
        self._settle_outcomes([(job, False, locked.error) for job in locked.jobs])

    def _settle_outcomes(self, settled: list[tuple[Job, bool, Any]]) -> None:
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

    def _try(self, batch: list[Job]) -> list[tuple[bool, Any]] | _Failed | _Ungroup | BaseException:
        conn, backend = self.conn, self.backend
        outcomes: list[tuple[bool, Any]] = []
        try:
            backend.begin_write(conn)
            shared: dict[int, Any] = {}  # results of grouped jobs, by index in the batch
            for indexes in _groups(batch):
                group = batch[indexes[0]].group
                assert group is not None
                try:
                    values = group(conn, [batch[i].item for i in indexes])
                except Exception as error:
                    if backend.is_retryable(error) or self._lost():
                        raise
                    backend.rollback(conn)
                    return _Ungroup(indexes)
                shared.update(zip(indexes, values, strict=True))
            for index, item in enumerate(batch):
                if index in shared:
                    outcomes.append((True, shared[index]))
                    continue
                if len(batch) == 1:
                    outcomes.append((True, run_now(item.fn(conn))))
                    continue
                if not self.savepoints:
                    try:
                        outcomes.append((True, run_now(item.fn(conn))))
                    except Exception as error:
                        if backend.is_retryable(error) or self._lost():
                            raise
                        backend.rollback(conn)
                        return _Failed(index, error)
                    continue
                try:
                    with conn.savepoint():
                        outcomes.append((True, run_now(item.fn(conn))))
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


def _groups(batch: list[Job]) -> list[list[int]]:
    """The indexes of the batch's jobs by group, for groups of two jobs or more."""
    by_group: dict[Group, list[int]] = {}
    for index, job in enumerate(batch):
        if job.group is not None:
            by_group.setdefault(job.group, []).append(index)
    return [indexes for indexes in by_group.values() if len(indexes) > 1]


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class ThreadWriter(threading.Thread):
    """The writer for PostgreSQL: a thread, so the event loop never waits on the network."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(name="meetd-writer", daemon=True)
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.batcher = Batcher(backend, backend.connect_writer(), savepoints=False)

    def submit(self, item: Job) -> None:
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


def _settle_batch(outcomes: list[tuple[Job, bool, Any]]) -> None:
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


class LoopWriter:
    """The writer for SQLite: runs on the event loop itself, after the requests that arrived
    in the same loop iteration have queued their writes. A WAL commit without fsync takes
    tens of microseconds, less than handing the batch to a thread and back (and no GIL
    hand-offs), so the loop does it between requests.

    When another process holds SQLite's write lock (a CLI command, an operator's sqlite3
    shell, another ``serve --workers`` process), the batch waits on a timer, tried again
    after pauses that double from :attr:`FIRST_LOCK_PAUSE_SECONDS` to
    :attr:`LONGEST_LOCK_PAUSE_SECONDS`, while the loop goes on serving; a write that has
    waited :attr:`LOCK_WAIT_SECONDS` fails with SQLite's "database is locked" (a 503), and
    one whose caller gave up (a cancelled request) is dropped. SQLite's own busy wait would
    sleep on the loop, and every request would wait with it.
    """

    LOCK_WAIT_SECONDS = 10.0
    FIRST_LOCK_PAUSE_SECONDS = 0.001
    LONGEST_LOCK_PAUSE_SECONDS = 0.05

    def __init__(self, backend: Backend, before_commit: Callable[[], None]) -> None:
        conn = backend.connect_writer()
        conn.execute("PRAGMA busy_timeout=0")  # a locked database answers at once
        self.batcher = Batcher(backend, conn, on_loop=True, savepoints=True, lock_waits=False)
        # Called before each batch: the reads' shared transaction ends first, or SQLite could
        # never start the WAL file over, and it would grow while reads keep coming.
        self.before_commit = before_commit
        self.pending: list[Job] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()  # blocking callers without a loop (CLI, set-up code)
        # While the checkpoint thread holds commits (hold_commits): the timer that ends the
        # hold at the latest.
        self._hold_ends: asyncio.TimerHandle | None = None
        # While another connection holds the write lock: the timer of the next try, and the
        # pause before the try after it.
        self._lock_retry: asyncio.TimerHandle | None = None
        self._lock_pause = self.FIRST_LOCK_PAUSE_SECONDS

    def submit(self, item: Job) -> None:
        if item.loop is None:
            if self.loop is not None and self.loop.is_running() and not _on_loop(self.loop):
                # Another thread (a test, a tool) writes while the server runs: go through
                # the loop, which owns the connection.
                self.loop.call_soon_threadsafe(self._queue, item)
            else:
                with self.lock:
                    self._commit_blocking([item], self.LOCK_WAIT_SECONDS)
            return
        if item.loop is not self.loop:
            self._forget_closed_loop()
            self.loop = item.loop
        self._queue(item)

    def _forget_closed_loop(self) -> None:
        """A new loop writes (tests, tools that run one loop after another): the timers and
        writes of a closed one would never run, and would keep the new loop's writes waiting."""
        if self.loop is not None and self.loop.is_closed():
            self._hold_ends = self._lock_retry = None
            self.pending = [job for job in self.pending if job.loop is not self.loop]

    def _queue(self, item: Job) -> None:
        self.pending.append(item)
        if len(self.pending) == 1:
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._hold_ends is not None or self._lock_retry is not None:
            return  # _release, or the lock's timer, flushes what waits
        batch = self._take_pending()
        if not batch:
            return
        self.before_commit()
        locked = self.batcher.commit(batch)
        if locked is None:
            self._lock_pause = self.FIRST_LOCK_PAUSE_SECONDS
        else:
            self._wait_for_lock(locked)

    def _take_pending(self) -> list[Job]:
        """The queued writes, but for those whose caller gave up (a cancelled request):
        nothing waits for them, and they may have waited for a lock long after the request
        ended."""
        batch = [job for job in self.pending if not job.future.done()]
        self.pending = []
        return batch

    def _wait_for_lock(self, locked: Locked) -> None:
        """Queue the locked batch's writes again, ahead of those that came since, and try
        again after a pause; fail those that have waited long enough."""
        assert self.loop is not None
        now = self.loop.time()
        waiting: list[Job] = []
        expired: list[Job] = []
        for job in locked.jobs:
            if job.locked_since is None:
                job.locked_since = now
            (expired if now - job.locked_since >= self.LOCK_WAIT_SECONDS else waiting).append(job)
        if expired:
            _warn_locked(len(expired), self.LOCK_WAIT_SECONDS)
            self.batcher.fail(Locked(expired, locked.error))
        if not waiting:  # (nothing else is pending: the batch took it all)
            self._lock_pause = self.FIRST_LOCK_PAUSE_SECONDS
            return
        self.pending = waiting + self.pending
        oldest = waiting[0].locked_since  # the batch's first write has waited longest
        assert oldest is not None
        pause = min(self._lock_pause, self.LOCK_WAIT_SECONDS - (now - oldest))
        self._lock_pause = min(self._lock_pause * 2, self.LONGEST_LOCK_PAUSE_SECONDS)
        self._lock_retry = self.loop.call_later(pause, self._try_again_after_lock)

    def _try_again_after_lock(self) -> None:
        self._lock_retry = None
        self._flush()

    def _commit_blocking(self, batch: list[Job], wait: float) -> None:
        """Commit on the calling thread, sleeping while another connection holds the lock,
        ``wait`` seconds at most."""
        deadline = time.monotonic() + wait
        pause = self.FIRST_LOCK_PAUSE_SECONDS
        while (locked := self.batcher.commit(batch)) is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                _warn_locked(len(locked.jobs), wait)
                self.batcher.fail(locked)
                return
            time.sleep(min(pause, left))
            pause = min(pause * 2, self.LONGEST_LOCK_PAUSE_SECONDS)
            batch = locked.jobs

    # -- holding commits for a checkpoint (called from the checkpoint thread) --------------
    # SQLite starts the WAL file over only at a write that begins with every frame copied
    # back, so only a checkpoint pass that no commit overtakes lets it. Under writes that never
    # pause, the checkpoint thread asks the loop to hold its commits for one short pass.

    def hold_commits(self, wait: float, longest: float) -> bool:
        """Ask the loop to start no commit until :meth:`release_commits`, or for ``longest``
        seconds at most; wait up to ``wait`` seconds for it to agree. When this returns True,
        no commit runs (commits run on the loop, between callbacks). False: the loop did not
        answer in time, or runs no writes; nothing is held then."""
        loop = self.loop
        if loop is None or not loop.is_running():
            return False
        agreed = threading.Event()
        try:
            loop.call_soon_threadsafe(self._hold, agreed, longest)
        except RuntimeError:  # the loop closed meanwhile
            return False
        if agreed.wait(wait):
            return True
        self.release_commits()  # too late: the hold, when it comes, is let go at once
        return False

    def release_commits(self) -> None:
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits
                loop.call_soon_threadsafe(self._release)

    def _hold(self, agreed: threading.Event, longest: float) -> None:
        assert self.loop is not None
        self._hold_ends = self.loop.call_later(longest, self._release)
        agreed.set()

    def _release(self) -> None:
        if self._hold_ends is not None:  # (the timer and the thread may both release)
            self._hold_ends.cancel()
            self._hold_ends = None
            self._flush()

    def stop(self) -> None:
        """Commit what is left and close. Called from another thread while the loop still
        runs (the app's lifespan closes the database in a worker thread), the last commit
        runs on the loop, which owns the pending writes and their futures."""
        loop = self.loop
        if loop is not None and loop.is_running() and not _on_loop(loop):
            finished = threading.Event()

            def finish() -> None:
                try:
                    self._finish()
                finally:
                    finished.set()

            try:
                loop.call_soon_threadsafe(finish)
            except RuntimeError:  # the loop closed meanwhile: nothing runs there any more
                self._finish()
            else:
                finished.wait(self.LOCK_WAIT_SECONDS)
        else:
            self._finish()
        self.batcher.conn.raw.close()

    def _finish(self) -> None:
        for timer in (self._hold_ends, self._lock_retry):
            if timer is not None:
                timer.cancel()
        self._hold_ends = self._lock_retry = None
        # What is left when the server stops was written for requests it has already let go
        # (cancelled): commit what someone still waits for, without waiting for a lock.
        batch = self._take_pending()
        if batch:
            self.before_commit()
            with self.lock:
                self._commit_blocking(batch, wait=0)


def _warn_locked(writes: int, waited: float) -> None:
    log.warning(
        "writes failed: another connection held the database's write lock",
        extra={"writes": writes, "waited_seconds": waited},
    )


def _resolve(item: Job, ok: bool, value: Any) -> None:
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
