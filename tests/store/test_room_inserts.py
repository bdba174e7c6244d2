"""Rooms of concurrent create requests inserted together (meetd.store.rooms.insert_rooms,
Database.write_together), on SQLite and PostgreSQL: each request gets its own room or its
own error, whatever shares its batch, and the application's count stays exact."""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from typing import Any

import pytest

from meetd.domain.rooms import parse_new_room
from meetd.domain.themes import parse_new_theme
from meetd.errors import BadRequestError, NotFoundError
from meetd.store import rooms, themes
from meetd.store.database import Database
from tests.store.conftest import new_application

T0 = 1_800_000_000_000


_NAMES = (f"room {n}" for n in itertools.count())


def room_insert(application_id: str, **body: Any) -> rooms.RoomInsert:
    return rooms.RoomInsert(
        application_id=application_id,
        new=parse_new_room({"display_name": next(_NAMES), **body}, now_ms=T0, min_lead_seconds=600),
        expires_at=T0 + 600_000,
        created_at=T0,
        host_participant_id=str(uuid.uuid4()),
        host_token="t",
    )


def new_theme(db: Database, application_id: str) -> themes.ThemeRecord:
    change = parse_new_theme({"main_color": "#112233", "brand_text": "b"})
    return db.write_blocking(
        lambda c: themes.insert_theme(
            c,
            application_id=application_id,
            theme_id=str(uuid.uuid4()),
            change=change,
            limit=50,
            now_ms=T0,
        )
    )


def room_count(db: Database, application_id: str) -> int:
    def read(conn: Any) -> int:
        return int(
            conn.fetchone("SELECT room_count FROM applications WHERE id = ?", (application_id,))[0]
        )

    found: int = db.write_blocking(read)
    return found


def stored_codes(db: Database, application_id: str) -> dict[str, str]:
    rows = db.write_blocking(
        lambda c: c.fetchall(
            "SELECT id, meeting_code FROM rooms WHERE application_id = ?", (application_id,)
        )
    )
    return {row[0]: row[1] for row in rows}


def assert_made_for(records: list[Any], batch: list[rooms.RoomInsert], db: Database) -> None:
    """Each record is its insert's room, in order, with the id and meeting code its serial
    derives (meetd.domain.room_keys), every serial its own."""
    assert [r.display_name for r in records] == [i.new.display_name for i in batch]
    keys = db.write_blocking(rooms.keys_of)
    assert [(r.id, r.meeting_code) for r in records] == [
        (keys.room_id(r.serial), keys.meeting_code(r.serial)) for r in records
    ]
    assert len({r.serial for r in records}) == len(records)


def test_inserts_together_as_one_after_another(db: Database, application_id: str) -> None:
    theme = new_theme(db, application_id)
    batch = [
        room_insert(application_id),
        room_insert(application_id),
        room_insert(application_id, theme_id=theme.id),
        room_insert(application_id, type="long_term", expires_at="2027-01-15T10:00:00Z"),
    ]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))

    assert_made_for(records, batch, db)
    assert records[2].theme_id == theme.id
    assert records[3].type == "long_term"
    assert stored_codes(db, application_id) == {r.id: r.meeting_code for r in records}
    assert room_count(db, application_id) == 4


def test_the_default_theme_and_many_rooms(db: Database, application_id: str) -> None:
    """Rooms without a theme take the application's default, and a thousand rooms at once
    (a thousand statements in one pipeline) are inserted all the same."""
    theme = new_theme(db, application_id)
    first = [room_insert(application_id) for _ in range(1_001)]
    db.write_blocking(lambda c: rooms.insert_rooms(c, first))
    db.write_blocking(lambda c: themes.set_default_theme(c, application_id, theme.id))
    batch = [room_insert(application_id), room_insert(application_id, theme_id=None)]
    themed, unthemed = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))

    assert len(stored_codes(db, application_id)) == 1_003
    assert room_count(db, application_id) == 1_003
    assert (themed.theme_id, unthemed.theme_id) == (theme.id, None)


def test_rooms_of_several_applications_together(db: Database, application_id: str) -> None:
    """Each application's rooms are counted in their own application, and only the one with a
    default theme gives it to its rooms that name none."""
    other = new_application(db)
    theme = new_theme(db, other)
    db.write_blocking(lambda c: themes.set_default_theme(c, other, theme.id))
    batch = [
        room_insert(application_id),
        room_insert(other),
        room_insert(application_id),
        room_insert(other, theme_id=None),
        room_insert(other),
    ]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))

    assert_made_for(records, batch, db)
    assert [r.application_id for r in records] == [i.application_id for i in batch]
    assert [r.theme_id for r in records] == [None, theme.id, None, None, theme.id]
    assert [r.short_company_url for r in records] == [None] * 5  # the theme has none
    assert (room_count(db, application_id), room_count(db, other)) == (2, 3)
    assert len(stored_codes(db, application_id)) == 2
    assert len(stored_codes(db, other)) == 3
    serials = [r.serial for r in records]
    assert len(set(serials)) == 5


def test_later_rooms_take_the_next_serials(db: Database, application_id: str) -> None:
    first_batch = [room_insert(application_id)]
    first = db.write_blocking(lambda c: rooms.insert_rooms(c, first_batch))
    batch = [room_insert(application_id), room_insert(application_id)]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))

    assert_made_for(first + records, first_batch + batch, db)
    assert [r.serial for r in records] == [first[0].serial + 1, first[0].serial + 2]
    assert stored_codes(db, application_id) == {r.id: r.meeting_code for r in first + records}


def test_one_failing_room_fails_the_call(db: Database, application_id: str) -> None:
    batch = [room_insert(application_id), room_insert(application_id, theme_id=str(uuid.uuid4()))]
    with pytest.raises(BadRequestError, match=r"theme id .* not found"):
        db.write_blocking(lambda c: rooms.insert_rooms(c, batch))
    assert stored_codes(db, application_id) == {}
    assert room_count(db, application_id) == 0


def run_together(db: Database, batch: list[rooms.RoomInsert]) -> tuple[list[Any], list[int]]:
    """Every insert as its own concurrent request, all queued before the writer takes the
    next batch; the results, and the size of each call the writer made."""
    calls: list[int] = []

    def insert_rooms(conn: Any, inserts: list[rooms.RoomInsert]) -> list[rooms.RoomRecord]:
        calls.append(len(inserts))
        return rooms.insert_rooms(conn, inserts)

    gate = threading.Event()

    async def main() -> list[Any]:
        if db.dialect == "postgresql":  # hold the writer thread until every request is queued
            held = asyncio.ensure_future(db.write(lambda c: gate.wait(10)))
            await asyncio.sleep(0.05)
        requests = [
            asyncio.ensure_future(db.write_together(insert_rooms, insert)) for insert in batch
        ]
        await asyncio.sleep(0.05)
        gate.set()
        if db.dialect == "postgresql":
            await held
        return await asyncio.gather(*requests, return_exceptions=True)

    return asyncio.run(main()), calls


def test_concurrent_requests_share_one_call(db: Database, application_id: str) -> None:
    batch = [room_insert(application_id) for _ in range(8)]
    results, calls = run_together(db, batch)
    assert_made_for(results, batch, db)
    assert room_count(db, application_id) == 8
    assert calls == [8]


def test_concurrent_requests_each_get_their_own_room_or_error(
    db: Database, application_id: str
) -> None:
    """Requests queued together share the writer's batch; one that fails takes none of the
    others with it, and the count includes only the rooms inserted."""
    missing_theme = str(uuid.uuid4())
    batch = [
        room_insert(application_id),
        room_insert(str(uuid.uuid4())),  # no such application
        room_insert(application_id),
        room_insert(application_id, theme_id=missing_theme),
        *[room_insert(application_id) for _ in range(6)],
    ]

    results, calls = run_together(db, batch)
    # All together first; after the failures, one at a time.
    assert calls[0] == len(batch)
    assert set(calls[1:]) == {1}
    assert isinstance(results[1], NotFoundError)
    assert isinstance(results[3], BadRequestError)
    inserted = [r for r in results if isinstance(r, rooms.RoomRecord)]
    assert_made_for(inserted, [i for n, i in enumerate(batch) if n not in (1, 3)], db)
    assert set(stored_codes(db, application_id)) == {r.id for r in inserted}
    assert room_count(db, application_id) == 8


def test_any_text_is_stored_as_it_was_sent(db: Database, application_id: str) -> None:
    """PostgreSQL takes a batch's rooms by COPY, whose text format escapes tabs, newlines and
    backslashes: every character must come back as it went in."""
    awkward = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", "\\.", "é ✓ 🙂", "quote \"'", ""]
    batch = [
        room_insert(application_id, display_name=text or "x", metadata=text) for text in awkward
    ]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, batch))
    stored = db.write_blocking(
        lambda c: c.fetchall(
            "SELECT display_name, metadata, options FROM rooms WHERE application_id = ?"
            " ORDER BY serial",
            (application_id,),
        )
    )
    assert [(row[0], row[1]) for row in stored] == [(text or "x", text) for text in awkward]
    assert [r.display_name for r in records] == [text or "x" for text in awkward]
