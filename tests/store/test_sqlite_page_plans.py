"""The plans SQLite makes for list pages (meetd.store.paging): each statement of a page walks
the index of its selection's key, whatever the statistics say.

With statistics taken when one application held every room (``ANALYZE`` after its rooms
alone), the planner reckoned that the application's rooms were the whole table and walked
the primary key from the page's bound, filtering: the last page of a small application
followed by many of another's rooms read all of those.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meetd.store import migrations, rooms
from meetd.store.backends import Connection, run_now
from meetd.store.database import Database, open_database
from tests.store.conftest import new_application
from tests.store.test_room_inserts import new_theme, room_insert

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


def plans(path: Path, read: Any) -> list[str]:
    """What SQLite plans for each statement ``read(connection)`` runs, on a new connection
    (which loads the statistics): one line of ``EXPLAIN QUERY PLAN`` a step."""
    conn = Recording(sqlite3.connect(path))
    try:
        page = run_now(read(conn))
        assert page.rows, "the page should hold rooms"
        found = []
        for sql, params in conn.ran:
            steps = conn.raw.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            found += [str(step[3]) for step in steps]
        return found
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
            f"EXPLAIN QUERY PLAN {rooms._SELECT} WHERE r.deleted_at IS NULL"
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
