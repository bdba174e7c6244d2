"""SQLite reads of one event-loop iteration share one read transaction
(meetd.store.backends.IterationSnapshots): they see what was committed before the iteration's
first read, the next iteration sees later commits, and a request reads its own writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from meetd.store.database import Database, Reader


async def bodies(conn: Reader) -> list[str]:
    return [row[0] for row in await conn.rows("SELECT body FROM notes ORDER BY rowid")]


def commit_elsewhere(path: Path, body: str) -> None:
    """A commit by another connection: another process, or the CLI."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("INSERT INTO notes (body) VALUES (?)", (body,))
    finally:
        other.close()


def test_reads_of_one_iteration_share_a_snapshot(notes: Database, notes_path: Path) -> None:
    async def main() -> tuple[list[str], list[str], list[str]]:
        first = await notes.read(bodies)  # no await suspends: all in one iteration
        commit_elsewhere(notes_path, "meanwhile")
        same_iteration = await notes.read(bodies)
        await asyncio.sleep(0)  # the next iteration
        return first, same_iteration, await notes.read(bodies)

    assert asyncio.run(main()) == ([], [], ["meanwhile"])


def test_a_request_reads_its_own_write(notes: Database) -> None:
    async def main() -> tuple[list[str], list[str]]:
        before = await notes.read(bodies)
        await notes.write(lambda c: c.execute("INSERT INTO notes (body) VALUES ('mine')"))
        return before, await notes.read(bodies)

    assert asyncio.run(main()) == ([], ["mine"])


def test_a_snapshot_left_by_a_stopped_loop_is_not_reused(notes: Database, notes_path: Path) -> None:
    async def read_then_stop() -> list[str]:
        found = await notes.read(bodies)
        # Stop before the iteration's end: the transaction's end never runs on this loop.
        asyncio.get_running_loop().stop()
        return found

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(read_then_stop())
        loop.run_forever()
        assert task.result() == []
    finally:
        loop.close()
    commit_elsewhere(notes_path, "later")
    assert asyncio.run(notes.read(bodies)) == ["later"]


def test_no_read_transaction_is_open_while_the_loop_writes(notes: Database) -> None:
    """SQLite starts the WAL file over only when no reader holds a snapshot; a read
    transaction left open across writes would let the WAL grow while reads keep coming."""
    assert notes._reader is not None  # the connection SQLite reads run on
    reader = notes._reader.raw
    seen: list[bool] = []

    async def main() -> None:
        write = asyncio.ensure_future(notes.write(lambda conn: seen.append(reader.in_transaction)))
        await asyncio.sleep(0)  # the write is queued: its batch runs in the next iteration
        await notes.read(bodies)  # a read after it in this iteration, then its end
        assert reader.in_transaction
        await write

    asyncio.run(main())
    assert seen == [False]
