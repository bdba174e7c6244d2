"""The batch writer and the readers beside it (meetd.store.database), on SQLite and
PostgreSQL: concurrent writes share commits, a failing write rolls back alone, and the
migrations apply once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from meetd.store import accounts, migrations
from meetd.store.database import Connection, Database, Reader, open_database

CREATE_TABLE = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    try:
        db.write_blocking(migrations.upgrade)
        db.write_blocking(lambda c: c.execute(CREATE_TABLE))
        yield db
    finally:
        db.close()


def insert(note_id: int, body: str = "note") -> Any:
    def run(conn: Connection) -> int:
        conn.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (note_id, body))
        return note_id

    return run


async def note_ids(conn: Reader) -> list[int]:
    return [row[0] for row in await conn.rows("SELECT id FROM notes ORDER BY id")]


class Refused(Exception):
    pass


def insert_then_fail(note_id: int) -> Any:
    def run(conn: Connection) -> None:
        conn.execute("INSERT INTO notes (id, body) VALUES (?, ?)", (note_id, "doomed"))
        raise Refused(f"note {note_id}")

    return run


def test_upgrade_applies_every_migration_once(database_url: str) -> None:
    db = open_database(database_url)
    try:
        assert db.write_blocking(migrations.upgrade) == [v for v, _, _ in migrations.MIGRATIONS]
        assert db.write_blocking(migrations.upgrade) == []
        versions = {version for version, _, _ in migrations.MIGRATIONS}
        assert db.read_blocking(migrations.applied_versions) == versions
        assert max(versions) == migrations.LATEST_VERSION
    finally:
        db.close()
    # A restart (a new Database on the same store) finds nothing to do either.
    again = open_database(database_url)
    try:
        assert again.write_blocking(migrations.upgrade) == []
        assert again.read_blocking(lambda c: c.fetchone("SELECT COUNT(*) FROM rooms")[0]) == 0
    finally:
        again.close()


def test_a_database_migrated_by_a_newer_meetd_is_refused(database_url: str) -> None:
    """A rolled-back deploy: the old code must not run on a schema it does not know."""
    db = open_database(database_url)
    try:
        db.write_blocking(migrations.upgrade)
        newer = migrations.LATEST_VERSION + 1
        db.write_blocking(
            lambda c: c.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)",
                (newer, "from the future"),
            )
        )
        with pytest.raises(migrations.SchemaTooNewError, match=f"version {newer}, newer"):
            db.write_blocking(migrations.upgrade)
    finally:
        db.close()


def test_an_older_database_is_upgraded_in_place(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made by the first release (migration 1 only), with an account in it,
    takes the later migrations and keeps its data."""
    first_release = migrations.MIGRATIONS[:1]
    monkeypatch.setattr(migrations, "MIGRATIONS", first_release)
    db = open_database(database_url)
    try:
        assert db.write_blocking(migrations.upgrade) == [1]
        db.write_blocking(
            lambda c: accounts.create_account(
                c, name="old", api_key="oldkey", api_secret="s", now_ms=0
            )
        )
    finally:
        db.close()
    monkeypatch.undo()

    db = open_database(database_url)
    try:
        later = [version for version, _, _ in migrations.MIGRATIONS[1:]]
        assert later
        assert db.write_blocking(migrations.upgrade) == later
        assert db.read_blocking(lambda c: c.fetchone("SELECT name FROM accounts")[0]) == "old"
        assert db.read_blocking(lambda c: c.fetchone("SELECT COUNT(*) FROM recordings")[0]) == 0
    finally:
        db.close()


def test_blocking_write_and_read(database: Database) -> None:
    assert database.write_blocking(insert(1, "hello")) == 1
    assert (
        database.read_blocking(lambda c: c.fetchone("SELECT body FROM notes WHERE id = ?", (1,))[0])
        == "hello"
    )
    assert database.read_blocking(note_ids) == [1]


def test_a_failing_blocking_write_raises_and_leaves_no_trace(database: Database) -> None:
    database.write_blocking(insert(1))
    with pytest.raises(Refused, match="note 2"):
        database.write_blocking(insert_then_fail(2))
    assert database.read_blocking(note_ids) == [1]
    assert database.write_blocking(insert(3)) == 3  # the writer carries on
    assert database.read_blocking(note_ids) == [1, 3]


def test_concurrent_writes_share_commits(database: Database) -> None:
    batches_before, writes_before = database.write_stats
    count = 50

    async def main() -> list[int]:
        return await asyncio.gather(*(database.write(insert(i)) for i in range(count)))

    assert asyncio.run(main()) == list(range(count))
    batches, writes = database.write_stats
    assert writes - writes_before == count
    assert 1 <= batches - batches_before < count
    assert database.read_blocking(note_ids) == list(range(count))


def slow_insert(note_id: int, seconds: float) -> Any:
    """Holds the writer for a while, so the writes behind it queue up into one batch."""

    def run(conn: Connection) -> int:
        time.sleep(seconds)
        return int(insert(note_id)(conn))

    return run


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(insert_then_fail, id="raises"),
        pytest.param(lambda note_id: insert(0), id="duplicate-key"),  # note 0 exists
        pytest.param(
            lambda note_id: lambda c: c.execute("INSERT INTO no_such_table VALUES (1)"),
            id="bad-sql",
        ),
    ],
)
def test_one_failing_write_in_a_batch_fails_alone(database: Database, failing: Any) -> None:
    batches_before, writes_before = database.write_stats

    async def main() -> list[Any]:
        writes = [database.write(slow_insert(0, 0.05))]
        writes += [database.write(insert(i)) for i in range(1, 5)]
        writes.append(database.write(failing(5)))
        writes += [database.write(insert(i)) for i in range(6, 10)]
        return await asyncio.gather(*writes, return_exceptions=True)

    results = asyncio.run(main())
    assert results[:5] == [0, 1, 2, 3, 4]
    assert isinstance(results[5], Exception)
    assert results[6:] == [6, 7, 8, 9]
    batches, writes = database.write_stats
    assert writes - writes_before == 10
    assert batches - batches_before <= 2  # the failure shared its commit with others
    assert database.read_blocking(note_ids) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert (
        database.read_blocking(
            lambda c: c.fetchone("SELECT COUNT(*) FROM notes WHERE body = ?", ("doomed",))[0]
        )
        == 0
    )


def test_a_failing_write_raises_its_own_error(database: Database) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            database.write(insert(1)),
            database.write(insert_then_fail(2)),
            database.write(insert(3)),
            return_exceptions=True,
        )

    first, failure, third = asyncio.run(main())
    assert (first, third) == (1, 3)
    assert isinstance(failure, Refused)
    assert str(failure) == "note 2"


def test_async_reads_see_committed_writes(database: Database) -> None:
    async def main() -> tuple[list[int], list[int]]:
        before = await database.read(note_ids)
        await database.write(insert(7))
        after = await database.read(note_ids)
        await database.close_reads()
        return before, after

    assert asyncio.run(main()) == ([], [7])


def test_writes_from_a_thread_while_a_loop_writes(database: Database) -> None:
    """Set-up code (tests, tools) may write with write_blocking while the server's loop is
    writing too; both land."""
    errors: list[BaseException] = []

    def from_thread() -> None:
        try:
            for i in range(100, 110):
                database.write_blocking(insert(i))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    async def main() -> None:
        await database.write(insert(0))  # the loop is now the writer's (as in a server)
        thread = threading.Thread(target=from_thread)
        thread.start()
        for i in range(1, 10):
            await database.write(insert(i))
            await asyncio.sleep(0)
        while thread.is_alive():
            await asyncio.sleep(0.001)
        thread.join()

    asyncio.run(main())
    assert errors == []
    assert database.read_blocking(note_ids) == [*range(10), *range(100, 110)]


def test_write_stats_count_every_write(database: Database) -> None:
    batches_before, writes_before = database.write_stats
    database.write_blocking(insert(1))
    with pytest.raises(Refused):
        database.write_blocking(insert_then_fail(2))
    assert database.write_stats == (batches_before + 2, writes_before + 2)
