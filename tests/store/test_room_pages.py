"""List pages of concurrent requests (meetd.store.rooms.list_room_pages): on PostgreSQL the
pages asked in one loop iteration come from one statement, and each must be the page its
request would have read alone: the same rooms, links and total, whatever the others ask."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meetd.store import rooms
from meetd.store.database import Database
from tests.store.conftest import new_application
from tests.store.test_room_inserts import room_insert

T_DELETED = 1_900_000_000_000


def seeded(db: Database) -> dict[str, list[int]]:
    """Two applications whose rooms interleave, one room of the first deleted, and a third
    application with no rooms: each application's live serials, ascending."""
    first, second, empty = new_application(db), new_application(db), new_application(db)
    inserts = [room_insert(first if n % 3 else second) for n in range(14)]
    records = db.write_blocking(lambda c: rooms.insert_rooms(c, inserts))
    db.write_blocking(lambda c: rooms.delete_room(c, first, records[4].id, T_DELETED))
    live: dict[str, list[int]] = {first: [], second: [], empty: []}
    for record in records:
        if record.id != records[4].id:
            live[record.application_id].append(record.serial)
    return {application: sorted(serials) for application, serials in live.items()}


def expected(serials: list[int], ask: Any) -> tuple[list[int], bool, bool, int]:
    """The page the contract describes for ``ask``, worked out from the application's live
    serials (ascending): its serials, whether rooms lie before and after it, the total."""
    _, start_id, end_id, size = ask
    if start_id is not None and end_id is not None and start_id >= end_id:
        return [], False, False, len(serials)  # bounds that hold no serial: no neighbours
    if start_id is None and end_id is not None:  # the last rooms before end_id
        candidates = [s for s in serials if s < end_id]
        after = any(s >= end_id for s in serials)
        return candidates[-size:], len(candidates) > size, after, len(serials)
    low = start_id or 0
    candidates = [s for s in serials if s >= low and (end_id is None or s < end_id)]
    before = start_id is not None and any(s < start_id for s in serials)
    after = len(candidates) > size or (end_id is not None and any(s >= end_id for s in serials))
    return candidates[:size], before, after, len(serials)


def summary(page: rooms.RoomPage) -> tuple[list[int], bool, bool, int]:
    return [row[0] for row in page.rows], page.has_prev, page.has_next, page.total


def read(db: Database, asks: list[Any]) -> tuple[list[rooms.RoomPage], list[rooms.RoomPage]]:
    """The pages asked together, and each asked alone."""

    async def main() -> tuple[list[rooms.RoomPage], list[rooms.RoomPage]]:
        together = await db.read(lambda c: rooms.list_room_pages(c, asks))
        alone = [
            await db.read(
                lambda c, ask=ask: rooms.list_rooms(
                    c, ask[0], start_id=ask[1], end_id=ask[2], page_size=ask[3]
                )
            )
            for ask in asks
        ]
        await db.close_reads()
        return together, alone

    return asyncio.run(main())


def test_each_page_is_the_page_read_alone(db: Database) -> None:
    live = seeded(db)
    first, second, empty = live  # in the order seeded() made them
    s = live[first]
    asks = [
        (first, None, None, 3),  # the first page
        (second, None, None, 20),  # all of it
        (first, s[2], None, 2),  # from a serial on
        (first, None, s[5], 2),  # the last rooms before a serial (walked backwards)
        (first, s[1], s[6], 4),  # between two serials
        (first, s[5], s[3], 3),  # start after end: empty
        (first, s[-1] + 1, None, 5),  # past the end: empty, with rooms before it
        (empty, None, None, 5),  # no rooms at all
        (first, None, s[0], 5),  # before the first room: empty, with rooms after it
        (first, None, None, 3),  # the first ask again
    ]
    together, alone = read(db, asks)
    assert together == alone
    # What each page must be, worked out from the serials alone.
    assert len(s) == 8
    assert [[row[0] for row in page.rows] for page in together] == [
        s[:3],
        [row[0] for row in together[1].rows],
        s[2:4],
        s[3:5],
        s[1:5],
        [],
        [],
        [],
        [],
        s[:3],
    ]
    assert len(together[1].rows) == 5
    assert all(row[2] == second for row in together[1].rows)
    assert [page.total for page in together] == [8, 5, 8, 8, 8, 8, 8, 0, 8, 8]
    assert [(page.has_prev, page.has_next) for page in together] == [
        (False, True),
        (False, False),
        (True, True),
        (True, True),
        (True, True),
        (False, False),  # start after end: no place among the rooms, so no neighbours
        (True, False),
        (False, False),
        (False, True),
        (False, True),
    ]


@pytest.fixture
def db_with_rooms(db: Database) -> tuple[Database, dict[str, list[int]]]:
    return db, seeded(db)


@settings(
    max_examples=40,
    deadline=None,
    # The database is shared between examples, which only read it.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    count=st.integers(1, 8),
)
def test_pages_asked_together_match_pages_asked_alone(
    db_with_rooms: tuple[Database, dict[str, list[int]]], data: Any, count: int
) -> None:
    db, serials = db_with_rooms
    bound = st.none() | st.integers(0, 20)
    asks = data.draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(serials)), bound, bound, st.integers(1, 6)),
            min_size=count,
            max_size=count,
        )
    )
    together, alone = read(db, asks)
    assert together == alone
    assert [summary(page) for page in together] == [expected(serials[a[0]], a) for a in asks]
