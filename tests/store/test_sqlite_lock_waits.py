"""SQLite's write lock taken by another process (a CLI command, an operator's sqlite3 shell,
another ``serve --workers`` process): the loop's writes wait for it without holding the
event loop, and give up after :attr:`LoopWriter.LOCK_WAIT_SECONDS`."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meetd.store.backends import Connection
from meetd.store.database import Database, open_database
from meetd.store.runners import LoopWriter


@pytest.fixture
def other_process(notes_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the notes database, as another process would hold one."""
    conn = sqlite3.connect(notes_path, isolation_level=None, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def note(body: str) -> object:
    return lambda c: c.execute("INSERT INTO notes VALUES (?)", (body,))


def notes_in(notes: Database) -> list[str]:
    return [row[0] for row in notes.read_blocking(lambda c: c.fetchall("SELECT body FROM notes"))]


async def abandon_a_write_behind_the_lock(
    database: Database, other_process: sqlite3.Connection, first: str
) -> None:
    """Commit ``first``, take the lock in the other process, and give up on a write that
    waits behind it (as a cancelled request does)."""
    await database.write(note(first))
    other_process.execute("BEGIN IMMEDIATE")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(database.write(note("abandoned")), 0.1)


async def longest_gap(until: asyncio.Future[object], tick: float = 0.005) -> float:
    """The longest the loop went without running this coroutine, until ``until`` is done."""
    longest, last = 0.0, time.monotonic()
    while not until.done():
        await asyncio.sleep(tick)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


def test_a_write_waits_for_the_lock_without_holding_the_loop(
    notes: Database, other_process: sqlite3.Connection
) -> None:
    async def main() -> tuple[float, bool]:
        await notes.write(note("before"))  # the writer now knows its loop
        other_process.execute("BEGIN IMMEDIATE")
        threading.Timer(0.5, other_process.execute, ("COMMIT",)).start()
        write = asyncio.ensure_future(notes.write(note("waited")))
        gap = await longest_gap(write)
        await write
        return gap, other_process.in_transaction

    gap, still_locked = asyncio.run(main())
    assert not still_locked
    assert notes_in(notes) == ["before", "waited"]
    # Before, the loop sat in SQLite's busy wait for the whole 0.5 s.
    assert gap < 0.25


def test_writes_queued_while_waiting_commit_in_order_once_the_lock_is_free(
    notes: Database, other_process: sqlite3.Connection
) -> None:
    async def main() -> None:
        await notes.write(note("0"))
        other_process.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(notes.write(note("1")))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(notes.write(note(str(n)))) for n in (2, 3)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(w.done() for w in later)
        other_process.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(first, *later), 5)

    asyncio.run(main())
    assert notes_in(notes) == ["0", "1", "2", "3"]


def test_a_lock_held_past_the_wait_fails_the_writes_and_writes_nothing(
    notes: Database, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LoopWriter, "LOCK_WAIT_SECONDS", 0.3)

    async def main() -> tuple[BaseException | None, float]:
        await notes.write(note("before"))
        other_process.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        try:
            await asyncio.wait_for(notes.write(note("never")), 5)
        except sqlite3.OperationalError as error:
            return error, time.monotonic() - began
        finally:
            other_process.execute("ROLLBACK")
        return None, time.monotonic() - began

    error, waited = asyncio.run(main())
    assert error is not None and "locked" in str(error)
    assert 0.3 <= waited < 2
    assert notes_in(notes) == ["before"]


def test_after_giving_up_the_next_write_waits_afresh(
    notes: Database, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LoopWriter, "LOCK_WAIT_SECONDS", 0.5)

    async def main() -> None:
        await notes.write(note("before"))
        other_process.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError):
            await notes.write(note("given up"))
        # Still locked: a new write gets its own wait, not the old one's deadline.
        threading.Timer(0.1, other_process.execute, ("COMMIT",)).start()
        await asyncio.wait_for(notes.write(note("after")), 5)

    asyncio.run(main())
    assert notes_in(notes) == ["before", "after"]


def test_a_blocking_write_waits_for_the_lock_too(
    notes: Database, other_process: sqlite3.Connection
) -> None:
    """Writes from outside a loop (the CLI, set-up code) wait on their own thread."""
    other_process.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, other_process.execute, ("COMMIT",)).start()
    began = time.monotonic()
    notes.write_blocking(note("blocking"))
    assert time.monotonic() - began >= 0.25
    assert notes_in(notes) == ["blocking"]


def test_a_blocking_write_gives_up_after_the_wait(
    notes: Database, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LoopWriter, "LOCK_WAIT_SECONDS", 0.2)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            notes.write_blocking(note("never"))
    finally:
        other_process.execute("ROLLBACK")
    assert notes_in(notes) == []


def test_a_write_that_came_late_in_a_wait_gets_a_whole_wait_of_its_own(
    notes: Database, other_process: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LoopWriter, "LOCK_WAIT_SECONDS", 1.0)

    async def main() -> list[str]:
        await notes.write(note("before"))
        other_process.execute("BEGIN IMMEDIATE")
        threading.Timer(1.3, other_process.execute, ("COMMIT",)).start()
        early = asyncio.ensure_future(notes.write(note("early")))  # its wait ends at 1.0 s
        await asyncio.sleep(0.7)
        late = asyncio.ensure_future(notes.write(note("late")))  # its wait ends at 1.7 s
        outcomes = await asyncio.gather(early, late, return_exceptions=True)
        return [type(outcome).__name__ for outcome in outcomes]

    assert asyncio.run(main()) == ["OperationalError", "Cursor"]
    assert notes_in(notes) == ["before", "late"]


def test_a_write_whose_caller_gave_up_is_not_committed_later(
    notes: Database, other_process: sqlite3.Connection
) -> None:
    async def main() -> None:
        await abandon_a_write_behind_the_lock(notes, other_process, "before")
        other_process.execute("COMMIT")
        await asyncio.wait_for(notes.write(note("after")), 5)

    asyncio.run(main())
    assert notes_in(notes) == ["before", "after"]


def test_a_conflict_within_the_connection_fails_its_own_write_at_once(notes: Database) -> None:
    """SQLITE_LOCKED ("database table is locked") is not another process's lock: waiting
    never clears it, so it is not waited for, and other writes go on."""

    def drop_while_reading(conn: Connection) -> None:
        reading = conn.execute("SELECT x FROM scratch")
        reading.fetchone()  # a row of two: the statement is still stepping
        conn.execute("DROP TABLE scratch")

    async def main() -> tuple[str, float]:
        await notes.write(
            lambda c: c.execute("CREATE TABLE scratch AS SELECT 1 AS x UNION SELECT 2")
        )
        await notes.write(note("kept"))
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError) as raised:
            await notes.write(drop_while_reading)
        took = time.monotonic() - began
        await asyncio.wait_for(notes.write(note("after")), 5)
        return str(raised.value), took

    message, took = asyncio.run(main())
    assert "table is locked" in message
    assert took < LoopWriter.LOCK_WAIT_SECONDS / 2
    assert notes_in(notes) == ["kept", "after"]


def test_a_new_loop_writes_after_one_closed_in_the_middle_of_a_wait(
    notes: Database, other_process: sqlite3.Connection
) -> None:
    # The first loop closes while the abandoned write's retry timer is pending.
    asyncio.run(abandon_a_write_behind_the_lock(notes, other_process, "first"))
    other_process.execute("COMMIT")

    async def second() -> None:
        await asyncio.wait_for(notes.write(note("second")), 5)

    asyncio.run(second())
    assert notes_in(notes) == ["first", "second"]


def test_closing_does_not_wait_for_another_process_lock(
    notes_path: Path, other_process: sqlite3.Connection
) -> None:
    """A server stopping while an operator holds the lock stops at once: the writes left are
    those of requests already let go, and the WAL is cut back at the next start instead."""
    database = open_database(f"sqlite:///{notes_path}")
    database.write_blocking(lambda c: c.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)"))

    try:
        asyncio.run(abandon_a_write_behind_the_lock(database, other_process, "written"))
        began = time.monotonic()
        database.close()
        assert time.monotonic() - began < 2
    finally:
        other_process.execute("ROLLBACK")


def test_closing_from_another_thread_commits_what_is_left_on_the_loop(notes_path: Path) -> None:
    """The app's lifespan closes the database in a worker thread while the loop runs: the
    writes still queued (here held back for a checkpoint) are committed on the loop, which
    owns their futures. asyncio's debug mode refuses a future settled from another thread."""
    database = open_database(f"sqlite:///{notes_path}")
    database.write_blocking(lambda c: c.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT)"))
    writer = database._writer
    assert isinstance(writer, LoopWriter)

    async def main() -> object:
        await database.write(note("first"))
        assert await asyncio.to_thread(writer.hold_commits, 1.0, 5.0)
        held = asyncio.ensure_future(database.write(note("held")))
        await asyncio.sleep(0.05)
        assert not held.done()
        await asyncio.to_thread(database.close)
        return await asyncio.wait_for(held, 5)

    outcome: list[object] = []

    def scenario() -> None:  # on a thread with a deadline: the old code hung here
        try:
            outcome.append(asyncio.run(main(), debug=True))
        except BaseException as error:
            outcome.append(error)

    running = threading.Thread(target=scenario, daemon=True)
    running.start()
    running.join(30)
    assert not running.is_alive(), "closing the database hung"
    assert len(outcome) == 1 and isinstance(outcome[0], sqlite3.Cursor), outcome
    with sqlite3.connect(notes_path) as check:
        assert [row[0] for row in check.execute("SELECT body FROM notes")] == ["first", "held"]
