"""The callback outbox (meetd.store.events) on SQLite and PostgreSQL: where an event goes, which
events a worker may claim (the oldest pending of each room, due, not leased), how attempts
are written down, and that an event lives and dies with the change that caused it."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from typing import Any

import pytest

from meetd.domain.rooms import parse_new_room
from meetd.errors import NotFoundError
from meetd.store import accounts, events, migrations, rooms
from meetd.store.database import Connection, Database, open_database
from meetd.sweeper import expire_due
from tests import support

T0 = 1_800_000_000_000
LEASE = 30_000
SCHEDULE = (10, 60, 600)
HOOK = "https://hooks.example.test/rooms"


def set_urls(db: Database, application_id: str, **urls: str) -> None:
    db.write_blocking(
        lambda c: accounts.update_application(
            c, application_id, callback_urls={f"{kind}_callback_url": u for kind, u in urls.items()}
        )
    )


def new_room(db: Database, application_id: str, **body: Any) -> str:
    """A room inserted as ``POST /rooms`` inserts it."""
    new = parse_new_room({"display_name": "r", **body}, now_ms=T0, min_lead_seconds=600)
    insert = rooms.RoomInsert(
        application_id=application_id,
        new=new,
        expires_at=T0 + 600_000,
        created_at=T0,
        host_participant_id=str(uuid.uuid4()),
        host_token="t",
    )
    (record,) = db.write_blocking(lambda c: rooms.insert_rooms(c, [insert]))
    return record.id


def emit_in(conn: Connection, application_id: str, room_id: str, at: int) -> events.EventRecord:
    event = {"event": "session:started", "session_id": "s", "room_id": room_id}
    return events.emit_event(
        conn,
        application_id=application_id,
        room_id=room_id,
        event=event,
        metadata="meta",
        now_ms=at,
    )


def emit(
    db: Database, application_id: str, room_id: str, event_type: str = "room:expired", at: int = T0
) -> events.EventRecord:
    event = {"event": event_type, "room_id": room_id}
    return db.write_blocking(
        lambda c: events.emit_event(
            c,
            application_id=application_id,
            room_id=room_id,
            event=event,
            metadata=None,
            now_ms=at,
        )
    )


def claim(db: Database, at: int, limit: int = 100) -> list[events.Claimed]:
    return db.write_blocking(
        lambda c: events.claim_due_events(c, now_ms=at, lease_ms=LEASE, limit=limit)
    )


def record(db: Database, at: int, *outcomes: events.Outcome) -> None:
    db.write_blocking(
        lambda c: events.record_outcomes(c, list(outcomes), now_ms=at, schedule=SCHEDULE)
    )


def ok(event: events.Claimed) -> events.Outcome:
    return events.Outcome(event.serial, True, 204, None, "")


def failed(event: events.Claimed) -> events.Outcome:
    return events.Outcome(event.serial, False, 500, "HTTP 500", "oops")


def read(db: Database, application_id: str, event_id: str) -> events.EventRecord:
    return db.read_blocking(lambda c: events.get_event(c, application_id, event_id))


def ids(claimed: list[events.Claimed]) -> list[str]:
    return [event.id for event in claimed]


# -- where an event goes ------------------------------------------------------------------------


def test_the_rooms_own_url_comes_before_the_applications(db: Database, application_id: str) -> None:
    set_urls(db, application_id, rooms=HOOK, sessions="https://app.example.test/sessions")
    own = "https://own.example.test/rooms"
    room = new_room(db, application_id, callback_urls={"rooms_callback_url": own})
    plain = new_room(db, application_id)
    assert emit(db, application_id, room).url == own
    assert emit(db, application_id, plain).url == HOOK
    # The room overrides only the kind it names.
    assert emit(db, application_id, room, "session:started").url == (
        "https://app.example.test/sessions"
    )


def test_without_any_url_the_event_is_kept_as_no_url(db: Database, application_id: str) -> None:
    set_urls(db, application_id, sessions="https://app.example.test/sessions")
    room = new_room(db, application_id)
    event = emit(db, application_id, room)
    assert (event.status, event.url, event.next_attempt_at, event.attempts) == (
        "no_url",
        None,
        None,
        0,
    )
    assert claim(db, T0 + 86_400_000) == []
    assert read(db, application_id, event.id) == event


def test_an_event_is_pending_at_once_with_its_body(db: Database, application_id: str) -> None:
    set_urls(db, application_id, rooms=HOOK)
    room = new_room(db, application_id)
    event = emit(db, application_id, room, at=T0 + 5)
    assert (event.status, event.next_attempt_at, event.created_at) == ("pending", T0 + 5, T0 + 5)
    assert event.payload == {
        "event": "room:expired",
        "room_id": room,
        "event_id": event.id,
        "timestamp": "2027-01-15T08:00:00.005Z",
    }
    assert (event.kind, event.type, event.room_id) == ("rooms", "room:expired", room)


def test_an_oversized_body_is_refused(db: Database, application_id: str) -> None:
    room = new_room(db, application_id)
    event = {"event": "room:expired", "room_id": room, "padding": "x" * 20_000}
    with pytest.raises(ValueError, match="too large"):
        db.write_blocking(
            lambda c: events.emit_event(
                c,
                application_id=application_id,
                room_id=room,
                event=event,
                metadata=None,
                now_ms=T0,
            )
        )


# -- claiming -------------------------------------------------------------------------------


@pytest.fixture
def hooked(db: Database, application_id: str) -> str:
    set_urls(db, application_id, rooms=HOOK, sessions=HOOK)
    return application_id


def test_a_claim_carries_what_sending_needs(db: Database, hooked: str) -> None:
    room = new_room(db, hooked)
    stored = db.write_blocking(lambda c: emit_in(c, hooked, room, T0))
    (claimed,) = claim(db, T0)
    secret = db.read_blocking(lambda c: accounts.get_application(c, hooked)).signature_secret
    assert claimed == events.Claimed(
        serial=stored.serial,
        id=stored.id,
        application_id=hooked,
        room_id=room,
        type="session:started",
        body=stored.body.encode(),
        metadata="meta",
        url=HOOK,
        attempt=1,
        signature_secret=secret,
        lease_until=T0 + LEASE,
    )
    after = read(db, hooked, stored.id)
    assert (after.attempts, after.last_attempt_at, after.status) == (1, T0, "pending")


def test_only_the_oldest_pending_event_of_each_room_is_claimed(db: Database, hooked: str) -> None:
    a, b = new_room(db, hooked), new_room(db, hooked)
    a1, a2, b1, a3 = (emit(db, hooked, r, "session:started") for r in (a, a, b, a))
    first = claim(db, T0)
    assert ids(first) == [a1.id, b1.id]
    assert claim(db, T0) == []  # both in flight; a2 waits for a1
    record(db, T0, *(ok(event) for event in first))
    second = claim(db, T0)
    assert ids(second) == [a2.id]
    record(db, T0, ok(second[0]))
    assert ids(claim(db, T0)) == [a3.id]


def test_a_failing_event_holds_back_its_room_and_no_other(db: Database, hooked: str) -> None:
    stuck, flowing = new_room(db, hooked), new_room(db, hooked)
    s1, s2 = emit(db, hooked, stuck), emit(db, hooked, stuck, "session:started")
    f1, f2 = emit(db, hooked, flowing), emit(db, hooked, flowing, "session:started")
    first = claim(db, T0)
    assert ids(first) == [s1.id, f1.id]
    record(db, T0, failed(first[0]), ok(first[1]))
    assert ids(claim(db, T0)) == [f2.id]  # the other room flows on
    assert claim(db, T0 + SCHEDULE[0] * 1000 - 1) == []
    assert ids(claim(db, T0 + SCHEDULE[0] * 1000)) == [s1.id]  # retried, s2 still waits
    assert read(db, hooked, s2.id).attempts == 0


def test_an_event_is_due_at_next_attempt_at(db: Database, hooked: str) -> None:
    room = new_room(db, hooked)
    event = emit(db, hooked, room, at=T0 + 1_000)
    assert claim(db, T0 + 999) == []
    assert ids(claim(db, T0 + 1_000)) == [event.id]


def test_a_lease_that_runs_out_is_claimed_again(db: Database, hooked: str) -> None:
    """The crash case: a worker claimed the event and died before writing how it went."""
    room = new_room(db, hooked)
    event = emit(db, hooked, room)
    (first,) = claim(db, T0)
    assert claim(db, T0 + LEASE - 1) == []
    (again,) = claim(db, T0 + LEASE)
    assert (again.id, first.attempt, again.attempt) == (event.id, 1, 2)
    # The dead worker's late outcome still counts; so does the new one's.
    record(db, T0 + LEASE + 1, ok(again))
    assert read(db, hooked, event.id).status == "delivered"


def test_two_claims_in_a_row_never_return_the_same_event(db: Database, hooked: str) -> None:
    room_ids = [new_room(db, hooked) for _ in range(6)]
    for i in range(18):
        emit(db, hooked, room_ids[i % 6], "session:started")
    seen: list[str] = []
    for at in (T0, T0, T0 + 1):
        claimed = claim(db, at, limit=4)
        assert not set(ids(claimed)) & set(seen)
        seen += ids(claimed)
        record(db, at, *(ok(event) for event in claimed[:2]))  # the rest stay in flight
    assert len(seen) == len(set(seen)) == 10  # 4 + 4 + the 2 rooms not in flight


def test_claims_are_limited_and_in_serial_order(db: Database, hooked: str) -> None:
    made = [emit(db, hooked, new_room(db, hooked)) for _ in range(5)]
    assert ids(claim(db, T0, limit=3)) == [event.id for event in made[:3]]
    assert ids(claim(db, T0, limit=3)) == [event.id for event in made[3:]]


# -- recording outcomes -----------------------------------------------------------------------


def test_failures_are_retried_on_the_schedule_then_the_event_fails(
    db: Database, hooked: str
) -> None:
    room = new_room(db, hooked)
    event = emit(db, hooked, room)
    now = T0
    for step, wait in enumerate(SCHEDULE, start=1):
        (attempt,) = claim(db, now)
        assert attempt.attempt == step
        record(db, now, failed(attempt))
        stored = read(db, hooked, event.id)
        assert (stored.status, stored.next_attempt_at) == ("pending", now + wait * 1000)
        assert (stored.last_status_code, stored.last_error, stored.last_response) == (
            500,
            "HTTP 500",
            "oops",
        )
        assert claim(db, now + wait * 1000 - 1) == []
        now += wait * 1000
    (last,) = claim(db, now)
    assert last.attempt == 1 + len(SCHEDULE)
    record(db, now, events.Outcome(last.serial, False, None, "timed out after 5 s", None))
    stored = read(db, hooked, event.id)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("failed", 4, None)
    assert (stored.last_status_code, stored.last_error) == (None, "timed out after 5 s")
    assert claim(db, now + 10**9) == []


def test_a_delivery_is_written_down(db: Database, hooked: str) -> None:
    room = new_room(db, hooked)
    event = emit(db, hooked, room)
    (first,) = claim(db, T0)
    record(db, T0, failed(first))
    (second,) = claim(db, T0 + SCHEDULE[0] * 1000)
    record(db, T0 + 10_500, events.Outcome(second.serial, True, 200, None, "thanks"))
    stored = read(db, hooked, event.id)
    assert (stored.status, stored.attempts, stored.delivered_at) == ("delivered", 2, T0 + 10_500)
    assert (stored.last_status_code, stored.last_error, stored.last_response) == (
        200,
        None,
        "thanks",
    )
    assert stored.next_attempt_at is None
    pending = db.read_blocking(
        lambda c: c.fetchone("SELECT COUNT(*) FROM events WHERE status = 'pending'")[0]
    )
    assert pending == 0


def test_an_outcome_for_an_event_redelivered_meanwhile_is_ignored(
    db: Database, hooked: str
) -> None:
    """Redelivery while an attempt is in flight starts a new round; the old attempt's
    outcome must neither end it nor break the batch it is written with."""
    room, other = new_room(db, hooked), new_room(db, hooked)
    event = emit(db, hooked, room)
    neighbour = emit(db, hooked, other)
    in_flight = claim(db, T0)
    db.write_blocking(lambda c: events.redeliver_event(c, hooked, event.id, now_ms=T0 + 1))
    record(db, T0 + 2, failed(in_flight[0]), ok(in_flight[1]))
    stored = read(db, hooked, event.id)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("pending", 0, T0 + 1)
    assert read(db, hooked, neighbour.id).status == "delivered"
    (again,) = claim(db, T0 + 2)
    assert (again.id, again.attempt) == (event.id, 1)


# -- the log: listing and redelivery -----------------------------------------------------------


def test_listing_filters_and_counts(db: Database, hooked: str) -> None:
    a, b = new_room(db, hooked), new_room(db, hooked)
    made = [emit(db, hooked, r, t) for r, t in ((a, "room:expired"), (b, "session:started"))]
    made.append(emit(db, hooked, a, "session:started"))
    record(db, T0, *(ok(event) for event in claim(db, T0)))

    def page(**filters: Any) -> events.EventPage:
        return db.read_blocking(lambda c: events.list_events(c, hooked, page_size=2, **filters))

    everything = page()
    assert [e.id for e in everything.events] == [made[0].id, made[1].id]
    assert (everything.total, everything.has_prev, everything.has_next) == (3, False, True)
    assert [e.id for e in page(room_id=a).events] == [made[0].id, made[2].id]
    assert [e.id for e in page(event_type="session:started").events] == [made[1].id, made[2].id]
    assert [e.id for e in page(status="pending").events] == [made[2].id]
    assert page(status="failed", room_id=b).total == 0
    later = page(start_id=made[1].serial + 1)
    assert ([e.id for e in later.events], later.has_prev, later.has_next) == (
        [made[2].id],
        True,
        False,
    )


def test_check_room_knows_deleted_rooms_and_not_other_applications(
    db: Database, application_id: str
) -> None:
    room = new_room(db, application_id)
    db.write_blocking(lambda c: rooms.delete_room(c, application_id, room, T0 + 1))
    db.read_blocking(lambda c: events.check_room(c, application_id, room))
    other = db.write_blocking(
        lambda c: accounts.create_account(c, name="b", api_key="kb", api_secret="s", now_ms=T0)
    )
    for application, room_id in ((other.default_application_id, room), (application_id, "x")):
        with pytest.raises(NotFoundError, match=f"The room with id: {room_id} could not"):
            db.read_blocking(lambda c, a=application, r=room_id: events.check_room(c, a, r))


# -- an event lives and dies with its change -----------------------------------------------------


class Refused(Exception):
    pass


def test_an_event_whose_change_rolls_back_does_not_exist(db: Database, application_id: str) -> None:
    room = new_room(db, application_id)

    def expire_then_fail(conn: Connection) -> None:
        assert [r.id for r in expire_due(conn, T0 + 600_000)] == [room]
        raise Refused("the request failed after the expiry")

    with pytest.raises(Refused):
        db.write_blocking(expire_then_fail)
    count = "SELECT COUNT(*) FROM events"
    assert db.read_blocking(lambda c: c.fetchone(count)[0]) == 0
    available = "SELECT is_available FROM rooms WHERE id = ?"
    assert db.read_blocking(lambda c: bool(c.fetchone(available, (room,))[0])) is True
    # Done again without the failure, the expiry and its one event commit together.
    assert [r.id for r in db.write_blocking(lambda c: expire_due(c, T0 + 600_000))] == [room]
    assert db.read_blocking(lambda c: c.fetchone(count)[0]) == 1


def test_a_failing_write_in_a_shared_commit_loses_only_its_own_events(
    db: Database, hooked: str
) -> None:
    room_ids = [new_room(db, hooked) for _ in range(4)]

    def emit_then_fail(conn: Connection) -> None:
        emit_in(conn, hooked, room_ids[2], T0)
        raise Refused("doomed")

    async def main() -> list[Any]:
        writes = [db.write(lambda c, r=r: emit_in(c, hooked, r, T0).id) for r in room_ids[:2]]
        writes.append(db.write(emit_then_fail))
        writes.append(db.write(lambda c: emit_in(c, hooked, room_ids[3], T0).id))
        return await asyncio.gather(*writes, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[2], Refused)
    listed = db.read_blocking(lambda c: events.list_events(c, hooked, page_size=10))
    assert [e.id for e in listed.events] == [results[0], results[1], results[3]]
    assert room_ids[2] not in {e.room_id for e in listed.events}


# -- several processes on one PostgreSQL database ----------------------------------------------


def test_concurrent_claims_on_postgres_skip_each_others_events() -> None:
    """Two connections claim at once (the first has not committed): FOR UPDATE SKIP LOCKED
    makes the second pass over the first's events — and the later events of its rooms."""
    with support.postgres_schema() as url:
        db = open_database(url)
        try:
            db.write_blocking(migrations.upgrade)
            account = db.write_blocking(
                lambda c: accounts.create_account(
                    c, name="a", api_key="k", api_secret="s", now_ms=T0
                )
            )
            app = account.default_application_id
            set_urls(db, app, rooms=HOOK, sessions=HOOK)
            room_ids = [new_room(db, app) for _ in range(4)]
            for room in room_ids * 2:
                emit(db, app, room, "session:started")
            first, second = db.backend.connect_writer(), db.backend.connect_writer()
            try:
                one = events.claim_due_events(first, now_ms=T0, lease_ms=LEASE, limit=2)
                taken: list[list[events.Claimed]] = []
                thread = threading.Thread(
                    target=lambda: taken.append(
                        events.claim_due_events(second, now_ms=T0, lease_ms=LEASE, limit=10)
                    )
                )
                thread.start()
                thread.join(timeout=10)
                assert not thread.is_alive(), "the second claim waited for the first"
                first.raw.commit()
                second.raw.commit()
            finally:
                first.raw.close()
                second.raw.close()
            (two,) = taken
            assert {e.room_id for e in one} == set(room_ids[:2])
            assert {e.room_id for e in two} == set(room_ids[2:])
            assert len(one) + len(two) == 4
        finally:
            db.close()


def leased(outcome: events.Outcome, event: events.Claimed) -> events.Outcome:
    """``outcome`` as the sender makes it: naming its attempt and lease."""
    return dataclasses.replace(outcome, attempt=event.attempt, lease_until=event.lease_until)


def test_an_outcome_counts_only_under_its_own_lease(db: Database, hooked: str) -> None:
    """A worker whose lease ran out (it hung) reports late, after another worker took the
    event: the late report changes nothing; the current holder's does."""
    room = new_room(db, hooked)
    event = emit(db, hooked, room)
    (first,) = claim(db, T0)
    (second,) = claim(db, T0 + LEASE)
    record(db, T0 + LEASE + 1, leased(failed(first), first))
    stored = read(db, hooked, event.id)
    assert (stored.status, stored.last_status_code, stored.attempts) == ("pending", None, 2)
    record(db, T0 + LEASE + 2, leased(ok(second), second))
    assert read(db, hooked, event.id).status == "delivered"


def test_leased_failures_follow_the_schedule_in_one_batch(db: Database, hooked: str) -> None:
    rooms = [new_room(db, hooked) for _ in range(3)]
    emitted = [emit(db, hooked, room) for room in rooms]
    claimed = claim(db, T0)
    record(db, T0 + 5, *(leased(failed(event), event) for event in claimed))
    for event in emitted:
        stored = read(db, hooked, event.id)
        assert (stored.status, stored.next_attempt_at) == ("pending", T0 + 5 + SCHEDULE[0] * 1000)
        assert (stored.last_status_code, stored.last_error) == (500, "HTTP 500")
