"""SQLite's checkpoint thread (meetd.store.backends.Checkpointer, CheckpointPacing): passes
follow each other closely while the WAL keeps changing, so that it can start over under writes
that never pause; they pause longer and longer while it cannot, and slow down again when
nothing is written."""

from __future__ import annotations

import sqlite3
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from meetd.store.backends import Checkpointer, CheckpointPacing, SQLiteBackend, WalState
from meetd.store.database import open_database


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


@pytest.mark.parametrize(
    ("earlier", "now", "started_over"),
    [
        (None, WalState(frames=10, copied=10), False),  # nothing to compare with
        (WalState(40, 40), WalState(frames=55, copied=55), False),  # grew
        (WalState(40, 40), WalState(frames=40, copied=40), False),  # unchanged
        (WalState(40, 40), WalState(frames=12, copied=12), True),  # fewer frames: from the top
        (WalState(40, 40), WalState(frames=0, copied=0), True),  # started over, nothing new
    ],
)
def test_a_pass_tells_whether_the_wal_started_over_since_the_last(
    earlier: WalState | None, now: WalState, started_over: bool
) -> None:
    assert now.started_over_since(earlier) is started_over


IDLE, QUICK = CheckpointPacing.IDLE_SECONDS, CheckpointPacing.QUICK_SECONDS
TRIES, LONGEST = CheckpointPacing.QUICK_TRIES, CheckpointPacing.LONGEST_PAUSE


def waits_for(frames: list[int]) -> list[float]:
    """The waits that passes finding these frame counts lead to, one after another."""
    pacing = CheckpointPacing()
    last: WalState | None = None
    waits = []
    for count in frames:
        state = WalState(frames=count, copied=count)
        waits.append(pacing.next_wait(state, last))
        last = state
    return waits


def test_quick_passes_while_the_wal_keeps_changing_and_it_starts_over() -> None:
    # writes that leave gaps: the WAL starts over every few passes, as at 3 000 creates a second
    frames = [30, 70, 110, 20, 60, 100, 140, 10, 50]
    assert waits_for(frames) == [QUICK] * len(frames)


def test_longer_and_longer_pauses_while_the_wal_cannot_start_over() -> None:
    # commits closer together than a pass lasts: the WAL only grows
    growing = [100 * (n + 1) for n in range(4 * (TRIES + 1))]
    rounds = [QUICK] * TRIES
    assert IDLE < 2 * IDLE < LONGEST == 4 * IDLE  # the pauses below double up to the longest
    assert waits_for(growing) == [
        *rounds,
        IDLE,
        *rounds,
        2 * IDLE,
        *rounds,
        LONGEST,
        *rounds,
        LONGEST,
    ]


def test_the_wal_starting_over_brings_back_the_first_pace() -> None:
    growing = [100 * (n + 1) for n in range(2 * (TRIES + 1))]
    after = [5, *[100 * (n + 1) for n in range(TRIES + 1)]]
    waits = waits_for(growing + after)
    assert waits[TRIES] == IDLE and waits[2 * TRIES + 1] == 2 * IDLE
    # the WAL started over: quick passes again, a full round of tries, then the first pause
    assert waits[2 * TRIES + 2 :] == [QUICK, *[QUICK] * TRIES, IDLE]


def test_a_pass_that_finds_nothing_new_brings_back_the_first_pace() -> None:
    growing = [100 * (n + 1) for n in range(2 * (TRIES + 1))]
    waits = waits_for([*growing, growing[-1], growing[-1] + 10])
    assert waits[2 * TRIES + 1] == 2 * IDLE
    assert waits[-2:] == [IDLE, QUICK]  # nothing new: idle; then writes: quick tries again


class ScriptedPasses:
    """Stands in for the checkpoint connection and the stop event: each pass answers the next
    scripted row, and every wait is recorded."""

    def __init__(self, rows: list[tuple[int, int, int] | Exception]) -> None:
        self.rows = rows
        self.waits: list[float] = []

    def execute(self, sql: str) -> Any:
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        row = self.rows.pop(0)
        if isinstance(row, Exception):
            raise row
        self.row = row
        return self

    def fetchone(self) -> tuple[int, int, int]:
        return self.row

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return not self.rows  # True stops the thread


def test_the_thread_waits_as_its_pacing_says(tmp_path: Path) -> None:
    checkpointer = Checkpointer(SQLiteBackend(tmp_path / "meetd.sqlite3"))
    checkpointer.conn.raw.close()
    script = ScriptedPasses(
        [
            (0, 0, 0),  # idle
            (0, 30, 30),  # writes came
            (0, 70, 70),  # and keep coming
            (0, 8, 8),  # the WAL started over and was written again
            (0, 8, 8),  # nothing since
            sqlite3.OperationalError("disk I/O error"),
            (0, 20, 20),
        ]
    )
    checkpointer.conn = script  # type: ignore[assignment]
    checkpointer.stopping = script  # type: ignore[assignment]
    checkpointer.run()
    assert QUICK < IDLE
    assert script.waits == [IDLE, IDLE, QUICK, QUICK, QUICK, IDLE, IDLE, QUICK]


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts
    over from its beginning."""
    with wal.open("rb") as file:
        header = file.read(16)
    return int(struct.unpack(">I", header[12:16])[0])


def test_the_wal_starts_over_under_writes_that_keep_coming(tmp_path: Path) -> None:
    path = tmp_path / "meetd.sqlite3"
    database = open_database(f"sqlite:///{path}")
    try:
        database.write_blocking(lambda c: c.execute("CREATE TABLE notes (body BLOB)"))
        wal = path.with_name(path.name + "-wal")
        first = wal_restarts(wal)
        deadline = time.monotonic() + 20
        while wal_restarts(wal) == first and time.monotonic() < deadline:
            # a commit every few milliseconds, as under load, for as long as it takes
            database.write_blocking(
                lambda c: c.execute("INSERT INTO notes (body) VALUES (randomblob(3000))")
            )
            time.sleep(0.003)
        assert wal_restarts(wal) > first
    finally:
        database.close()


def test_temporary_storage_stays_in_memory(tmp_path: Path) -> None:
    # A multi-row insert's statement journal spilled to a temporary file past 64 KiB, every
    # few batches under load (meetd.store.backends.SQLiteBackend.connect).
    backend = SQLiteBackend(tmp_path / "meetd.sqlite3")
    for conn in (backend.connect(), backend.connect_writer()):
        try:
            assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        finally:
            conn.raw.close()
