"""PostgreSQL: rooms of create requests inserted in one statement on the event loop
(meetd.store.rooms.create_room, insert_plain_rooms; Database.write_in_one_statement). A room
the statement cannot take for certain (a theme to check, keys that need a check) is left to
the writer, and the statement then writes nothing for it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from meetd.errors import NotFoundError
from meetd.store import pg_readers, rooms, themes
from meetd.store.backends import is_unavailable
from meetd.store.database import Database
from tests import support
from tests.store.conftest import new_application
from tests.store.test_room_inserts import (
    assert_made_for,
    new_theme,
    room_count,
    room_insert,
    stored_codes,
)
from tests.store.test_room_keys import _NEW_ROOMS_BY_SQL, insert_legacy_room, jump_serials_to


@pytest.fixture
def database_url() -> Iterator[str]:
    """PostgreSQL only (the store's ``db`` and ``application_id`` fixtures use it)."""
    with support.postgres_schema() as url:
        yield url


def on_loop(db: Database, step: Any) -> Any:
    """Run ``step()`` (a coroutine function) on a new loop, closing its connections after."""

    async def main() -> Any:
        try:
            return await step()
        finally:
            await db.close_reads()

    return asyncio.run(main())


def plain(db: Database, inserts: list[rooms.RoomInsert]) -> list[Any]:
    """insert_plain_rooms for these rooms, in one call."""

    async def step() -> list[Any]:
        return await db._statement_pool().run(lambda c: rooms.insert_plain_rooms(c, inserts))

    found: list[Any] = on_loop(db, step)
    return found


def create_concurrently(db: Database, inserts: list[rooms.RoomInsert]) -> list[Any]:
    async def step() -> list[Any]:
        return await asyncio.gather(
            *(rooms.create_room(db, insert) for insert in inserts), return_exceptions=True
        )

    found: list[Any] = on_loop(db, step)
    return found


def test_rooms_go_in_on_the_loop_with_their_count(db: Database, application_id: str) -> None:
    """Concurrent creates of rooms that name no theme: one statement, the writer untouched."""
    other = new_application(db)
    batch = [room_insert(application_id) for _ in range(5)] + [room_insert(other)]
    writer_before = db.write_stats

    records = create_concurrently(db, batch)

    assert db.write_stats == writer_before
    assert_made_for(records, batch, db)
    assert (room_count(db, application_id), room_count(db, other)) == (5, 1)
    assert stored_codes(db, application_id) == {r.id: r.meeting_code for r in records[:5]}
    assert [r.theme_id for r in records] == [None] * 6


def test_rooms_that_name_a_theme_go_through_the_writer(db: Database, application_id: str) -> None:
    theme = new_theme(db, application_id)
    writes = db.write_stats[1]
    (themed,) = create_concurrently(db, [room_insert(application_id, theme_id=theme.id)])
    assert db.write_stats[1] == writes + 1
    (unthemed,) = create_concurrently(db, [room_insert(application_id)])
    assert db.write_stats[1] == writes + 1

    assert (themed.theme_id, unthemed.theme_id) == (theme.id, None)
    assert room_count(db, application_id) == 2


def test_an_application_with_a_default_theme_is_left_to_the_writer(
    db: Database, application_id: str
) -> None:
    """The statement inserts the other application's rooms and nothing of this one's; the
    writer then gives them the default theme."""
    themed_application = new_application(db)
    theme = new_theme(db, themed_application)
    db.write_blocking(lambda c: themes.set_default_theme(c, themed_application, theme.id))
    batch = [room_insert(themed_application), room_insert(application_id)]

    left, inserted = plain(db, batch)

    assert left is None
    assert inserted is not None and inserted.application_id == application_id
    assert stored_codes(db, themed_application) == {}
    assert (room_count(db, themed_application), room_count(db, application_id)) == (0, 1)
    (record,) = create_concurrently(db, [room_insert(themed_application)])
    assert record.theme_id == theme.id
    assert room_count(db, themed_application) == 1


def test_an_unknown_application_is_left_to_the_writer(db: Database) -> None:
    missing = "no-such-application"
    assert plain(db, [room_insert(missing)]) == [None]
    (error,) = create_concurrently(db, [room_insert(missing)])
    assert isinstance(error, NotFoundError)


def test_nothing_goes_in_while_a_room_from_before_is_live(
    db: Database, application_id: str
) -> None:
    """Its code could be one a new serial derives: only the writer checks codes against
    those rooms."""
    db.write_blocking(lambda c: insert_legacy_room(c, application_id, "123456789", live=True))
    assert plain(db, [room_insert(application_id), room_insert(application_id)]) == [None, None]
    assert len(stored_codes(db, application_id)) == 1
    assert room_count(db, application_id) == 0

    (record,) = create_concurrently(db, [room_insert(application_id)])
    assert record.meeting_code != "123456789"
    assert len(stored_codes(db, application_id)) == 2


def test_nothing_goes_in_once_serials_near_the_next_epoch(
    db: Database, application_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Near the second epoch of meeting codes, codes need the writer's checks: whether the
    serials this process took near it, or a room of another process has."""
    (first,) = plain(db, [room_insert(application_id)])  # the pool holds serials 2 to 512 now
    monkeypatch.setattr(rooms, "_TAKE_TURNS_FROM", first.serial + 1)
    assert plain(db, [room_insert(application_id)]) == [None]

    monkeypatch.setattr(rooms, "_TAKE_TURNS_FROM", 1_000)
    jump_serials_to(db, 2_000)  # another process's room, past the mark
    db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    rooms.serial_pool(db.write_blocking(lambda c: c)).add([700])  # a serial from before it
    assert plain(db, [room_insert(application_id)]) == [None]
    assert room_count(db, application_id) == 2


def test_the_writer_and_the_loop_share_the_serials_taken_ahead(
    db: Database, application_id: str
) -> None:
    by_loop = plain(db, [room_insert(application_id)])
    by_writer = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    by_loop += plain(db, [room_insert(application_id), room_insert(application_id)])
    serials = [r.serial for r in (by_loop[0], by_writer[0], *by_loop[1:])]
    assert serials == list(range(serials[0], serials[0] + 4))
    (last,) = db.write_blocking(
        lambda c: c.fetchone("SELECT last_value FROM rooms_serial_seq")  # one draw of 512
    )
    assert last == serials[0] + 511


def test_the_serial_pool_hands_out_the_smallest_first() -> None:
    pool = rooms.SerialPool()
    assert pool.take(1) is None
    pool.add([520, 521])
    pool.add([3, 4, 5])
    assert pool.take(4) == [3, 4, 5, 520]
    assert pool.take(2) is None
    assert pool.take(1) == [521]


def test_a_statement_takes_every_item_queued_until_its_connection_is_free(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the connection is busy, the requests of later loop iterations wait, and the
    next statement takes all of them."""
    monkeypatch.setattr(pg_readers, "STATEMENT_WRITE_CONNECTIONS", 1)
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def group(conn: Any, items: list[str]) -> list[str]:
        calls.append(items)
        if items == ["hold"]:
            await release.wait()
        await conn.row("SELECT 1")
        return [item.upper() for item in items]

    async def step() -> list[str]:
        held = asyncio.ensure_future(db.write_in_one_statement(group, "hold"))
        await asyncio.sleep(0.05)
        later = []
        for name in "abcde":
            later.append(asyncio.ensure_future(db.write_in_one_statement(group, name)))
            await asyncio.sleep(0)  # each in a loop iteration of its own
        release.set()
        return list(await asyncio.gather(held, *later))

    assert on_loop(db, step) == ["HOLD", "A", "B", "C", "D", "E"]
    assert calls == [["hold"], list("abcde")]


def test_a_statement_whose_connection_is_lost_fails_and_is_not_run_again(db: Database) -> None:
    """It may have committed: its requests get the error (a 503), and the next statement
    runs on a new connection."""
    calls: list[list[str]] = []

    async def group(conn: Any, items: list[str]) -> list[Any]:
        calls.append(items)
        if items == ["lost"]:
            await conn.row("SELECT pg_terminate_backend(pg_backend_pid())")
        row = await conn.row("SELECT pg_backend_pid()")
        return [row] * len(items)

    async def step() -> tuple[Any, Any]:
        lost = await asyncio.gather(
            db.write_in_one_statement(group, "lost"), return_exceptions=True
        )
        return lost[0], await db.write_in_one_statement(group, "next")

    error, served = on_loop(db, step)
    assert is_unavailable(error), error
    assert served is not None
    assert calls == [["lost"], ["next"]]


def test_a_statement_in_flight_when_meetd_stops_is_unavailable(db: Database) -> None:
    """Its connection closed under it: a 503 like any lost connection, not a 500 (found in
    review: the pool's books raised a ValueError)."""

    async def group(conn: Any, items: list[str]) -> list[Any]:
        await conn.row("SELECT pg_sleep(1)")
        return items

    async def step() -> Any:
        statement = asyncio.ensure_future(db.write_in_one_statement(group, "slow"))
        await asyncio.sleep(0.2)
        await db.close_reads()
        (error,) = await asyncio.gather(statement, return_exceptions=True)
        return error

    error = on_loop(db, step)
    assert is_unavailable(error), repr(error)


@pytest.mark.parametrize("held_first", [0, 1])
def test_a_statement_gives_up_a_deadlock_to_the_writer(db: Database, held_first: int) -> None:
    """Another transaction holds one application's row and then asks for the other's, as
    the writer thread's batches do in their own order. Waiting for ever, the statement
    deadlocked with it whenever it had locked the other row first, and both rooms failed
    after PostgreSQL's second of deadlock detection (found in review); now it gives up
    first, writing nothing, and the writer inserts its rooms. Both orders are tried: the
    statement locks its applications in the order of their ids."""
    applications = [new_application(db), new_application(db)]
    second, first = applications[held_first], applications[1 - held_first]
    holding, go = threading.Event(), threading.Event()
    committed: list[bool] = []

    def other_transaction() -> None:
        with psycopg.connect(db.url) as conn:
            conn.execute("UPDATE applications SET name = name WHERE id = %s", (second,))
            holding.set()
            go.wait(5)
            conn.execute("UPDATE applications SET name = name WHERE id = %s", (first,))
            conn.commit()
            committed.append(True)

    other = threading.Thread(target=other_transaction)
    other.start()
    assert holding.wait(5)

    async def step() -> list[Any]:
        creates = asyncio.gather(
            rooms.create_room(db, room_insert(first)),
            rooms.create_room(db, room_insert(second)),
            return_exceptions=True,
        )
        # The transaction asks for its second row once a create waits for its first: the
        # statement did, before; now the writer does, with the room the statement left.
        for _ in range(250):
            await asyncio.sleep(0.02)
            if await db.read(lambda c: c.row(_LOCK_WAITS)) != (0,):
                break
        go.set()
        return list(await creates)

    try:
        records = on_loop(db, step)
    finally:
        go.set()
        other.join(5)
    assert [type(r) for r in records] == [rooms.RoomRecord, rooms.RoomRecord], records
    assert committed == [True]  # (in a deadlock PostgreSQL may fail either side)
    assert (room_count(db, first), room_count(db, second)) == (1, 1)


@pytest.mark.parametrize(("held_for", "through_the_writer"), [(0.07, False), (0.5, True)])
def test_a_statement_waits_for_a_held_application_a_moment_only(
    db: Database, application_id: str, held_for: float, through_the_writer: bool
) -> None:
    """A row another process's statement holds is let go within milliseconds: the statement
    waits for it. One held longer (pg_readers.STATEMENT_LOCK_TIMEOUT, 100 ms) leaves the
    room to the writer, which waits as long as it takes."""
    holding = threading.Event()

    def other_transaction() -> None:
        with psycopg.connect(db.url) as conn:
            conn.execute("UPDATE applications SET name = name WHERE id = %s", (application_id,))
            holding.set()
            time.sleep(held_for)
            conn.commit()

    other = threading.Thread(target=other_transaction)
    other.start()
    assert holding.wait(5)
    writes = db.write_stats[1]
    try:
        (record,) = create_concurrently(db, [room_insert(application_id)])
    finally:
        other.join(5)
    assert isinstance(record, rooms.RoomRecord), record
    assert (db.write_stats[1] > writes) is through_the_writer
    assert room_count(db, application_id) == 1


_LOCK_WAITS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def test_rooms_left_to_the_writer_give_their_serials_back(
    db: Database, application_id: str
) -> None:
    """A room the statement leaves takes no serial of its own there: the writer uses the
    same pool, smallest first, so serials run on without gaps."""
    themed_application = new_application(db)
    theme = new_theme(db, themed_application)
    db.write_blocking(lambda c: themes.set_default_theme(c, themed_application, theme.id))
    records = [
        create_concurrently(db, [room_insert(app)])[0]
        for app in (application_id, themed_application, application_id, themed_application)
    ]
    serials = [r.serial for r in records]
    assert serials == list(range(serials[0], serials[0] + 4))
    assert [r.theme_id for r in records] == [None, theme.id, None, theme.id]


def test_while_rooms_from_before_are_live_creates_go_straight_to_the_writer(
    db: Database, application_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the writer has found one live, no statement is sent first only to write
    nothing."""
    db.write_blocking(lambda c: insert_legacy_room(c, application_id, "123456789", live=True))
    create_concurrently(db, [room_insert(application_id)])  # the writer finds it live
    statements: list[int] = []

    async def counted(conn: Any, inserts: list[Any]) -> list[Any]:
        statements.append(len(inserts))
        return await rooms.insert_plain_rooms(conn, inserts)

    monkeypatch.setattr(rooms, "insert_plain_rooms", counted)
    (record,) = create_concurrently(db, [room_insert(application_id)])
    assert statements == []
    assert record.meeting_code != "123456789"


def test_the_statement_reads_indexes_without_statistics(db: Database, application_id: str) -> None:
    """Its checks (the largest serial, a live room from before derived codes) read one index
    entry each, with or without statistics on rooms, in the generic plan its connection
    uses."""
    url = db.url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE rooms SET (autovacuum_enabled = false)")
        conn.execute(_NEW_ROOMS_BY_SQL, (application_id, 10_000))
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE plain (json, text[], bigint) AS {rooms._INSERT_PLAIN_ROOMS}")
        for analyzed in (False, True):
            if analyzed:
                conn.execute("ANALYZE rooms")
            row = conn.execute("EXPLAIN (FORMAT JSON) EXECUTE plain ('[]', '{}', 5)").fetchone()
            assert row is not None
            plan = json.dumps(row[0])
            assert "Seq Scan on rooms" not in plan
            assert '"Node Type": "Seq Scan", "Parent Relationship": "InitPlan"' not in plan
            for index in ("rooms_pkey", "rooms_legacy_meeting_code"):
                assert index in plan, (analyzed, index, plan)
