"""Room rows: insert, read, page through, update, delete and expire.

Every function takes a :class:`~meetd.store.database.Connection` already inside the right
transaction (see :mod:`meetd.store.database`); none commits on its own.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import msgspec

from meetd.domain.rooms import NewRoom, RoomUpdate, room_not_found
from meetd.errors import BadRequestError, NotFoundError
from meetd.store import paging
from meetd.store.database import Connection, Reader

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


# A room as the store reads it: the columns of _SELECT, in order. Everything a room's API body
# shows is in it, so the API can reuse a body made for an equal row (api.representations).
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


_SELECT = (
    "SELECT r.serial, r.id, r.application_id, r.display_name, r.metadata, r.type,"
    " r.meeting_code, r.host_token, r.theme_id, r.expire_after_use, r.options, r.created_at,"
    " r.expires_at, r.is_available, t.short_company_url"
    " FROM rooms r LEFT JOIN themes t ON t.id = r.theme_id"
)
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
    "id, application_id, display_name, metadata, type, meeting_code, host_participant_id,"
    " host_token, theme_id, expire_after_use, options, created_at, expires_at, is_available"
)
_INSERT_VALUES = ", ".join("?" for _ in _INSERT_COLUMNS.split(","))


@dataclasses.dataclass(frozen=True, slots=True)
class RoomInsert:
    """A room to insert, every value drawn: what a create request hands the writer."""

    room_id: str
    application_id: str
    new: NewRoom
    expires_at: int
    created_at: int
    host_participant_id: str
    host_token: str
    new_code: Callable[[], str]

    @property
    def theme_chosen(self) -> bool:
        """The request names a theme, which must be checked before the insert."""
        return self.new.theme_given and self.new.theme_id is not None

    def values(self, code: str, theme_id: str | None) -> tuple[Any, ...]:
        """The row's values, in the order of _INSERT_COLUMNS."""
        new = self.new
        return (
            self.room_id,
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
        )


# Rooms go in multi-row VALUES of at most this many rooms (14 parameters each stays under the
# limit of 999 parameters a statement of SQLite before 3.32).
_ROWS_PER_INSERT = 64


def insert_rooms(conn: Connection, inserts: list[RoomInsert]) -> list[RoomRecord]:
    """Insert the rooms of concurrent create requests and count them in their applications,
    as inserting them one after another would, in fewer statements: each application's rooms
    are counted in one update and inserted by one multi-row statement. A drawn meeting code
    that is taken is drawn again. Raises when any room fails; the writer then inserts them
    one at a time, so the failure reaches its own request only.

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


def _count_rooms(conn: Connection, application_id: str, rooms: int) -> tuple[bool, Any]:
    """Count new rooms in their application: (whether it exists, its default theme)."""
    row = conn.fetchone(
        "UPDATE applications SET room_count = room_count + ? WHERE id = ?"
        " RETURNING default_theme_id",
        (rooms, application_id),
    )
    return (False, None) if row is None else (True, row[0])


def _insert_for_application(conn: Connection, group: list[RoomInsert]) -> list[RoomRecord]:
    """:func:`insert_rooms` for rooms of one application."""
    codes = [insert.new_code() for insert in group]
    found, default_theme_id = _count_rooms(conn, group[0].application_id, len(group))
    serial_of: dict[str, int] = {}
    if found:
        # Rooms that need no theme check: they name no theme, or name none explicitly
        # (null), or take a default there isn't. The others are left to _finish_insert.
        rows = [
            insert.values(code, None)
            for insert, code in zip(group, codes, strict=True)
            if not insert.theme_chosen and (insert.new.theme_given or default_theme_id is None)
        ]
        serial_of = _insert_many(conn, rows)
    return [
        _finish_insert(conn, insert, code, found, default_theme_id, serial_of.get(insert.room_id))
        for insert, code in zip(group, codes, strict=True)
    ]


def _insert_many(conn: Connection, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Insert rooms (rows of _INSERT_COLUMNS values); the serial of each inserted, by id. A
    room whose meeting code is taken is skipped, and left out of the answer."""
    serial_of: dict[str, int] = {}
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        values = ", ".join([f"({_INSERT_VALUES})"] * len(chunk))
        inserted = conn.fetchall(
            f"INSERT INTO rooms ({_INSERT_COLUMNS}) VALUES {values}"
            " ON CONFLICT DO NOTHING RETURNING id, serial",
            [value for row in chunk for value in row],
        )
        serial_of.update((row[0], row[1]) for row in inserted)
    return serial_of


def _finish_insert(
    conn: Connection,
    insert: RoomInsert,
    code: str,
    found: bool,
    default_theme_id: str | None,
    serial: int | None,
) -> RoomRecord:
    """After the application's count: check the theme, and insert the room unless the
    count's statement did (``serial``), drawing another code while the one drawn is taken."""
    if not found:
        raise NotFoundError(f"application {insert.application_id} not found")
    new = insert.new
    theme_id = new.theme_id if new.theme_given else default_theme_id
    short_url = None
    if theme_id is not None:
        theme = find_theme(conn, insert.application_id, theme_id)
        if theme is None:
            raise BadRequestError(f"Failed to create room because theme id {theme_id} not found")
        short_url = theme[0]
    while serial is None:
        inserted = conn.fetchone(
            f"INSERT INTO rooms ({_INSERT_COLUMNS}) VALUES ({_INSERT_VALUES})"
            " ON CONFLICT DO NOTHING RETURNING serial",
            insert.values(code, theme_id),
        )
        if inserted is not None:
            serial = inserted[0]
        else:  # the code belongs to another live room: draw again
            code = insert.new_code()
    return RoomRecord(
        serial,
        insert.room_id,
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


async def get_room_row(conn: Reader, application_id: str, room_id: str) -> RoomRow:
    row = await conn.row(f"{_SELECT} WHERE r.id = ? AND {_LIVE}", (room_id, application_id))
    if row is None:
        raise room_not_found(room_id)
    return tuple(row)


_SELECT_BY_KEYS = _SELECT.replace(
    " FROM rooms r",
    ", k.ord FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS k (id, application_id, ord)"
    " JOIN rooms r ON r.id = k.id AND r.application_id = k.application_id"
    " AND r.deleted_at IS NULL",
)

# SQLite has no arrays: the keys are rows of a VALUES list, (ordinal, id, application) each,
# at most this many a statement (three parameters each stays under the limit of 999
# parameters a statement of SQLite before 3.32).
_SQLITE_KEYS_PER_READ = 64


@functools.lru_cache(maxsize=_SQLITE_KEYS_PER_READ)
def _sqlite_select_by_keys(count: int) -> str:
    keys = ", ".join(["(?, ?, ?)"] * count)
    return _SELECT.replace(
        " FROM rooms r",
        f", k.column1 FROM (VALUES {keys}) AS k"
        " JOIN rooms r ON r.id = k.column2 AND r.application_id = k.column3"
        " AND r.deleted_at IS NULL",
    )


async def get_room_rows(conn: Reader, keys: list[tuple[str, str]]) -> list[RoomRow | NotFoundError]:
    """:func:`get_room_row` for each ``(application_id, room_id)``: the row, or the error. The
    rooms of several keys are read by one statement, each key joined to its room by the
    unique index on ids (tests/store/test_room_reads.py)."""
    if len(keys) == 1:
        try:
            return [await get_room_row(conn, *keys[0])]
        except NotFoundError as error:
            return [error]
    if conn.dialect == "postgresql":
        rows = await conn.rows(
            _SELECT_BY_KEYS, ([key[1] for key in keys], [key[0] for key in keys])
        )
    else:
        rows = []
        for start in range(0, len(keys), _SQLITE_KEYS_PER_READ):
            chunk = keys[start : start + _SQLITE_KEYS_PER_READ]
            params = [
                value
                for ordinal, (application_id, room_id) in enumerate(chunk, start + 1)
                for value in (ordinal, room_id, application_id)
            ]
            rows += await conn.rows(_sqlite_select_by_keys(len(chunk)), params)
    by_ord = {row[-1]: tuple(row[:-1]) for row in rows}
    return [by_ord.get(n) or room_not_found(key[1]) for n, key in enumerate(keys, 1)]


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
        key = [("r.application_id", application_id)]
        where, params = "r.deleted_at IS NULL", []
        total = ("(SELECT room_count FROM applications WHERE id = ?)", [application_id])
    else:  # on the (theme, serial) index, whose rows all have a theme
        key = [("r.theme_id", theme_id)]
        where = "r.theme_id IS NOT NULL AND r.application_id = ? AND r.deleted_at IS NULL"
        params = [application_id]
        total = None  # counted: a theme keeps no count
    page, has_prev, has_next, count = await paging.page(
        conn,
        select=_SELECT,
        source="rooms r",
        key=key,
        column="r.serial",
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
        select=_SELECT,
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
    row = conn.fetchone(
        f"{_SELECT} WHERE r.id = ? AND {_LIVE}{_for_update(conn)}", (room_id, application_id)
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
    row = conn.fetchone(
        "SELECT serial, is_available, type, created_at, metadata, options FROM rooms"
        f" r WHERE r.id = ? AND {_LIVE}{_for_update(conn)}",
        (room_id, application_id),
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
        "UPDATE rooms SET is_available = ?, expired_at = ?"
        " WHERE is_available AND serial IN ("
        "  SELECT serial FROM rooms WHERE is_available AND expires_at <= ?"
        "  AND (type = 'long_term' OR participant_count = 0)"
        f"  ORDER BY expires_at LIMIT ?{skip_locked})"
        " RETURNING id, application_id, type, expires_at, created_at, metadata, options",
        (False, now_ms, now_ms, limit),
    )
    return [ExpiredRoom(*row) for row in rows]
