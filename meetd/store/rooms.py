"""Room rows: insert, read, page through, update, delete and expire.

Every function takes a :class:`~meetd.store.database.Connection` already inside the right
transaction (see :mod:`meetd.store.database`); none commits on its own.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from meetd.domain.room_keys import CODES_PER_EPOCH, RoomKeys, RoomRef
from meetd.domain.rooms import NewRoom, RoomUpdate, room_not_found
from meetd.errors import BadRequestError, NotFoundError
from meetd.store import paging
from meetd.store.database import Connection, Database, Reader, run_now

if TYPE_CHECKING:  # asyncpg takes 0.1 s to import: only PostgreSQL servers load it
    from meetd.store.pg_readers import AsyncpgReader

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclasses.dataclass(slots=True)
class RoomRecord:
    serial: int
    id: str
    application_id: str
    display_name: str
    metadata: str | None
    type: str
    meeting_code: str
    host_token: str
    theme_id: str | None
    expire_after_use: bool
    options: dict[str, Any]
    created_at: int
    expires_at: int
    is_available: bool
    short_company_url: str | None


# A room as the store reads it: the columns of _SELECT_TEMPLATE, in order. Everything a
# room's API body shows is in it, so the API can reuse a body made for an equal row
# (api.representations).
RoomRow = tuple[Any, ...]


@dataclasses.dataclass(slots=True)
class RoomPage:
    rows: list[RoomRow]
    total: int
    has_prev: bool
    has_next: bool

    @property
    def rooms(self) -> list[RoomRecord]:
        return [room_record(row) for row in self.rows]


@dataclasses.dataclass(slots=True)
class ExpiredRoom:
    id: str
    application_id: str
    type: str
    expires_at: int
    created_at: int
    metadata: str | None
    options: str  # the room's options JSON: its own callback URLs are in it


_SELECT_TEMPLATE = (
    "SELECT r.serial, r.id, r.application_id, r.display_name, r.metadata, r.type,"
    " r.meeting_code, r.host_token, r.theme_id, r.expire_after_use, r.options, r.created_at,"
    " r.expires_at, r.is_available, {short_url} FROM rooms r"
)
# PostgreSQL joins the themes: a small table it scans once a statement and keeps.
_PG_SELECT = _SELECT_TEMPLATE.format(short_url="t.short_company_url") + (
    " LEFT JOIN themes t ON t.id = r.theme_id"
)
# SQLite looks each room's theme up by its id: as a join, with statistics taken while the
# themes table held a row or two, it scanned the table for every room. (As a subquery on
# PostgreSQL, a table that small was scanned again for every room.)
_SQLITE_SELECT = _SELECT_TEMPLATE.format(
    short_url="(SELECT t.short_company_url FROM themes t WHERE t.id = r.theme_id)"
)


def _select(conn: Reader | Connection) -> str:
    """The statement reading rooms (``rooms r``) as :data:`RoomRow`, up to its WHERE."""
    return _PG_SELECT if conn.dialect == "postgresql" else _SQLITE_SELECT


_LIVE = "r.application_id = ? AND r.deleted_at IS NULL"


def room_record(row: RoomRow) -> RoomRecord:
    return RoomRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        bool(row[9]),
        _decode(row[10]),
        row[11],
        row[12],
        bool(row[13]),
        row[14],
    )


def _by_serial(conn: Connection) -> str:
    """For a statement that finds rooms by ``serial IN (…)`` and also tests
    ``is_available``: keeps SQLite on the primary key (``NOT INDEXED`` still allows rowid
    lookups). With statistics taken while the table held a few rooms, it walked every
    available room on ``rooms_due`` instead: 35 ms a sweep batch at 300 000 such rooms."""
    return " NOT INDEXED" if conn.dialect == "sqlite" else ""


def _for_update(conn: Connection) -> str:
    return " FOR UPDATE OF r" if conn.dialect == "postgresql" else ""


def find_theme(conn: Connection, application_id: str, theme_id: str) -> tuple[str | None] | None:
    """``(short_company_url,)`` of the application's theme, or None when it has no such theme."""
    row = conn.fetchone(
        "SELECT short_company_url FROM themes WHERE id = ? AND application_id = ?",
        (theme_id, application_id),
    )
    return None if row is None else (row[0],)


_INSERT_COLUMNS = (
    "serial, id, application_id, display_name, metadata, type, meeting_code,"
    " host_participant_id, host_token, theme_id, expire_after_use, options, created_at,"
    " expires_at, is_available, legacy_keys"
)
_INSERT_VALUES = ", ".join("?" for _ in _INSERT_COLUMNS.split(","))


@dataclasses.dataclass(frozen=True, slots=True)
class RoomInsert:
    """A room to insert, every value drawn but the three its serial decides (the serial,
    the id and the meeting code): what a create request hands the writer."""

    application_id: str
    new: NewRoom
    expires_at: int
    created_at: int
    host_participant_id: str
    host_token: str

    @property
    def theme_chosen(self) -> bool:
        """The request names a theme, which must be checked before the insert."""
        return self.new.theme_given and self.new.theme_id is not None

    def values(self, keys: RoomKeyed, theme_id: str | None) -> tuple[Any, ...]:
        """The row's values, in the order of _INSERT_COLUMNS."""
        new = self.new
        serial, room_id, code = keys
        return (
            serial,
            room_id,
            self.application_id,
            new.display_name,
            new.metadata,
            new.type,
            code,
            self.host_participant_id,
            self.host_token,
            theme_id,
            new.expire_after_use,
            _encode(new.options).decode(),
            self.created_at,
            self.expires_at,
            True,
            False,  # its id and code are derived from its serial
        )


# (serial, id, meeting code) of a room to insert.
RoomKeyed = tuple[int, str, str]

# Rooms go in multi-row VALUES of at most this many rooms (16 parameters each stays under the
# limit of 999 parameters a statement of SQLite before 3.32).
_ROWS_PER_INSERT = 64


def keys_of(conn: Connection) -> RoomKeys:
    """The database's room keys (meetd.domain.room_keys), read once a process (the Backend's
    cache): :func:`room_keys` on the writer's connection."""
    return run_now(room_keys(conn))


async def room_keys(conn: Connection | AsyncpgReader) -> RoomKeys:
    """The database's room keys, on any of its connections (an asyncpg one on the loop too)."""
    keys: RoomKeys | None = conn.cache.get("room_keys")
    if keys is None:
        row = await conn.row("SELECT secret FROM room_keys")
        assert row is not None, "the database is not upgraded"
        keys = conn.cache["room_keys"] = RoomKeys(bytes.fromhex(row[0]))
    return keys


def highest_serial(conn: Connection) -> int:
    """The largest serial a room has (0 with none): what :func:`claim_serials` starts from."""
    found: int = conn.fetchone(_HIGHEST_SERIAL)[0]
    return found


_HIGHEST_SERIAL = "SELECT coalesce(max(serial), 0) FROM rooms"

# Within an epoch, codes are unique by construction; across epochs only a check finds a code
# a live room holds, and two PostgreSQL writers checking at once could each miss the other's
# new room. So once serials come near the second epoch, PostgreSQL writers take turns (the
# lock lasts until the transaction ends). A million serials of margin: no writer holds a
# serial claimed that long ago and not yet committed. SQLite writers take turns anyway.
_TAKE_TURNS_FROM = CODES_PER_EPOCH - 1_000_000
_CLAIM_LOCK = 8231443  # a constant of meetd's own (migrations use 8231442)


def claim_serials(conn: Connection, count: int, *, highest: int) -> list[RoomKeyed]:
    """Serials for ``count`` new rooms, each with its id and meeting code. ``highest``: the
    largest serial a room has now (:func:`highest_serial`).

    A serial whose code a live room holds is skipped (left unused): a room from before
    derived codes, or one of another epoch of serials (meetd.domain.room_keys), or one claimed
    here. On SQLite the serials follow the largest in the table, which the write lock holds
    still, and rooms are never removed from it (a deleted room keeps its row), so a serial,
    and with it an id, is never handed out twice; on PostgreSQL they come from the table's
    sequence, some at a time ahead."""
    keys = keys_of(conn)
    if conn.dialect == "postgresql" and highest >= _TAKE_TURNS_FROM:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_CLAIM_LOCK,))
    claimed: list[RoomKeyed] = []
    codes: set[str] = set()
    drawn = highest
    while len(claimed) < count:
        serials = _next_serials(conn, count - len(claimed), after=drawn)
        drawn = max(drawn, serials[-1])
        by_code: dict[str, int] = {}
        for serial in serials:
            code = keys.meeting_code(serial)
            if code not in codes and code not in by_code:
                by_code[code] = serial
        for code in _codes_held(conn, keys, by_code, top_epoch=drawn // CODES_PER_EPOCH):
            del by_code[code]
        claimed += [(serial, keys.room_id(serial), code) for code, serial in by_code.items()]
        codes.update(by_code)
    return claimed


# PostgreSQL: serials taken from the sequence this many at a time, kept for the process (the
# Backend's cache). One round trip a batch saved: a nextval costs about 8 µs inside
# PostgreSQL, and its statement a round trip. Serials left when meetd stops are never used:
# gaps, which serials may have.
_SERIALS_AHEAD = 512
_NEXT_SERIALS = (
    "SELECT nextval(pg_get_serial_sequence('rooms', 'serial')) FROM generate_series(1, ?)"
)


class SerialPool:
    """PostgreSQL: serials taken from the rooms' sequence ahead, shared by the process's two
    ways of inserting rooms (the writer thread and statements on the loop), smallest first.
    Thread-safe; the caller that finds too few takes more from the sequence (:meth:`add`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._serials: list[int] = []  # a heap

    def take(self, count: int) -> list[int] | None:
        """The ``count`` smallest serials, in increasing order; None when there are fewer."""
        with self._lock:
            if len(self._serials) < count:
                return None
            return [heapq.heappop(self._serials) for _ in range(count)]

    def add(self, serials: Iterable[int]) -> None:
        with self._lock:
            for serial in serials:
                heapq.heappush(self._serials, serial)


def serial_pool(conn: Connection | AsyncpgReader) -> SerialPool:
    """The process's SerialPool (kept in the Backend's cache, which every connection shares)."""
    pool: SerialPool | None = conn.cache.get("serials")
    if pool is None:
        pool = conn.cache.setdefault("serials", SerialPool())
    return pool


def _next_serials(conn: Connection, count: int, *, after: int) -> list[int]:
    """``count`` serials no room has, in increasing order; on SQLite each above ``after``."""
    if conn.dialect == "postgresql":
        return run_now(_pooled_serials(conn, count))
    return list(range(after + 1, after + 1 + count))


async def _pooled_serials(conn: Connection | AsyncpgReader, count: int) -> list[int]:
    """PostgreSQL: ``count`` serials from the process's pool, in increasing order, which
    takes more from the sequence when it has too few."""
    pool = serial_pool(conn)
    while (serials := pool.take(count)) is None:
        rows = await conn.rows(_NEXT_SERIALS, (max(count, _SERIALS_AHEAD),))
        pool.add(row[0] for row in rows)
    return serials


# An IN list holds at most this many values (SQLite before 3.32 takes 999 parameters).
_VALUES_PER_LIST = 500


def _codes_held(
    conn: Connection, keys: RoomKeys, by_code: dict[str, int], *, top_epoch: int
) -> set[str]:
    """Which of these codes a live room holds: one from before derived codes, or one of
    another epoch (up to ``top_epoch``) whose serial derives the same code."""
    held: set[str] = set()
    if _legacy_codes_live(conn):
        held.update(_values(conn, _LEGACY_CODES_IN, list(by_code)))
    others = {
        keys.code_serial(code, epoch): code
        for code, serial in by_code.items()
        for epoch in range(top_epoch + 1)
        if epoch != serial // CODES_PER_EPOCH
    }
    if others:
        found = _values(
            conn,
            f"SELECT serial FROM rooms{_by_serial(conn)} WHERE is_available AND serial IN",
            list(others),
        )
        held.update(others[serial] for serial in found)
    return held


_LEGACY_CODES_IN = (
    "SELECT meeting_code FROM rooms WHERE legacy_keys AND is_available AND meeting_code IN"
)
_ANY_LEGACY_CODE_LIVE = (
    "SELECT 1 FROM rooms WHERE legacy_keys AND is_available AND meeting_code > ''"
    " ORDER BY meeting_code LIMIT 1"
)


def _legacy_codes_live(conn: Connection) -> bool:
    """Whether a room from before derived codes is live, asked at most once a second: such
    rooms only leave, unless a meetd from before schema version 4 still runs against the
    database (docs/running.md, Upgrading).

    The question walks the partial index of their live codes, never the live rooms: on
    SQLite ``meeting_code > ''`` makes it; on PostgreSQL the order does, where without
    statistics on the table (autovacuum off, or not yet run) the planner took ``LIMIT 1``
    for a cheap scan, and read every room, 160 ms with half a million of them, once a second
    in the writer thread."""
    now = time.monotonic()
    known: tuple[bool, float] | None = conn.cache.get("legacy_codes_live")
    if known is None or now >= known[1]:
        row = conn.fetchone(_ANY_LEGACY_CODE_LIVE)
        known = conn.cache["legacy_codes_live"] = (row is not None, now + 1.0)
    return known[0]


def _legacy_codes_known_live(cache: dict[str, Any]) -> bool:
    """Whether the writer last found a room from before derived codes live (then creates go
    to the writer, which checks codes against those rooms, without a statement first)."""
    known: tuple[bool, float] | None = cache.get("legacy_codes_live")
    return known is not None and known[0]


def _values(conn: Connection, select_in: str, values: list[Any]) -> list[Any]:
    """The first column of ``{select_in} (…values…)``, run over the values in slices."""
    found = []
    for start in range(0, len(values), _VALUES_PER_LIST):
        chunk = values[start : start + _VALUES_PER_LIST]
        marks = ", ".join("?" for _ in chunk)
        found += [row[0] for row in conn.fetchall(f"{select_in} ({marks})", chunk)]
    return found


def insert_rooms(conn: Connection, inserts: list[RoomInsert]) -> list[RoomRecord]:
    """Insert the rooms of concurrent create requests and count them in their applications,
    as inserting them one after another would, in fewer statements: each application's rooms
    are counted in one update and inserted together (one multi-row INSERT on SQLite, one COPY
    on PostgreSQL). Raises when any room fails; the writer then inserts them one at a time,
    so the failure reaches its own request only.

    Where each room had its own statements: on SQLite 11 % more creates a second on a new
    database; on PostgreSQL, against one statement a room sent in one pipelined round trip,
    20 to 30 % more, most of it psycopg's Python per statement, which the writer thread
    spent holding the GIL (docs/performance.md).
    """
    by_application: dict[str, list[int]] = {}
    for index, insert in enumerate(inserts):
        by_application.setdefault(insert.application_id, []).append(index)
    records: dict[int, RoomRecord] = {}
    for indexes in by_application.values():
        group = [inserts[index] for index in indexes]
        records.update(zip(indexes, _insert_for_application(conn, group), strict=True))
    return [records[index] for index in range(len(inserts))]


async def create_room(db: Database, insert: RoomInsert) -> RoomRecord:
    """Insert a room for a create request, committed when this returns. On PostgreSQL a room
    that names no theme goes in with those of the other create requests queued meanwhile, in
    one statement on the loop (:func:`insert_plain_rooms`); any other room, or one that
    statement leaves, goes through the writer (:func:`insert_rooms`)."""
    if (
        db.dialect == "postgresql"
        and not insert.new.theme_given
        and not _legacy_codes_known_live(db.backend.cache)
    ):
        record: RoomRecord | None = await db.write_in_one_statement(insert_plain_rooms, insert)
        if record is not None:
            return record
    inserted: RoomRecord = await db.write_together(insert_rooms, insert)
    return inserted


# PostgreSQL: rooms that name no theme, of applications without a default theme, inserted and
# counted in one statement, which writes nothing unless the rooms' keys need no check: no
# room from before derived codes is live, and no serial has come near the second epoch of
# meeting codes (then only the writer's checks, under its lock, may hand out codes). The
# rooms of an application that has a default theme are left to the writer.
#
# The statement locks its applications' rows first, in the order of their ids, so that the
# statements of several processes wait for each other and never deadlock. The writer thread's
# transactions lock applications in their own order, and a statement waiting for one of them
# while holding a row it wants would deadlock (found in review: 180 in 900 creates mixed with
# themed creates and deletes, each a 500 for every room of the statement after a second):
# so a statement waits for a lock at most pg_readers.STATEMENT_LOCK_TIMEOUT, then writes
# nothing and leaves its rooms to the writer. (Skipping a held row instead, SKIP LOCKED,
# sent most rooms of two `serve` processes to their writer threads: 3 200 to 3 800
# creates/s against 5 800 to 6 600.)
_INSERT_PLAIN_ROOMS = (
    "WITH keys_need_no_check AS ("
    f" SELECT ({_HIGHEST_SERIAL}) < $3"
    "  AND (SELECT meeting_code FROM rooms WHERE legacy_keys AND is_available"
    "   AND meeting_code > '' ORDER BY meeting_code LIMIT 1) IS NULL AS yes),"
    " plain_applications AS ("
    " SELECT id FROM applications WHERE id = ANY($2::text[]) AND default_theme_id IS NULL"
    "  AND (SELECT yes FROM keys_need_no_check) ORDER BY id FOR NO KEY UPDATE),"
    " inserted AS ("
    f" INSERT INTO rooms ({_INSERT_COLUMNS}) SELECT {_INSERT_COLUMNS}"
    "  FROM json_populate_recordset(NULL::rooms, $1::json)"
    "  WHERE application_id IN (SELECT id FROM plain_applications)"
    "  RETURNING application_id),"
    " counted AS ("
    " UPDATE applications SET room_count = room_count + new.rooms"
    "  FROM (SELECT application_id, count(*) AS rooms FROM inserted GROUP BY application_id)"
    "  AS new WHERE applications.id = new.application_id RETURNING id)"
    " SELECT id FROM counted"
)
# A row of _INSERT_COLUMNS as the statement's JSON object: msgspec encodes a struct's fields
# by name in C (1.4 µs a room less than a dict zipped from the names).
_NewRow = msgspec.defstruct("_NewRow", [name.strip() for name in _INSERT_COLUMNS.split(",")])


async def insert_plain_rooms(
    conn: AsyncpgReader, inserts: list[RoomInsert]
) -> list[RoomRecord | None]:
    """PostgreSQL, on the loop: insert rooms that name no theme, and count them in their
    applications, in one statement (an autocommit transaction of its own). Answers each
    room's record, or None for a room it did not insert (its application has a default
    theme or does not exist, the keys need a check, or a lock was held too long): the writer
    inserts those, and the serials drawn for them go back to the pool.

    The writer thread's transaction for the same rooms takes five round trips (psycopg's
    BEGIN, the count, the COPY's two, the commit), each ended by a wake-up that waits for the
    GIL while the loop holds it serving requests: on the loop, creates went from 13 % to 24 %
    of the benchmark's hello (docs/performance.md, the thirteenth session)."""
    keys = await room_keys(conn)
    pool = serial_pool(conn)
    serials = await _pooled_serials(conn, len(inserts))
    if serials[-1] >= _TAKE_TURNS_FROM:
        pool.add(serials)
        return [None] * len(inserts)
    keyed = [(serial, keys.room_id(serial), keys.meeting_code(serial)) for serial in serials]
    new_rows = [
        _NewRow(*insert.values(derived, None))
        for insert, derived in zip(inserts, keyed, strict=True)
    ]
    applications = list({insert.application_id for insert in inserts})
    from asyncpg.exceptions import LockNotAvailableError  # (loaded: conn is asyncpg's)

    try:
        done = await conn.raw.fetch(
            _INSERT_PLAIN_ROOMS, _encode(new_rows).decode(), applications, _TAKE_TURNS_FROM
        )
    except LockNotAvailableError:  # waited its longest for a lock: it wrote nothing
        done = []
    counted = {row[0] for row in done}
    pool.add(
        serial
        for insert, serial in zip(inserts, serials, strict=True)
        if insert.application_id not in counted
    )
    return [
        _record(insert, derived, None, None) if insert.application_id in counted else None
        for insert, derived in zip(inserts, keyed, strict=True)
    ]


def _count_rooms(conn: Connection, application_id: str, rooms: int) -> tuple[bool, Any, int]:
    """Count new rooms in their application: (whether it exists, its default theme, the
    largest serial a room has, read in the same statement)."""
    row = conn.fetchone(
        "UPDATE applications SET room_count = room_count + ? WHERE id = ?"
        f" RETURNING default_theme_id, ({_HIGHEST_SERIAL})",
        (rooms, application_id),
    )
    return (False, None, 0) if row is None else (True, row[0], row[1])


def _insert_for_application(conn: Connection, group: list[RoomInsert]) -> list[RoomRecord]:
    """:func:`insert_rooms` for rooms of one application."""
    found, default_theme_id, highest = _count_rooms(conn, group[0].application_id, len(group))
    if not found:
        raise NotFoundError(f"application {group[0].application_id} not found")
    claimed = claim_serials(conn, len(group), highest=highest)
    # Rooms that need no theme check: they name no theme, or name none explicitly (null), or
    # take a default there isn't. The others are left to _finish_insert.
    plain = [
        not insert.theme_chosen and (insert.new.theme_given or default_theme_id is None)
        for insert in group
    ]
    _insert_many(
        conn,
        [
            insert.values(keyed, None)
            for insert, keyed, is_plain in zip(group, claimed, plain, strict=True)
            if is_plain
        ],
    )
    return [
        _finish_insert(conn, insert, keyed, default_theme_id, inserted=is_plain)
        for insert, keyed, is_plain in zip(group, claimed, plain, strict=True)
    ]


def _insert_many(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rooms (rows of _INSERT_COLUMNS values): on PostgreSQL by COPY, on SQLite by
    multi-row INSERTs (whose parameters sqlite3 binds in C)."""
    if conn.dialect == "postgresql":
        conn.copy_rows("rooms", _INSERT_COLUMNS, rows)
        return
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        values = ", ".join([f"({_INSERT_VALUES})"] * len(chunk))
        conn.execute(
            f"INSERT INTO rooms ({_INSERT_COLUMNS}) VALUES {values}",
            [value for row in chunk for value in row],
        )


def _finish_insert(
    conn: Connection,
    insert: RoomInsert,
    keyed: RoomKeyed,
    default_theme_id: str | None,
    *,
    inserted: bool,
) -> RoomRecord:
    """After the application's count: check the theme, and insert the room unless
    _insert_many did."""
    new = insert.new
    theme_id = new.theme_id if new.theme_given else default_theme_id
    short_url = None
    if theme_id is not None:
        theme = find_theme(conn, insert.application_id, theme_id)
        if theme is None:
            raise BadRequestError(f"Failed to create room because theme id {theme_id} not found")
        short_url = theme[0]
    if not inserted:
        conn.execute(
            f"INSERT INTO rooms ({_INSERT_COLUMNS}) VALUES ({_INSERT_VALUES})",
            insert.values(keyed, theme_id),
        )
    return _record(insert, keyed, theme_id, short_url)


def _record(
    insert: RoomInsert, keyed: RoomKeyed, theme_id: str | None, short_url: str | None
) -> RoomRecord:
    """The record of a room just inserted."""
    new = insert.new
    serial, room_id, code = keyed
    return RoomRecord(
        serial,
        room_id,
        insert.application_id,
        new.display_name,
        new.metadata,
        new.type,
        code,
        insert.host_token,
        theme_id,
        new.expire_after_use,
        new.options,
        insert.created_at,
        insert.expires_at,
        True,
        short_url,
    )


def _match(ref: RoomRef) -> tuple[str, tuple[Any, ...]]:
    """The condition on ``rooms r`` that finds the room ``ref`` names: by its serial, or, for
    a room from before derived ids, by the index of their ids."""
    if ref.serial is not None:
        return "r.serial = ? AND r.id = ?", (ref.serial, ref.id)
    return "r.id = ? AND r.legacy_keys", (ref.id,)


def room_match(conn: Connection, room_id: str) -> tuple[str, tuple[Any, ...]]:
    """:func:`_match` for a room id, inside a write: the condition on ``rooms r`` and its
    parameters. Never ``r.id = ?`` alone: no index covers every room's id."""
    return _match(keys_of(conn).ref(room_id))


async def get_room_row(conn: Reader, application_id: str, ref: RoomRef) -> RoomRow:
    match, params = _match(ref)
    row = await conn.row(f"{_select(conn)} WHERE {match} AND {_LIVE}", (*params, application_id))
    if row is None:
        raise room_not_found(ref.id)
    return tuple(row)


_SELECT_BY_KEYS = _PG_SELECT.replace(
    " FROM rooms r",
    ", k.ord FROM unnest(?::bigint[], ?::text[], ?::text[]) WITH ORDINALITY"
    " AS k (serial, id, application_id, ord)"
    " JOIN rooms r ON r.serial = k.serial AND r.id = k.id"
    " AND r.application_id = k.application_id AND r.deleted_at IS NULL",
)

# SQLite has no arrays: the keys are rows of a VALUES list, (ordinal, serial, id, application)
# each, at most this many a statement (four parameters each stays under the limit of 999
# parameters a statement of SQLite before 3.32).
_SQLITE_KEYS_PER_READ = 64


@functools.lru_cache(maxsize=_SQLITE_KEYS_PER_READ)
def _sqlite_select_by_keys(count: int) -> str:
    keys = ", ".join(["(?, ?, ?, ?)"] * count)
    return _SQLITE_SELECT.replace(
        " FROM rooms r",
        f", k.column1 FROM (VALUES {keys}) AS k"
        " JOIN rooms r ON r.serial = k.column2 AND r.id = k.column3"
        " AND r.application_id = k.column4 AND r.deleted_at IS NULL",
    )


async def get_room_rows(
    conn: Reader, keys: list[tuple[str, RoomRef]]
) -> list[RoomRow | NotFoundError]:
    """:func:`get_room_row` for each ``(application_id, room)``: the row, or the error. The
    rooms of several keys are read by one statement, each key joined to its room by its
    serial (tests/store/test_room_reads.py); a room from before derived ids alone."""
    found: dict[int, RoomRow | NotFoundError] = {}
    derived = []
    for n, (application_id, ref) in enumerate(keys, 1):
        if ref.serial is None or len(keys) == 1:
            try:
                found[n] = await get_room_row(conn, application_id, ref)
            except NotFoundError as error:
                found[n] = error
        else:
            derived.append((n, ref.serial, ref.id, application_id))
    if conn.dialect == "postgresql" and derived:
        _, serials, ids, applications = (list(column) for column in zip(*derived, strict=True))
        rows = await conn.rows(_SELECT_BY_KEYS, (serials, ids, applications))
        # PostgreSQL numbers the keys it was given: back to the numbers of all the keys.
        found.update((derived[row[-1] - 1][0], tuple(row[:-1])) for row in rows)
    else:
        for start in range(0, len(derived), _SQLITE_KEYS_PER_READ):
            chunk = derived[start : start + _SQLITE_KEYS_PER_READ]
            params = [value for key in chunk for value in key]
            rows = await conn.rows(_sqlite_select_by_keys(len(chunk)), params)
            found.update((row[-1], tuple(row[:-1])) for row in rows)
    return [found.get(n) or room_not_found(key[1].id) for n, key in enumerate(keys, 1)]


async def list_rooms(
    conn: Reader,
    application_id: str,
    *,
    page_size: int,
    start_id: int | None = None,
    end_id: int | None = None,
    theme_id: str | None = None,
) -> RoomPage:
    """One page in serial order: from ``start_id`` on, or the last ones before ``end_id``.

    Each query walks the (application, serial) index from a bound, and the total comes from
    the application's counter, so a page costs the same at 1 000 rooms or 1 000 000.
    """
    total: tuple[str, list[Any]] | None
    if theme_id is None:
        key, index = [("r.application_id", application_id)], "rooms_by_application"
        where, params = "r.deleted_at IS NULL", []
        total = ("(SELECT room_count FROM applications WHERE id = ?)", [application_id])
    else:  # on the (theme, serial) index, whose rows all have a theme
        key, index = [("r.theme_id", theme_id)], "rooms_by_theme"
        # The application is asked of the theme, once, not of each room: a room takes only a
        # theme of its own application (find_theme, on insert and update), as theme_use and
        # delete_theme count on too. Asked of each room (``r.application_id = ?``), the
        # generic plan without statistics walked the application's rooms on their index and
        # sorted the theme's (80 ms for 180 000 rooms); with the check kept off that index
        # (``r.application_id || '' = ?``) it read and sorted all the theme's for each page.
        where = (
            "r.theme_id IS NOT NULL AND r.deleted_at IS NULL"
            " AND EXISTS (SELECT 1 FROM themes WHERE id = ? AND application_id = ?)"
        )
        params = [theme_id, application_id]
        total = None  # counted: a theme keeps no count
    page, has_prev, has_next, count = await paging.page(
        conn,
        select=_select(conn),
        source="rooms r",
        key=key,
        column="r.serial",
        index=index,
        where=where,
        params=params,
        start_id=start_id,
        end_id=end_id,
        page_size=page_size,
        total=total,
    )
    return RoomPage(page, count, has_prev, has_next)


async def list_room_pages(conn: Reader, asks: list[paging.PageAsk]) -> list[RoomPage]:
    """:func:`list_rooms` (without a theme) for each ask of ``(application_id, start_id,
    end_id, page_size)``; on PostgreSQL in one statement (:func:`paging.pages`)."""
    if conn.dialect != "postgresql":
        return [
            await list_rooms(conn, app, page_size=size, start_id=start, end_id=end)
            for app, start, end, size in asks
        ]
    found = await paging.pages(
        conn,
        select=_PG_SELECT,
        source="rooms r",
        key="r.application_id",
        column="r.serial",
        where="r.deleted_at IS NULL",
        total="(SELECT room_count FROM applications WHERE id = q.k0)",
        asks=asks,
    )
    return [RoomPage(rows, count, prev, nxt) for rows, prev, nxt, count in found]


def lock_room(conn: Connection, application_id: str, room_id: str) -> RoomRecord:
    """Read a room for a change, holding its row until the transaction ends."""
    match, params = room_match(conn, room_id)
    row = conn.fetchone(
        f"{_select(conn)} WHERE {match} AND {_LIVE}{_for_update(conn)}",
        (*params, application_id),
    )
    if row is None:
        raise room_not_found(room_id)
    return room_record(row)


def update_room(conn: Connection, room: RoomRecord, update: RoomUpdate) -> RoomRecord:
    """Write the keys ``update`` names onto ``room`` (already locked and checked)."""
    if update.theme_given and update.theme_id is not None:
        theme = find_theme(conn, room.application_id, update.theme_id)
        if theme is None:
            raise BadRequestError(
                f"Failed to update room because theme id {update.theme_id} not found"
            )
        room.short_company_url = theme[0]
    elif update.theme_given:
        room.short_company_url = None
    if update.theme_given:
        room.theme_id = update.theme_id
    if update.expires_at is not None:
        room.expires_at = update.expires_at
    if update.expire_after_use is not None:
        room.expire_after_use = update.expire_after_use
    room.options = {**room.options, **update.options}
    conn.execute(
        "UPDATE rooms SET theme_id = ?, expires_at = ?, expire_after_use = ?, options = ?"
        " WHERE serial = ?",
        (
            room.theme_id,
            room.expires_at,
            room.expire_after_use,
            _encode(room.options).decode(),
            room.serial,
        ),
    )
    return room


def delete_room(
    conn: Connection, application_id: str, room_id: str, now_ms: int
) -> ExpiredRoom | None:
    """Remove a room from reads and lists; its meeting code is free again. Returns the room
    when this expired it (it was still available), None when it had expired before."""
    match, params = room_match(conn, room_id)
    row = conn.fetchone(
        "SELECT serial, is_available, type, created_at, metadata, options FROM rooms"
        f" r WHERE {match} AND {_LIVE}{_for_update(conn)}",
        (*params, application_id),
    )
    if row is None:
        raise room_not_found(room_id)
    serial, was_available, room_type, created_at, metadata, options = row
    conn.execute(
        "UPDATE rooms SET deleted_at = ?, is_available = ?,"
        " expired_at = CASE WHEN is_available THEN ? ELSE expired_at END WHERE serial = ?",
        (now_ms, False, now_ms, serial),
    )
    conn.execute(
        "UPDATE applications SET room_count = room_count - 1 WHERE id = ?", (application_id,)
    )
    if not was_available:
        return None
    return ExpiredRoom(room_id, application_id, room_type, now_ms, created_at, metadata, options)


async def next_expiry(conn: Reader) -> int | None:
    """When the next available room is due to expire, if any."""
    row = await conn.row(
        "SELECT expires_at FROM rooms WHERE is_available"
        " AND (type = 'long_term' OR participant_count = 0) ORDER BY expires_at LIMIT 1"
    )
    return None if row is None else int(row[0])


def expire_due_rooms(conn: Connection, now_ms: int, limit: int = 500) -> list[ExpiredRoom]:
    """Turn rooms whose ``expires_at`` has passed unavailable; return the ones turned now.

    ``is_available`` is tested again by the UPDATE itself, so two processes sweeping at once
    expire each room once: PostgreSQL re-checks the row after the other's commit, SQLite
    runs one writer at a time. Instant rooms with people inside wait (see domain.lifetime).
    """
    skip_locked = " FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else ""
    rows = conn.fetchall(
        f"UPDATE rooms{_by_serial(conn)} SET is_available = ?, expired_at = ?"
        " WHERE is_available AND serial IN ("
        "  SELECT serial FROM rooms WHERE is_available AND expires_at <= ?"
        "  AND (type = 'long_term' OR participant_count = 0)"
        f"  ORDER BY expires_at LIMIT ?{skip_locked})"
        " RETURNING id, application_id, type, expires_at, created_at, metadata, options",
        (False, now_ms, now_ms, limit),
    )
    return [ExpiredRoom(*row) for row in rows]
