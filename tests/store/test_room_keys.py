"""Room ids and meeting codes derived from serials, in the store (meetd.store.rooms), on
SQLite and PostgreSQL: rooms from before the change (schema version 3) keep their ids and
codes and are still found; a new room never takes a code a live room holds; and the lookups
use the primary key or the legacy rooms' partial indexes, never a scan."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from meetd.domain.room_keys import CODES_PER_EPOCH
from meetd.errors import NotFoundError
from meetd.store import accounts, migrations, recordings, rooms
from meetd.store.database import Connection, Database, open_database
from tests.store.test_room_inserts import room_insert

# A room as schema version 3 held it: id and meeting code drawn at random.
_LEGACY_ROOM = (
    "INSERT INTO rooms (id, application_id, display_name, type, meeting_code,"
    " host_participant_id, host_token, expire_after_use, options, created_at, expires_at,"
    " is_available) VALUES (?, ?, 'old room', 'long_term', ?, ?, 't', FALSE, '{}', 0, ?, ?)"
    " RETURNING serial"
)


def insert_legacy_room(conn: Connection, application_id: str, code: str, *, live: bool) -> str:
    room_id = str(uuid.uuid4())
    conn.fetchone(_LEGACY_ROOM, (room_id, application_id, code, str(uuid.uuid4()), 10**13, live))
    return room_id


@pytest.fixture
def upgraded(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A database of schema version 3 with rooms, a session and a recording in it, upgraded:
    the database, the application and the old rooms' ids."""
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    db = open_database(database_url)
    try:
        assert db.write_blocking(migrations.upgrade) == [1, 2, 3]

        def fill(conn: Connection) -> dict[str, Any]:
            account = accounts.create_account(
                conn, name="old", api_key="oldkey", api_secret="s", now_ms=0
            )
            application_id = account.default_application_id
            live = insert_legacy_room(conn, application_id, "123456789", live=True)
            gone = insert_legacy_room(conn, application_id, "987654321", live=False)
            conn.execute(
                "INSERT INTO sessions (id, room_id, application_id, started_at)"
                " VALUES ('1_MX40old', ?, ?, 0)",
                (live, application_id),
            )
            conn.execute(
                "INSERT INTO recordings (id, session_id, application_id, status, started_at,"
                " created_at) VALUES (?, '1_MX40old', ?, 'uploaded', 0, 0)",
                (str(uuid.uuid4()), application_id),
            )
            return {"application_id": application_id, "live": live, "gone": gone}

        old = db.write_blocking(fill)
    finally:
        db.close()
    monkeypatch.undo()

    db = open_database(database_url)
    try:
        assert db.write_blocking(migrations.upgrade) == [4]
        yield {"db": db, **old}
    finally:
        db.close()


def column(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return [row[0] for row in db.write_blocking(lambda c: c.fetchall(sql, params))]


def read_rows(db: Database, keys: list[tuple[str, str]]) -> list[Any]:
    room_keys = db.write_blocking(rooms.keys_of)
    refs = [(application_id, room_keys.ref(room_id)) for application_id, room_id in keys]

    async def read() -> list[Any]:
        found = await db.read(lambda c: rooms.get_room_rows(c, refs))
        await db.close_reads()
        return found

    return asyncio.run(read())


def test_rooms_from_before_keep_their_ids_codes_sessions_and_recordings(
    upgraded: dict[str, Any],
) -> None:
    db, application_id = upgraded["db"], upgraded["application_id"]
    assert column(db, "SELECT id FROM rooms ORDER BY serial") == [
        upgraded["live"],
        upgraded["gone"],
    ]
    assert column(db, "SELECT meeting_code FROM rooms ORDER BY serial") == [
        "123456789",
        "987654321",
    ]
    assert column(db, "SELECT legacy_keys FROM rooms") == [True, True]
    assert column(db, "SELECT room_id FROM sessions") == [upgraded["live"]]
    assert column(db, "SELECT session_id FROM recordings") == ["1_MX40old"]
    # The rebuilt tables keep their foreign keys.
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        db.write_blocking(
            lambda c: c.execute(
                "INSERT INTO recordings (id, session_id, application_id, status, started_at,"
                " created_at) VALUES ('r', 'no such session', ?, 'uploaded', 0, 0)",
                (application_id,),
            )
        )


def test_rooms_from_before_and_new_rooms_are_found_together(upgraded: dict[str, Any]) -> None:
    db, application_id, old = upgraded["db"], upgraded["application_id"], upgraded["live"]
    new = db.write_blocking(
        lambda c: rooms.insert_rooms(c, [room_insert(application_id), room_insert(application_id)])
    )
    keys = [(application_id, old), (application_id, new[0].id), (application_id, new[1].id)]

    found = read_rows(db, keys)
    assert [row[1] for row in found] == [old, new[0].id, new[1].id]
    assert read_rows(db, keys[:1])[0][1] == old  # alone, too
    # Another application's room is still a 404, old or new.
    other = db.write_blocking(
        lambda c: accounts.create_account(c, name="o", api_key="ok", api_secret="s", now_ms=0)
    ).default_application_id
    assert all(
        isinstance(row, NotFoundError) for row in read_rows(db, [(other, k[1]) for k in keys])
    )
    # New rooms follow the old ones' serials, with ids and codes of their own.
    assert new[0].serial > 2 and new[1].serial == new[0].serial + 1


def test_a_room_from_before_is_changed_deleted_and_given_sessions_by_its_id(
    upgraded: dict[str, Any],
) -> None:
    db, application_id, old = upgraded["db"], upgraded["application_id"], upgraded["live"]
    locked = db.write_blocking(lambda c: rooms.lock_room(c, application_id, old))
    assert (locked.id, locked.meeting_code) == (old, "123456789")
    session = db.write_blocking(
        lambda c: recordings.insert_session(c, session_id="1_MX40new", room_id=old, started_at=1)
    )
    assert (session.room_id, session.application_id) == (old, application_id)
    expired = db.write_blocking(lambda c: rooms.delete_room(c, application_id, old, 5))
    assert expired is not None and expired.id == old
    assert isinstance(read_rows(db, [(application_id, old)])[0], NotFoundError)


def test_a_serial_whose_code_a_live_room_from_before_holds_is_skipped(
    upgraded: dict[str, Any],
) -> None:
    db, application_id = upgraded["db"], upgraded["application_id"]
    keys = db.write_blocking(rooms.keys_of)

    def add_legacy_room(conn: Connection) -> int:
        """A room from before whose drawn code is the one the next serial derives."""
        room_id = insert_legacy_room(conn, application_id, "100000000", live=True)
        serial: int = conn.fetchone("SELECT serial FROM rooms WHERE id = ?", (room_id,))[0]
        conn.execute(
            "UPDATE rooms SET meeting_code = ? WHERE serial = ?",
            (keys.meeting_code(serial + 1), serial),
        )
        return serial

    serial = db.write_blocking(add_legacy_room)
    taken = keys.meeting_code(serial + 1)

    (record,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    assert (record.serial, record.meeting_code) == (serial + 2, keys.meeting_code(serial + 2))
    assert record.meeting_code != taken
    live_codes = column(db, "SELECT meeting_code FROM rooms WHERE is_available")
    assert len(live_codes) == len(set(live_codes))


def test_a_serial_whose_code_a_live_room_of_an_earlier_epoch_holds_is_skipped(
    db: Database, application_id: str
) -> None:
    keys = db.write_blocking(rooms.keys_of)
    (early,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    # The serial of the next epoch that derives the same code, made the next one to take.
    clash = keys.code_serial(early.meeting_code, 1)
    assert clash // CODES_PER_EPOCH == 1
    jump_serials_to(db, clash)

    (late,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    assert late.serial == clash + 1
    assert late.meeting_code != early.meeting_code
    assert (late.id, late.meeting_code) == (keys.room_id(clash + 1), keys.meeting_code(clash + 1))

    # Once a room is gone (deleted, or expired), its code is free again, in any epoch.
    db.write_blocking(lambda c: rooms.delete_room(c, application_id, early.id, 1))
    again = keys.code_serial(late.meeting_code, 2)
    jump_serials_to(db, again)
    expired = db.write_blocking(lambda c: rooms.expire_due_rooms(c, late.expires_at))
    assert [room.id for room in expired] == [late.id]
    (third,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    assert (third.serial, third.meeting_code) == (again, late.meeting_code)


def jump_serials_to(db: Database, serial: int) -> None:
    """Make ``serial`` the next a room takes."""
    if db.dialect == "postgresql":

        def jump(conn: Connection) -> None:
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('rooms', 'serial'), ?)", (serial - 1,)
            )
            conn.cache.pop("serials", None)  # the serials the writer took ahead

        db.write_blocking(jump)
        return
    # SQLite takes the serial after the largest: a room that no one sees holds the one before.
    keys = db.write_blocking(rooms.keys_of)
    db.write_blocking(
        lambda c: c.execute(
            "INSERT INTO rooms (serial, id, application_id, display_name, type, meeting_code,"
            " host_participant_id, host_token, expire_after_use, options, created_at,"
            " expires_at, is_available, deleted_at, legacy_keys)"
            " SELECT ?, ?, id, 'filler', 'instant', '100000000', 'h', 't', FALSE,"
            " '{}', 0, 0, FALSE, 0, FALSE FROM applications LIMIT 1",
            (serial - 1, keys.room_id(serial - 1)),
        )
    )


def test_each_database_has_its_own_room_key(db: Database, tmp_path: Any) -> None:
    other = open_database(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        other.write_blocking(migrations.upgrade)
        mine, theirs = (d.write_blocking(rooms.keys_of) for d in (db, other))
    finally:
        other.close()
    assert mine.room_id(1) != theirs.room_id(1)
    assert len(column(db, "SELECT secret FROM room_keys")[0]) == 64


def sqlite_plan(db: Database, sql: str, params: list[Any]) -> list[str]:
    return [
        row[-1]
        for row in db.write_blocking(lambda c: c.fetchall(f"EXPLAIN QUERY PLAN {sql}", params))
    ]


def test_sqlite_finds_rooms_by_serial_or_by_the_legacy_index(tmp_path: Any) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'meetd.sqlite3'}")
    try:
        db.write_blocking(migrations.upgrade)
        keys = db.write_blocking(rooms.keys_of)
        for ref, expected in (
            (keys.ref(keys.room_id(7)), "SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"),
            (keys.ref(str(uuid.uuid4())), "SEARCH r USING INDEX rooms_legacy_id (id=?)"),
        ):
            match, params = rooms._match(ref)
            plan = sqlite_plan(db, f"SELECT 1 FROM rooms r WHERE {match}", list(params))
            assert plan == [expected]
        # The legacy codes' check reads the partial index of live legacy rooms.
        plan = sqlite_plan(db, f"{rooms._LEGACY_CODES_IN} (?, ?)", ["1", "2"])
        assert plan == ["SEARCH rooms USING INDEX rooms_legacy_meeting_code (meeting_code=?)"]
    finally:
        db.close()


class ToyKeys:
    """Epochs of 10 serials whose codes shift by 3 an epoch, unkeyed: a batch that crosses
    epochs, and codes that meet across them, within reach of a test."""

    def meeting_code(self, serial: int) -> str:
        epoch, place = divmod(serial, 10)
        return str(100_000_000 + (place + 3 * epoch) % 10)

    def code_serial(self, code: str, epoch: int) -> int:
        return epoch * 10 + (int(code) - 100_000_000 - 3 * epoch) % 10

    def room_id(self, serial: int) -> str:
        return str(uuid.UUID(int=serial))


@pytest.fixture
def toy_epochs(db: Database, monkeypatch: pytest.MonkeyPatch) -> ToyKeys:
    keys = ToyKeys()
    monkeypatch.setattr(rooms, "CODES_PER_EPOCH", 10)
    monkeypatch.setattr(rooms, "_TAKE_TURNS_FROM", 0)  # PostgreSQL writers take turns at once
    monkeypatch.setattr(rooms, "keys_of", lambda conn: keys)
    return keys


def test_a_batch_across_epochs_never_takes_a_code_twice(
    db: Database, application_id: str, toy_epochs: ToyKeys
) -> None:
    """Serials 1 to 9 take codes 1 to 9; in the next epoch, serials 10 to 16 derive codes
    3 to 9 again, and 17 derives 0, the one code left."""
    batch = [room_insert(application_id) for _ in range(10)]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))
    assert [r.serial for r in records] == [*range(1, 10), 17]
    assert sorted(r.meeting_code for r in records) == [str(100_000_000 + n) for n in range(10)]


def test_a_code_held_in_a_later_epoch_is_seen_from_an_earlier_one(
    db: Database, application_id: str, toy_epochs: ToyKeys
) -> None:
    """On PostgreSQL a writer may claim serials from its pool after another has gone on to
    the next epoch: the check looks at every epoch, not only earlier ones."""
    jump_serials_to(db, 13)
    (late,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [room_insert(application_id)]))
    assert (late.serial, late.meeting_code) == (13, "100000006")  # place 3, shifted by 3
    held = db.write_blocking(
        lambda c: rooms._codes_held(c, toy_epochs, {"100000006": 6, "100000007": 7}, top_epoch=1)  # type: ignore[arg-type]
    )
    assert held == {"100000006"}


def test_the_check_for_live_rooms_from_before_reads_their_index(tmp_path: Any) -> None:
    """Asked of SQLite as it is, the question walks the index of live legacy codes; asked
    without ``meeting_code > ''`` it walked every live room by expiry, 361 ms a create with
    a million of them (found in review)."""
    db = open_database(f"sqlite:///{tmp_path / 'meetd.sqlite3'}")
    try:
        db.write_blocking(migrations.upgrade)
        plan = sqlite_plan(db, rooms._ANY_LEGACY_CODE_LIVE, [])
    finally:
        db.close()
    assert plan == ["SEARCH rooms USING INDEX rooms_legacy_meeting_code (meeting_code>?)"]


def test_postgresql_asks_for_live_rooms_from_before_of_their_index_without_statistics() -> None:
    """Without statistics on rooms (autovacuum off, as on this project's machines, or not
    yet run) PostgreSQL planned the question as a scan stopping at the first match, and
    there is none: it read every room, 160 ms with half a million, once a second in the
    writer thread. Ordered by the index's key, it reads the index, with or without them."""
    import psycopg

    from tests import support
    from tests.store.conftest import new_application

    with support.postgres_schema() as url:
        db = open_database(url)
        try:
            db.write_blocking(migrations.upgrade)
            application_id = new_application(db)
        finally:
            db.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE rooms SET (autovacuum_enabled = false)")
            conn.execute(_NEW_ROOMS_BY_SQL, (application_id, 10_000))
            for analyzed in (False, True):
                if analyzed:
                    conn.execute("ANALYZE rooms")
                row = conn.execute(f"EXPLAIN (FORMAT JSON) {rooms._ANY_LEGACY_CODE_LIVE}")
                plan = json.dumps(row.fetchone()[0])  # type: ignore[index]
                assert "rooms_legacy_meeting_code" in plan, (analyzed, plan)
                assert "Seq Scan" not in plan, (analyzed, plan)


# Live rooms with derived keys, inserted without meetd (which would not leave the table
# without statistics: seeding analyzes it).
_NEW_ROOMS_BY_SQL = (
    "INSERT INTO rooms (id, application_id, display_name, type, meeting_code,"
    " host_participant_id, host_token, expire_after_use, options, created_at, expires_at,"
    " is_available, legacy_keys) SELECT gen_random_uuid()::text, %s, 'r', 'instant',"
    " (100000000 + n)::text, 'p', 't', FALSE, '{}', 0, 10000000000000, TRUE, FALSE"
    " FROM generate_series(1, %s) AS n"
)


def test_a_room_a_meetd_from_before_inserts_is_one_with_drawn_keys(
    upgraded: dict[str, Any],
) -> None:
    """During an upgrade an older meetd may still insert rooms, naming no ``legacy_keys``:
    they are found by their ids, and their codes are kept from new rooms."""
    db, application_id = upgraded["db"], upgraded["application_id"]
    room_id = db.write_blocking(
        lambda c: insert_legacy_room(c, application_id, "555555555", live=True)
    )
    assert column(db, "SELECT legacy_keys FROM rooms WHERE id = ?", (room_id,)) == [True]
    assert read_rows(db, [(application_id, room_id)])[0][1] == room_id
