"""The plans SQLite makes whatever its statistics say (meetd runs no ANALYZE, but whoever
runs one leaves statistics of that moment).

- List pages (meetd.store.paging) walk the index of their selection's key. With statistics
  taken when one application held every room, the planner walked the primary key from the
  page's bound, filtering: the last page of a small application followed by many of
  another's rooms read all of those.
- With statistics taken while the tables were tiny, the delivery worker's claim scanned the
  whole callback log, the sweeper's expiry walked every available room, and a room's theme
  was joined by scanning the themes table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meetd.domain.room_keys import CODES_PER_EPOCH
from meetd.store import accounts, events, migrations, rooms
from meetd.store.backends import Connection, run_now
from meetd.store.database import Database, open_database
from tests.store.conftest import new_application
from tests.store.test_room_inserts import T0, new_theme, room_insert

# Fewer rooms at ANALYZE and the planner chooses the index anyway.
SMALL_ROOMS, OTHER_ROOMS = 1_000, 3_000


class Recording(Connection):
    """A SQLite connection that keeps the statements it runs, with their parameters."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        super().__init__(raw, "sqlite")
        self.ran: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.ran.append((sql, tuple(params)))
        return super().execute(sql, params)


@pytest.fixture
def skewed(tmp_path: Path) -> Iterator[tuple[Path, str, str, list[int]]]:
    """A small application's themed rooms, then many of another application's, with
    statistics that say the small one has every room: (path, application, theme, the small
    application's serials)."""
    path = tmp_path / "meetd.sqlite3"
    db: Database = open_database(f"sqlite:///{path}")
    try:
        db.write_blocking(migrations.upgrade)
        small, other = new_application(db), new_application(db)
        theme = new_theme(db, small).id
        inserts = [room_insert(small, theme_id=theme) for _ in range(SMALL_ROOMS)]
        serials = [r.serial for r in db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))]
        db.write_blocking(lambda c: c.execute("ANALYZE rooms"))
        others = [room_insert(other) for _ in range(OTHER_ROOMS)]
        db.write_blocking(lambda c: rooms.insert_rooms(c, others))
    finally:
        db.close()
    yield path, small, theme, serials


def plans(path: Path, read: Any, *, finds: bool = True) -> list[str]:
    """What SQLite plans for each statement ``read(connection)`` runs, on a new connection
    (which loads the statistics): one line of ``EXPLAIN QUERY PLAN`` a step. ``finds``:
    what ``read`` returns must not be empty (a page with rooms, claimed events…)."""
    conn = Recording(sqlite3.connect(path))
    try:
        found = run_now(read(conn))
        if finds:
            assert getattr(found, "rows", found), "the statements should have found something"
        steps = []
        for sql, params in conn.ran:
            plan = conn.raw.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            steps += [str(step[3]) for step in plan]
        return steps
    finally:
        conn.raw.close()


def test_the_statistics_are_the_misleading_ones(
    skewed: tuple[Path, str, str, list[int]],
) -> None:
    """The set-up's premise: told nothing, the planner walks the primary key."""
    path, small, _, serials = skewed
    conn = sqlite3.connect(path)
    try:
        (step,) = conn.execute(
            f"EXPLAIN QUERY PLAN {rooms._SQLITE_SELECT} WHERE r.deleted_at IS NULL"
            " AND r.application_id = ? AND r.serial >= ? ORDER BY r.serial LIMIT 20",
            (small, serials[-5]),
        ).fetchall()[:1]
    finally:
        conn.close()
    assert "INTEGER PRIMARY KEY" in step[3]


@pytest.mark.parametrize("bound", ["start_id", "end_id", "none"])
def test_a_page_of_rooms_walks_its_application(
    skewed: tuple[Path, str, str, list[int]], bound: str
) -> None:
    path, small, _, serials = skewed
    bounds = {"start_id": {"start_id": serials[-5]}, "end_id": {"end_id": serials[3]}}
    found = plans(path, lambda c: rooms.list_rooms(c, small, page_size=20, **bounds.get(bound, {})))
    room_steps = [step for step in found if step.startswith(("SEARCH r ", "SCAN r"))]
    assert room_steps
    assert all("USING INDEX rooms_by_application" in step for step in room_steps), found


def test_a_themes_rooms_walk_the_theme(skewed: tuple[Path, str, str, list[int]]) -> None:
    path, small, theme, serials = skewed
    found = plans(
        path,
        lambda c: rooms.list_rooms(c, small, page_size=20, start_id=serials[-5], theme_id=theme),
    )
    room_steps = [step for step in found if step.startswith(("SEARCH r ", "SCAN r"))]
    assert room_steps
    assert all("USING INDEX rooms_by_theme" in step for step in room_steps), found


T1 = T0 + 3_600_000  # after every room's expiry


@pytest.fixture
def analyzed_tiny(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Statistics taken with 5 rooms, 5 events and a theme; then 300 more of each room and
    event: (path, application)."""
    path = tmp_path / "meetd.sqlite3"
    db: Database = open_database(f"sqlite:///{path}")

    def add(application: str, count: int, theme: str) -> None:
        def write(conn: Connection) -> None:
            made = rooms.insert_rooms(
                conn, [room_insert(application, theme_id=theme) for _ in range(count)]
            )
            for room in made:
                event = {"event": "session:started", "room_id": room.id}
                events.emit_event(
                    conn,
                    application_id=application,
                    room_id=room.id,
                    event=event,
                    metadata=None,
                    now_ms=T0,
                )

        db.write_blocking(write)

    try:
        db.write_blocking(migrations.upgrade)
        application = new_application(db)
        urls = {column: "http://127.0.0.1:9/cb" for column in accounts.CALLBACK_COLUMNS}
        db.write_blocking(lambda c: accounts.update_application(c, application, callback_urls=urls))
        theme = new_theme(db, application).id
        add(application, 5, theme)
        db.write_blocking(lambda c: c.execute("ANALYZE"))
        add(application, 300, theme)
    finally:
        db.close()
    yield path, application


def scans(steps: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """The steps that read a table or an index from end to end, but for the ``allowed``
    steps (written out whole)."""
    return [
        step
        for step in steps
        if step.startswith("SCAN ")
        and step != "SCAN CONSTANT ROW"  # a SELECT without FROM
        and step not in allowed
    ]


def test_the_delivery_worker_claims_on_the_pending_events_index(
    analyzed_tiny: tuple[Path, str],
) -> None:
    path, _ = analyzed_tiny
    found = plans(path, lambda c: events.claim_due_events(c, now_ms=T1, lease_ms=15_000, limit=10))
    assert scans(found, allowed=("SCAN e USING INDEX events_pending",)) == [], found
    assert "SEARCH events USING INDEX events_pending (serial=?)" in found, found


def test_the_sweeper_expires_rooms_by_their_serials(analyzed_tiny: tuple[Path, str]) -> None:
    path, _ = analyzed_tiny
    found = plans(path, lambda c: rooms.expire_due_rooms(c, T1, limit=10))
    # The due rooms are found on their index, in expiry order; each is then updated by
    # its serial, not found again by walking every available room.
    assert scans(found, allowed=("SCAN rooms USING INDEX rooms_due",)) == [], found
    assert sum("rooms_due" in step for step in found) == 1, found
    assert "SEARCH rooms USING INTEGER PRIMARY KEY (rowid=?)" in found, found


def test_a_rooms_theme_is_looked_up_by_its_id(analyzed_tiny: tuple[Path, str]) -> None:
    path, application = analyzed_tiny
    found = plans(path, lambda c: rooms.list_rooms(c, application, page_size=20))
    assert scans(found) == [], found
    assert any("SEARCH t USING INDEX" in step for step in found), found


def test_codes_held_by_other_epochs_are_looked_up_by_serial(
    analyzed_tiny: tuple[Path, str],
) -> None:
    """A new room's code is checked against the rooms of other epochs that derive it (near
    an epoch's end): by their serials, not by walking every available room."""
    path, _ = analyzed_tiny

    def held(conn: Connection) -> set[str]:
        keys = rooms.keys_of(conn)
        serial = CODES_PER_EPOCH + 5
        return rooms._codes_held(conn, keys, {keys.meeting_code(serial): serial}, top_epoch=1)

    found = plans(path, held, finds=False)
    assert scans(found, allowed=("SCAN room_keys",)) == [], found  # a table of one row
    assert "SEARCH rooms USING INTEGER PRIMARY KEY (rowid=?)" in found, found
