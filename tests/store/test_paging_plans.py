"""The plans PostgreSQL makes for list pages (meetd.store.paging), as its read connections
run them: generic plans (meetd.store.pg_readers). On a database where one application's
rooms all come after another's, a page must walk the index of its selection's key, not the
primary key in serial order, filtering: that walk would pass every earlier room first."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from meetd.domain.room_keys import RoomRef
from meetd.store import events, migrations, rooms
from meetd.store.database import Database, open_database
from meetd.store.pg_readers import numbered
from meetd.store.seed import seed_rooms
from tests import support
from tests.store.conftest import new_application
from tests.store.test_room_inserts import new_theme, room_insert


class Recorder:
    """A PostgreSQL reader that keeps the statements it is asked and answers an empty page."""

    dialect = "postgresql"

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[Any]]] = []

    async def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        self.asked.append((sql, list(params)))
        return [(n, None, None, None, 0) for n in range(1, 9)]


@pytest.fixture(scope="module")
def skewed() -> Iterator[tuple[str, str, str, str]]:
    """A database URL, an application with 3 000 rooms and as many callback events, and one
    with 3 of each whose serials all come after those (one room themed), with statistics."""
    with support.postgres_schema() as url:
        db: Database = open_database(url)
        try:
            db.write_blocking(migrations.upgrade)
            big, small = new_application(db), new_application(db)
            seed_rooms(url, big, 3_000)
            theme = new_theme(db, small)
            inserts = [
                room_insert(small, theme_id=theme.id),
                room_insert(small),
                room_insert(small),
            ]
            db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))
            for application, count in ((big, 3_000), (small, 3)):
                db.write_blocking(
                    lambda c, a=application, n=count: c.execute(
                        "INSERT INTO events (id, application_id, room_id, type, kind, body,"
                        " status, created_at) SELECT gen_random_uuid()::text, ?,"
                        " gen_random_uuid()::text, 'room:expired', 'room', '{}', 'delivered', 0"
                        " FROM generate_series(1, ?)",
                        (a, n),
                    )
                )
            db.write_blocking(lambda c: c.execute("ANALYZE rooms, events, themes, applications"))
        finally:
            db.close()
        yield url, big, small, theme.id


def generic_plan(url: str, sql: str, params: list[Any], *, run: bool = False) -> dict[str, Any]:
    """The generic plan of ``sql``, prepared as asyncpg prepares it; ``run``: and what its
    nodes read (EXPLAIN ANALYZE)."""
    with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE page AS {numbered(sql)}")
        marks = ", ".join(["%s"] * len(params))
        options = "ANALYZE, BUFFERS, FORMAT JSON" if run else "FORMAT JSON"
        row = conn.execute(f"EXPLAIN ({options}) EXECUTE page({marks})", params).fetchone()
        assert row is not None
        plan = row[0]
        return dict(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"])


def scans(plan: dict[str, Any]) -> set[str]:
    """How the plan reads each table: ``"Index Scan rooms_by_application"``, ``"Seq Scan
    rooms"``…"""
    found = set()
    if "Relation Name" in plan:
        found.add(f"{plan['Node Type']} {plan.get('Index Name', plan['Relation Name'])}")
    for child in plan.get("Plans", []):
        found |= scans(child)
    return found


def subplan_blocks(plan: dict[str, Any]) -> list[int]:
    """The blocks each subplan of ``plan`` read (EXPLAIN ANALYZE, BUFFERS)."""
    found = []
    if plan.get("Parent Relationship") == "SubPlan":
        found.append(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])
    for child in plan.get("Plans", []):
        found += subplan_blocks(child)
    return found


def asked(read: Any) -> tuple[str, list[Any]]:
    recorder = Recorder()
    asyncio.run(read(recorder))
    (statement,) = recorder.asked
    return statement


def room_scans(found: set[str]) -> set[str]:
    return {scan for scan in found if " rooms" in scan}


def test_a_page_of_rooms_walks_its_application(skewed: tuple[str, str, str, str]) -> None:
    url, big, small, _ = skewed
    for application in (big, small):
        sql, params = asked(lambda c, a=application: rooms.list_rooms(c, a, page_size=20))
        assert room_scans(scans(generic_plan(url, sql, params))) <= {
            "Index Scan rooms_by_application",
            "Index Scan Backward rooms_by_application",
            "Index Only Scan rooms_by_application",
            "Index Only Scan Backward rooms_by_application",
        }, application


def test_the_pages_of_several_requests_walk_their_applications(
    skewed: tuple[str, str, str, str],
) -> None:
    url, big, small, _ = skewed
    asks = [(small, None, None, 20), (big, 5, None, 20), (small, None, 10**9, 3)]
    sql, params = asked(lambda c: rooms.list_room_pages(c, asks))
    found = room_scans(scans(generic_plan(url, sql, params)))
    assert "Index Scan rooms_by_application" in found
    assert not {scan for scan in found if "rooms_pkey" in scan or "Seq Scan" in scan}


def test_a_themes_rooms_walk_the_theme(skewed: tuple[str, str, str, str]) -> None:
    url, _, small, theme_id = skewed
    sql, params = asked(lambda c: rooms.list_rooms(c, small, page_size=20, theme_id=theme_id))
    found = room_scans(scans(generic_plan(url, sql, params)))
    assert "Index Scan rooms_by_theme" in found
    assert not {scan for scan in found if "rooms_pkey" in scan or "Seq Scan" in scan}


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "events_by_application"),
        ({"room_id": "00000000-0000-4000-8000-000000000000"}, "events_by_room"),
        ({"status": "failed"}, "events_by_status"),
    ],
)
def test_a_page_of_the_callback_log_walks_its_index(
    skewed: tuple[str, str, str, str], filters: dict[str, str], index: str
) -> None:
    url, _, small, _ = skewed
    sql, params = asked(lambda c: events.list_events(c, small, page_size=20, **filters))
    found = scans(generic_plan(url, sql, params))
    assert f"Index Scan {index}" in found
    assert not {scan for scan in found if "events_pkey" in scan or "Seq Scan events" in scan}


def test_a_page_without_a_bound_asks_nothing_beyond_it(skewed: tuple[str, str, str, str]) -> None:
    """With no ``start_id`` nor ``end_id`` there is no row to look for before or after the
    page's bounds, and the search must stop at once: written as a row comparison alone, a
    NULL bound made it read the application's whole index."""
    url, big, _, _ = skewed
    sql, params = asked(lambda c: rooms.list_room_pages(c, [(big, None, None, 20)] * 2))
    blocks = subplan_blocks(generic_plan(url, sql, params, run=True))
    assert len(blocks) == 3  # before, beyond, the total
    assert max(blocks) <= 3, blocks


def room_seeks(plan: dict[str, Any]) -> set[tuple[str, str]]:
    """How the plan reads rooms: ``(node type and index, index condition)`` each."""
    found = set()
    if plan.get("Relation Name") == "rooms":
        index = f"{plan['Node Type']} {plan.get('Index Name', '')}"
        found.add((index, str(plan.get("Index Cond", ""))))
    for child in plan.get("Plans", []):
        found |= room_seeks(child)
    return found


def test_rooms_are_read_by_their_serial_or_the_legacy_index(
    skewed: tuple[str, str, str, str],
) -> None:
    """GET reads: a derived id by its serial (alone, and shared by several requests), an id
    from before derived ids by the partial index of those (meetd.domain.room_keys). Either
    index that leads with the serial, or with the application and then the serial, finds the
    one row at once."""
    url, big, _, _ = skewed
    serial, legacy = RoomRef(str(uuid.uuid4()), 7), RoomRef(str(uuid.uuid4()), None)
    shared = [[7, 8], [serial.id, serial.id], [big, big]]
    for sql, params in (
        (
            f"{rooms._PG_SELECT} WHERE {rooms._match(serial)[0]} AND {rooms._LIVE}",
            [7, serial.id, big],
        ),
        (rooms._SELECT_BY_KEYS, shared),
    ):
        ((index, condition),) = room_seeks(generic_plan(url, sql, params))
        assert index in ("Index Scan rooms_pkey", "Index Scan rooms_by_application"), index
        assert "serial = " in condition, condition
    sql = f"{rooms._PG_SELECT} WHERE {rooms._match(legacy)[0]} AND {rooms._LIVE}"
    ((index, condition),) = room_seeks(generic_plan(url, sql, [legacy.id, big]))
    assert (index, condition) == ("Index Scan rooms_legacy_id", "(id = $1)")


ROOMS_IN_LOG = 3_000


def logged_room(n: int) -> str:
    """The id of the log fixture's room ``n``: events ``n`` and ``n + 3 000`` are its."""
    return str(uuid.UUID(hashlib.md5(str(n).encode()).hexdigest()))


@pytest.fixture(scope="module", params=[False, True], ids=["unanalyzed", "analyzed"])
def log(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """A database URL, an application with 6 000 callback events (serials 1 to 6 000) for
    3 000 rooms, two each, 1 in 20 failed and 1 in 500 pending, and 6 000 rooms of its own, 1
    in 10 with a theme (with fewer, even the old plans read the theme's index); and that
    theme. With statistics or without: autovacuum is kept off, so that without them the
    tables stay as those of a server that never analyzed them."""
    with support.postgres_schema() as url:
        db: Database = open_database(url)
        try:
            db.write_blocking(migrations.upgrade)
            application = new_application(db)
            theme = new_theme(db, application)
        finally:
            db.close()
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("rooms", "events", "themes", "applications"):
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            conn.execute(
                "INSERT INTO rooms (serial, id, application_id, display_name, type,"
                " meeting_code, host_participant_id, host_token, theme_id, expire_after_use,"
                " options, created_at, expires_at, is_available, legacy_keys)"
                " SELECT s, gen_random_uuid()::text, %(a)s, 'r', 'long_term',"
                " lpad(s::text, 10, '0'), 'h', 't', CASE WHEN s %% 10 = 0 THEN %(t)s END,"
                " false, '{}', 0, 1, true, false FROM generate_series(1, %(n)s) s",
                {"a": application, "t": theme.id, "n": 2 * ROOMS_IN_LOG},
            )
            conn.execute(
                "INSERT INTO events (serial, id, application_id, room_id, type, kind, body,"
                " status, created_at) SELECT e, gen_random_uuid()::text, %(a)s,"
                " md5((e %% %(n)s)::text)::uuid::text, 'room:expired', 'room', '{}',"
                " CASE WHEN e %% 500 = 7 THEN 'pending' WHEN e %% 20 = 1 THEN 'failed'"
                " ELSE 'delivered' END, 0 FROM generate_series(1, %(n)s * 2) e",
                {"a": application, "n": ROOMS_IN_LOG},
            )
            if request.param:
                conn.execute("ANALYZE rooms, events, themes, applications")
        yield url, application, theme.id


def indexes(plan: dict[str, Any]) -> set[str]:
    """The indexes the plan reads, bitmap scans' too."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= indexes(child)
    return found


def blocks(plan: dict[str, Any]) -> int:
    """The blocks a plan run read (EXPLAIN ANALYZE, BUFFERS), its subplans' with them."""
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


# Bounds each way: none; past the key's last event (the page walks on from there); before
# its first (the page walks back); between its events (an empty page, a neighbour each way).
BOUNDS = [(None, None), (6_000, None), (None, 7), (8, 3_007)]


@pytest.mark.parametrize(("start_id", "end_id"), BOUNDS)
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"room_id": logged_room(7)}, "events_by_room"),  # events 7 and 3 007
        ({"status": "pending"}, "events_by_status"),  # events 7, 507 … 5 507
        ({"room_id": logged_room(7), "status": "pending"}, "events_by_room"),
    ],
)
def test_a_key_of_several_columns_reads_its_own_rows(
    log: tuple[str, str, str],
    filters: dict[str, str],
    index: str,
    start_id: int | None,
    end_id: int | None,
) -> None:
    """The page, its neighbours and its total read the key's rows on the key's index, not the
    application's log: the total was counted on the application's index, and a walk went on
    past the key's last row (or back past its first) through the application's others."""
    url, application, _ = log
    sql, params = asked(
        lambda c: events.list_events(
            c, application, page_size=20, start_id=start_id, end_id=end_id, **filters
        )
    )
    plan = generic_plan(url, sql, params, run=True)
    assert indexes(plan) == {index}
    # The application's log fills some 200 blocks; its 12 pending events lie on 12 of them,
    # and the index entries of the key on a block or two.
    assert blocks(plan) <= 60, blocks(plan)


def test_a_themes_rooms_walk_the_theme_without_statistics(log: tuple[str, str, str]) -> None:
    """Not the application's rooms, sorted: asked of each room, the application drew the
    plan without statistics to their index."""
    url, application, theme_id = log
    sql, params = asked(lambda c: rooms.list_rooms(c, application, page_size=20, theme_id=theme_id))
    found = indexes(generic_plan(url, sql, params))
    assert "rooms_by_theme" in found
    assert not found & {"rooms_by_application", "rooms_pkey"}, found


class Writer:
    """A writer's connection that keeps the statements it is asked and finds nothing."""

    dialect = "postgresql"

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[Any]]] = []

    def fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self.asked.append((sql, list(params)))
        return []


def test_a_rooms_failed_events_are_found_on_the_room(log: tuple[str, str, str]) -> None:
    """Not among the application's failed events: without statistics the status drew the
    plan to their index."""
    url, application, _ = log
    writer = Writer()
    events.redeliver_failed_events(writer, application, logged_room(1), now_ms=0)  # type: ignore[arg-type]
    ((sql, params),) = writer.asked
    assert indexes(generic_plan(url, sql, params)) == {"events_by_room"}
