"""SQLite's checkpoint thread (meetd.store.backends.Checkpointer): passes follow each other
closely while the WAL keeps changing, so that it can start over under writes that never pause,
and slow down again when nothing is written."""

from __future__ import annotations

import sqlite3
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from meetd.store.backends import Checkpointer, SQLiteBackend, WalState
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


def test_passes_follow_closely_while_the_wal_changes(tmp_path: Path) -> None:
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
    idle, busy = Checkpointer.IDLE_SECONDS, Checkpointer.BUSY_SECONDS
    assert busy < idle
    assert script.waits == [idle, idle, busy, busy, busy, idle, idle, busy]


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
