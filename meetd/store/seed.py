"""Bulk rooms for benchmarks and load tests: ``seed_rooms(url, application_id, count)``.

Rows are written in large transactions straight into the tables, bypassing the API, so a
million rooms take seconds rather than hours. They are long-term rooms expiring in a year,
with ids and meeting codes derived from their serials as the API's are.
"""

from __future__ import annotations

import contextlib
import functools
import time

import msgspec

from meetd.domain.randomness import new_uuid
from meetd.domain.rooms import DEFAULT_OPTIONS
from meetd.store import migrations
from meetd.store.database import Connection, open_database
from meetd.store.rooms import claim_serials, highest_serial

CHUNK = 10_000


def seed_rooms(database_url: str, application_id: str, count: int) -> int:
    """Insert ``count`` rooms for the application; return how many were inserted."""
    database = open_database(database_url)
    try:
        database.write_blocking(migrations.upgrade)
        now = time.time_ns() // 1_000_000
        options = msgspec.json.encode(DEFAULT_OPTIONS).decode()
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            chunk = functools.partial(
                _insert_chunk,
                application_id=application_id,
                start=done,
                size=size,
                now=now,
                options=options,
            )
            database.write_blocking(chunk)
            done += size
        database.write_blocking(functools.partial(_recount, application_id=application_id))
    finally:
        database.close()
    _settle(database_url)
    return done


def _settle(database_url: str) -> None:
    """Leave the tables as a long-running server would have them, so that what runs next
    measures steady state: fresh statistics (or PostgreSQL plans its first queries for an empty
    table), and on PostgreSQL a vacuum and a checkpoint (or the first reads of a million new
    rows stall for seconds while they set hint bits and write back pages)."""
    if not database_url.startswith(("postgresql://", "postgres://")):
        database = open_database(database_url)
        try:
            database.write_blocking(lambda c: c.execute("ANALYZE rooms"))
        finally:
            database.close()
        return
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) rooms")
        # CHECKPOINT needs superuser or pg_checkpoint; without, the vacuum did most of the work.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def _insert_chunk(
    conn: Connection,
    *,
    application_id: str,
    start: int,
    size: int,
    now: int,
    options: str,
) -> None:
    year = 365 * 24 * 3600 * 1000
    rows = [
        (
            serial,
            room_id,
            application_id,
            f"seeded room {start + i}",
            "long_term",
            code,
            new_uuid(),
            "seeded",
            False,
            options,
            now,
            now + year,
            True,
            False,
        )
        for i, (serial, room_id, code) in enumerate(
            claim_serials(conn, size, highest=highest_serial(conn))
        )
    ]
    conn.executemany(
        "INSERT INTO rooms (serial, id, application_id, display_name, type, meeting_code,"
        " host_participant_id, host_token, expire_after_use, options, created_at, expires_at,"
        " is_available, legacy_keys) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _recount(conn: Connection, *, application_id: str) -> None:
    conn.execute(
        "UPDATE applications SET room_count ="
        " (SELECT COUNT(*) FROM rooms WHERE application_id = ? AND deleted_at IS NULL)"
        " WHERE id = ?",
        (application_id, application_id),
    )
