"""Room reads of concurrent GET requests (meetd.store.rooms.get_room_rows,
Database.read_together), on SQLite and PostgreSQL: each request gets its own room or its
own 404, whatever it shares a query with, and another application's room is never found."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from meetd.domain.room_keys import RoomRef
from meetd.errors import NotFoundError
from meetd.store import migrations, rooms
from meetd.store.database import Database, open_database
from tests import support
from tests.store.conftest import new_application
from tests.store.test_room_inserts import room_insert


def refs(db: Database, keys: list[tuple[str, str]]) -> list[tuple[str, RoomRef]]:
    """``(application_id, room_id)`` keys as a request names them (RoomRef)."""
    room_keys = db.write_blocking(rooms.keys_of)
    return [(application_id, room_keys.ref(room_id)) for application_id, room_id in keys]


def test_rows_in_order_with_an_error_for_each_room_not_found(
    db: Database, application_id: str
) -> None:
    other = new_application(db)
    inserts = [room_insert(application_id) for _ in range(4)] + [room_insert(other)]
    *mine, theirs = db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))
    deleted = mine[3].id
    db.write_blocking(lambda c: rooms.delete_room(c, application_id, deleted, now_ms=0))
    missing = str(uuid.uuid4())
    keys = refs(
        db,
        [
            (application_id, mine[2].id),
            (application_id, missing),
            (application_id, mine[0].id),
            (application_id, theirs.id),  # another application's room
            (application_id, mine[2].id),  # the same room twice
            (other, theirs.id),
            (application_id, deleted),
        ],
    )

    async def read() -> tuple[list[Any], list[Any]]:
        together = await db.read(lambda c: rooms.get_room_rows(c, keys))
        alone = []
        for key in keys:
            try:
                alone.append(await db.read(lambda c, key=key: rooms.get_room_row(c, *key)))
            except NotFoundError as error:
                alone.append(error)
        await db.close_reads()
        return together, alone

    together, alone = asyncio.run(read())
    assert [type(found) for found in together] == [
        tuple,
        NotFoundError,
        tuple,
        NotFoundError,
        tuple,
        tuple,
        NotFoundError,
    ]
    assert [found for found in together if isinstance(found, tuple)] == [
        found for found in alone if isinstance(found, tuple)
    ]
    assert [str(found) for found in together if isinstance(found, NotFoundError)] == [
        f"The room with id: {missing} could not be found",
        f"The room with id: {theirs.id} could not be found",
        f"The room with id: {deleted} could not be found",
    ]
    assert together[0][1] == mine[2].id  # type: ignore[index]


@pytest.mark.parametrize("requests", [1, 9])
def test_concurrent_reads_share_one_query(db: Database, application_id: str, requests: int) -> None:
    inserts = [room_insert(application_id) for _ in range(requests)]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))
    calls: list[int] = []

    async def get_room_rows(conn: Any, keys: list[tuple[str, RoomRef]]) -> list[Any]:
        calls.append(len(keys))
        return await rooms.get_room_rows(conn, keys)

    ids = [record.id for record in records]
    ids[-1] = str(uuid.uuid4())  # the last request asks for a room that does not exist
    keys = refs(db, [(application_id, room_id) for room_id in ids])

    async def main() -> list[Any]:
        found = await asyncio.gather(
            *(db.read_together(get_room_rows, key) for key in keys),
            return_exceptions=True,
        )
        await db.close_reads()
        return found

    results = asyncio.run(main())
    assert [row[1] for row in results[:-1]] == ids[:-1]
    assert isinstance(results[-1], NotFoundError)
    assert calls == [requests]  # one call for all the requests of the loop iteration


def test_a_failing_shared_query_fails_each_request(db: Database, application_id: str) -> None:
    async def broken(conn: Any, keys: list[tuple[str, str]]) -> list[Any]:
        raise RuntimeError("the query failed")

    async def main() -> list[Any]:
        found = await asyncio.gather(
            *(db.read_together(broken, (application_id, str(uuid.uuid4()))) for _ in range(3)),
            return_exceptions=True,
        )
        await db.close_reads()
        return found

    results = asyncio.run(main())
    assert [str(result) for result in results] == ["the query failed"] * 3


def test_requests_are_cancelled_with_their_shared_read() -> None:
    """When the loop closes under a shared read (its task cancelled), the requests waiting
    on it are cancelled too, not left waiting."""
    with support.postgres_schema() as url:
        db = open_database(url)
        try:

            async def stuck(conn: Any, keys: list[Any]) -> list[Any]:
                await asyncio.Event().wait()
                return []

            async def main() -> list[Any]:
                await db.read(lambda c: c.row("SELECT 1"))  # the loop's connection is open
                requests = [asyncio.ensure_future(db.read_together(stuck, n)) for n in range(2)]
                await asyncio.sleep(0.05)  # the shared call is under way
                (shared,) = db._read_tasks
                shared.cancel()
                # Bounded: left waiting, the requests would hang the test, not fail it.
                results = await asyncio.wait_for(
                    asyncio.gather(*requests, return_exceptions=True), timeout=5
                )
                await db.close_reads()
                return results

            results = asyncio.run(main())
            assert [type(result) for result in results] == [asyncio.CancelledError] * 2
        finally:
            db.close()


def test_more_keys_than_one_statement_takes(db: Database, application_id: str) -> None:
    """SQLite reads the rooms of 64 keys a statement: past that, each key still gets its own
    room, in order, across the statements."""
    inserts = [room_insert(application_id) for _ in range(100)]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))
    ids = [record.id for record in records]
    ids[3] = ids[70] = str(uuid.uuid4())  # missing, in the first and in the second statement
    keys = refs(db, [(application_id, room_id) for room_id in [*ids, *reversed(ids)]])

    async def read() -> list[Any]:
        found = await db.read(lambda c: rooms.get_room_rows(c, keys))
        await db.close_reads()
        return found

    found = asyncio.run(read())
    assert len(found) == 200
    for (_, ref), row in zip(keys, found, strict=True):
        if ref.id in (ids[3], ids[70]):
            assert isinstance(row, NotFoundError)
        else:
            assert isinstance(row, tuple) and row[1] == ref.id


def test_sqlite_finds_each_key_by_its_serial(tmp_path: Any) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'meetd.sqlite3'}")
    try:
        db.write_blocking(migrations.upgrade)
        statement = rooms._sqlite_select_by_keys(3)
        plan = db.read_blocking(
            lambda c: c.rows(
                f"EXPLAIN QUERY PLAN {statement}",
                [1, 11, "a", "b", 2, 12, "c", "d", 3, 13, "e", "f"],
            )
        )
    finally:
        db.close()
    steps = [row[-1] for row in plan]
    assert "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)" in steps
    assert not any(step.startswith("SCAN r") for step in steps)
