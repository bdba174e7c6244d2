"""SQLite's checkpoint thread (meetd.store.backends.Checkpointer): a pass every half second
while writes come; once the WAL is long, it catches up, closes in on the writer with passes
each followed by a sync of the database file until one such cycle is short, and makes one
pass with the writer's commits held (runners.LoopWriter.hold_commits), so that the WAL starts
over even under writes that never pause."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from meetd.store import backends
from meetd.store.backends import Checkpointer, SQLiteBackend, WalState
from meetd.store.database import Database, open_database
from meetd.store.runners import LoopWriter


@pytest.mark.parametrize(
    ("earlier", "now", "written"),
    [
        (None, WalState(frames=0, copied=0), False),  # an empty WAL
        (None, WalState(frames=40, copied=40), True),  # the first pass that finds frames
        (WalState(40, 40), WalState(frames=40, copied=40), False),  # nothing since
        (WalState(40, 40), WalState(frames=55, copied=55), True),  # more frames
        (WalState(40, 40), WalState(frames=12, copied=12), True),  # started over, then written
        (WalState(40, 40), WalState(frames=0, copied=0), False),  # started over, nothing new
        (WalState(40, 30), WalState(frames=40, copied=40), True),  # copied what a reader held
    ],
)
def test_a_pass_tells_whether_the_wal_was_written_since_the_last(
    earlier: WalState | None, now: WalState, written: bool
) -> None:
    assert now.written_since(earlier) is written


class ScriptedPasses:
    """Stands in for the checkpoint connection, the stop event, the writer's commit gate,
    fdatasync and the clock: each pass answers the next scripted row, and each sync takes the
    next scripted number of seconds (none by default); passes, syncs, holds and releases are
    recorded."""

    def __init__(
        self,
        rows: list[tuple[int, int, int] | Exception],
        agree: bool = True,
        sync: bool = True,
        sync_seconds: list[float] | None = None,
    ) -> None:
        self.rows = rows
        self.agree = agree
        self.sync = sync
        self.sync_seconds = sync_seconds or []
        self.now = 0.0
        self.log: list[str] = []

    def clock(self) -> float:
        return self.now

    def execute(self, sql: str) -> Any:
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        row = self.rows.pop(0)
        self.log.append("pass")
        if isinstance(row, Exception):
            raise row
        self.row = row
        return self

    def fetchone(self) -> tuple[int, int, int]:
        return self.row

    def wait(self, seconds: float) -> bool:
        assert seconds == Checkpointer.PACE_SECONDS
        return not self.rows  # True stops the thread

    def fdatasync(self, fd: int) -> None:
        self.log.append("sync")
        if self.sync_seconds:
            self.now += self.sync_seconds.pop(0)
        if not self.sync:
            raise OSError(5, "Input/output error")

    def hold_commits(self, wait: float, longest: float) -> bool:
        assert 0 < longest <= 0.01  # the loop never waits on a checkpoint for long
        self.log.append("hold" if self.agree else "hold refused")
        return self.agree

    def release_commits(self) -> None:
        self.log.append("release")


def run_scripted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: ScriptedPasses, gate: bool = True
) -> None:
    checkpointer = Checkpointer(SQLiteBackend(tmp_path / "meetd.sqlite3"), script if gate else None)
    checkpointer.conn.raw.close()
    checkpointer.conn = script  # type: ignore[assignment]
    checkpointer.stopping = script  # type: ignore[assignment]
    checkpointer.clock = script.clock
    monkeypatch.setattr(backends.os, "fdatasync", script.fdatasync)
    checkpointer.run()


LONG = Checkpointer.START_OVER_FRAMES
PASSES = Checkpointer.CATCH_UP_PASSES
CATCHING_UP = [*["pass"] * PASSES, "pass", "sync"]  # ending with one short cycle
BEFORE_THE_HOLD = PASSES + 1  # passes


def growing(start: int, count: int) -> list[tuple[int, int, int]]:
    """Rows of passes that each find more frames than the last, all copied."""
    return [(0, start + 50 * n, start + 50 * n) for n in range(count)]


def test_a_long_wal_is_caught_up_with_and_copied_once_more_with_commits_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_pass = (0, LONG + 1000, LONG + 1000)
    script = ScriptedPasses(
        [
            (0, 0, 0),  # nothing written
            (0, 40, 40),  # a short WAL: a pass every half second is enough
            (0, LONG, LONG),  # long: catch up, then hold the writer's commits for one more
            *growing(LONG + 100, BEFORE_THE_HOLD),
            held_pass,
            held_pass,  # nothing written since
            (0, 12, 12),  # started over
        ]
    )
    run_scripted(tmp_path, monkeypatch, script)
    assert script.log == [
        *["pass"] * 3,
        *CATCHING_UP,
        "hold",
        "pass",
        "release",
        *["pass"] * 2,
    ]


def test_commits_are_released_when_the_held_pass_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(0, LONG, LONG), *growing(LONG + 100, BEFORE_THE_HOLD), sqlite3.OperationalError("I/O")]
    script = ScriptedPasses(rows)  # type: ignore[arg-type]
    run_scripted(tmp_path, monkeypatch, script)
    assert script.log == ["pass", *CATCHING_UP, "hold", "pass", "release"]


def test_nothing_is_held_when_the_writer_does_not_agree_or_a_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = ScriptedPasses([(0, LONG, LONG), *growing(LONG + 100, BEFORE_THE_HOLD)], agree=False)
    run_scripted(tmp_path, monkeypatch, refused)
    assert refused.log == ["pass", *CATCHING_UP, "hold refused"]

    unsynced = ScriptedPasses([(0, LONG, LONG), *growing(LONG + 100, PASSES + 1)], sync=False)
    run_scripted(tmp_path, monkeypatch, unsynced)
    assert unsynced.log == ["pass", *["pass"] * PASSES, "pass", "sync"]

    failing = ScriptedPasses([(0, LONG, LONG), sqlite3.OperationalError("I/O"), (0, 5, 5)])
    run_scripted(tmp_path, monkeypatch, failing)
    assert failing.log == ["pass", "pass", "pass"]  # the failed catch-up gives up this round


def test_cycles_close_in_until_one_is_short_and_only_then_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each cycle's sync covers the pages copied since the last: under writes that never
    pause, cycles shorten, and the commits are held once one is short."""
    short = Checkpointer.SHORT_CYCLE_SECONDS
    shrinking = [0.08, 0.03, 0.012, short / 2]
    cycles = ["pass", "sync"] * len(shrinking)
    script = ScriptedPasses(
        [(0, LONG, LONG), *growing(LONG + 100, PASSES + len(shrinking) + 1)],
        sync_seconds=shrinking,
    )
    run_scripted(tmp_path, monkeypatch, script)
    assert script.log == ["pass", *["pass"] * PASSES, *cycles, "hold", "pass", "release"]


def test_without_a_short_cycle_nothing_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk too slow for a short cycle would make the held pass outlast the hold: the
    commits would wait for nothing, so the thread does not ask."""
    cycles = Checkpointer.CLOSING_IN_CYCLES
    script = ScriptedPasses(
        [(0, LONG, LONG), *growing(LONG + 100, PASSES + cycles)],
        sync_seconds=[2 * Checkpointer.SHORT_CYCLE_SECONDS] * cycles,
    )
    run_scripted(tmp_path, monkeypatch, script)
    assert script.log == ["pass", *["pass"] * PASSES, *["pass", "sync"] * cycles]


def test_without_a_commit_gate_passes_just_keep_their_pace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedPasses([(0, LONG, LONG), (0, 2 * LONG, 2 * LONG)])
    run_scripted(tmp_path, monkeypatch, script, gate=False)
    assert script.log == ["pass", "pass"]


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts
    over from its beginning."""
    with wal.open("rb") as file:
        header = file.read(16)
    return int(struct.unpack(">I", header[12:16])[0])


def test_the_wal_starts_over_under_writes_that_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits back to back from the event loop, as under a load of creates: no pass can end
    between two of them, and only the held pass lets the WAL start over. (Without it, this
    failed after 20 s.)"""
    monkeypatch.setattr(Checkpointer, "START_OVER_FRAMES", 64)  # a long WAL, sooner
    path = tmp_path / "meetd.sqlite3"
    wal = path.with_name(path.name + "-wal")
    database = open_database(f"sqlite:///{path}")

    def insert(conn: Any) -> None:
        conn.execute("INSERT INTO notes (body) VALUES (randomblob(3000))")

    async def write_until_it_starts_over(first: int) -> None:
        deadline = time.monotonic() + 20
        while wal_restarts(wal) == first and time.monotonic() < deadline:
            await asyncio.gather(*(database.write(insert) for _ in range(4)))

    try:
        database.write_blocking(lambda c: c.execute("CREATE TABLE notes (body BLOB)"))
        first = wal_restarts(wal)
        asyncio.run(write_until_it_starts_over(first))
        assert wal_restarts(wal) > first
    finally:
        database.close()


def loop_writer(database: Database) -> LoopWriter:
    assert isinstance(database._writer, LoopWriter)
    return database._writer


def test_held_commits_wait_for_the_release(notes: Database) -> None:
    database, writer = notes, loop_writer(notes)
    assert writer.hold_commits(0.05, 1.0) is False  # no loop runs the writes yet

    async def main() -> list[str]:
        # The loop's first write tells the writer which loop holds its commits.
        await database.write(lambda c: c.execute("INSERT INTO notes VALUES ('first')"))
        events: list[str] = []
        held = await asyncio.to_thread(writer.hold_commits, 1.0, 5.0)
        events.append(f"held {held}")
        write = asyncio.ensure_future(
            database.write(lambda c: c.execute("INSERT INTO notes VALUES ('x')"))
        )
        for _ in range(20):
            await asyncio.sleep(0.005)
        events.append(f"committed while held: {write.done()}")
        threading.Thread(target=writer.release_commits).start()
        await asyncio.wait_for(write, 5)
        events.append("committed after the release")
        # A hold nobody releases ends by itself after `longest` seconds.
        assert await asyncio.to_thread(writer.hold_commits, 1.0, 0.05)
        await asyncio.wait_for(database.write(lambda c: c.execute("DELETE FROM notes")), 5)
        events.append("committed after the longest hold")
        return events

    assert asyncio.run(main()) == [
        "held True",
        "committed while held: False",
        "committed after the release",
        "committed after the longest hold",
    ]


def test_a_hold_the_loop_agrees_to_too_late_is_let_go_at_once(notes: Database) -> None:
    database, writer = notes, loop_writer(notes)

    async def main() -> list[bool]:
        answers: list[bool] = []
        asking = threading.Thread(target=lambda: answers.append(writer.hold_commits(0.02, 5.0)))
        asking.start()
        time.sleep(0.2)  # the loop is busy past the wait: it cannot agree in time
        asking.join()
        # The hold still reaches the loop, and is let go right after: a write commits at once,
        # not when the 5 s hold would end.
        await asyncio.wait_for(
            database.write(lambda c: c.execute("INSERT INTO notes VALUES ('x')")), 1
        )
        return answers

    assert asyncio.run(main()) == [False]


def test_temporary_storage_stays_in_memory(tmp_path: Path) -> None:
    # A multi-row insert's statement journal spilled to a temporary file past 64 KiB, every
    # few batches under load (meetd.store.backends.SQLiteBackend.connect).
    backend = SQLiteBackend(tmp_path / "meetd.sqlite3")
    for conn in (backend.connect(), backend.connect_writer()):
        try:
            assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        finally:
            conn.raw.close()
