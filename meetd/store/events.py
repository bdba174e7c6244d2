"""The callback outbox: events written with the change that causes them, claimed by one
delivery worker at a time, and their delivery log.

:func:`emit_event` runs inside the caller's transaction, so a room never expires without its
``room:expired`` row and no row exists for a change that rolled back. Delivery workers claim
due events with :func:`claim_due_events`: an UPDATE that leases them (``claimed_until``) —
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes never take the same
event — and that takes only the oldest pending event of each room, so a room's events go
out in order and a failing one holds back the later ones of its room, no other room's. A
worker killed mid-delivery leaves its lease to run out; the event is then claimed again
(at least once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from meetd.domain.events import (
    event_body,
    kind_of,
    new_event_id,
    next_attempt_at,
    room_expired,
)
from meetd.domain.rooms import room_not_found
from meetd.errors import NotFoundError
from meetd.store import paging
from meetd.store.database import Connection, Reader
from meetd.store.rooms import ExpiredRoom, room_match

_decode = msgspec.json.decode

# The contract's bodies are a few hundred bytes (metadata is at most 500 characters); the
# bound keeps a bug from filling the log.
MAX_BODY_CHARACTERS = 16 * 1024

_COLUMNS = (
    "serial, id, application_id, room_id, type, kind, body, metadata, url, status, attempts,"
    " next_attempt_at, last_attempt_at, last_status_code, last_error, last_response,"
    " created_at, delivered_at"
)


@dataclasses.dataclass(slots=True)
class EventRecord:
    serial: int
    id: str
    application_id: str
    room_id: str
    type: str
    kind: str
    body: str
    metadata: str | None
    url: str | None
    status: str
    attempts: int
    next_attempt_at: int | None
    last_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    created_at: int
    delivered_at: int | None

    @property
    def payload(self) -> Any:
        return _decode(self.body)


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """An event leased to this worker for one attempt, with what sending it needs."""

    serial: int
    id: str
    application_id: str
    room_id: str
    type: str
    body: bytes
    metadata: str | None
    url: str
    attempt: int
    signature_secret: str
    lease_until: int


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went. ``status_code`` None: no answer (refused, timed out)."""

    serial: int
    delivered: bool
    status_code: int | None
    error: str | None
    response: str | None
    # From the claim: which attempt this was and the lease it ran under. With them the
    # outcome is written in one batched statement, and only while the lease is still this
    # attempt's (not run out and taken by another worker, nor reset by a redelivery).
    attempt: int | None = None
    lease_until: int | None = None


_INSERT = (
    "INSERT INTO events (id, application_id, room_id, type, kind, body, metadata, url,"
    " status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _room_url(options: str | None, column: str) -> str | None:
    """A room's own URL for ``column`` (e.g. ``rooms_callback_url``), from its options JSON."""
    if options is None:
        return None
    url = _decode(options).get("callback_urls", {}).get(column)
    return str(url) if url else None


def _callback_url(conn: Connection, application_id: str, room_id: str, kind: str) -> str | None:
    """The room's own URL for ``kind``, else the application's, else None."""
    column = f"{kind}_callback_url"
    match, params = room_match(conn, room_id)
    row = conn.fetchone(
        f"SELECT r.options, a.{column} FROM applications a"
        f" LEFT JOIN rooms r ON {match} AND r.application_id = a.id WHERE a.id = ?",
        (*params, application_id),
    )
    if row is None:
        raise NotFoundError(f"application {application_id} not found")
    options, application_url = row
    return _room_url(options, column) or application_url or None


def _new_row(
    *,
    application_id: str,
    room_id: str,
    event: dict[str, Any],
    metadata: str | None,
    url: str | None,
    now_ms: int,
) -> tuple[Any, ...]:
    """The values of :data:`_INSERT` for a new event: pending when it has a URL, else kept
    in the log as ``no_url``."""
    event_type = str(event["event"])
    event_id = new_event_id()
    body = event_body(event, event_id=event_id, now_ms=now_ms).decode()
    if len(body) > MAX_BODY_CHARACTERS:
        raise ValueError(f"a {event_type} event of {len(body)} characters is too large")
    return (
        event_id,
        application_id,
        room_id,
        event_type,
        kind_of(event_type),
        body,
        metadata,
        url,
        "pending" if url else "no_url",
        now_ms if url else None,
        now_ms,
    )


def emit_event(
    conn: Connection,
    *,
    application_id: str,
    room_id: str,
    event: dict[str, Any],
    metadata: str | None,
    now_ms: int,
) -> EventRecord:
    """Record ``event`` (its ``event`` key names the type) for delivery, inside the caller's
    transaction. The URL is the one configured now; without one the event is kept in the log
    as ``no_url`` and not sent."""
    url = _callback_url(conn, application_id, room_id, kind_of(str(event["event"])))
    values = _new_row(
        application_id=application_id,
        room_id=room_id,
        event=event,
        metadata=metadata,
        url=url,
        now_ms=now_ms,
    )
    return EventRecord(*conn.fetchone(f"{_INSERT} RETURNING {_COLUMNS}", values))


def emit_room_expired(conn: Connection, room: ExpiredRoom, *, now_ms: int) -> None:
    """``room:expired`` for a room the same transaction just expired or deleted."""
    emit_rooms_expired(conn, [room], now_ms=now_ms)


def emit_rooms_expired(conn: Connection, rooms: Sequence[ExpiredRoom], *, now_ms: int) -> None:
    """``room:expired`` for rooms the same transaction just expired: the applications' URLs
    read once, the rows written in one batched statement (a sweep expires up to 500)."""
    if not rooms:
        return
    column = "rooms_callback_url"
    ids = sorted({room.application_id for room in rooms})
    marks = ", ".join("?" for _ in ids)
    application_urls = dict(
        conn.fetchall(f"SELECT id, {column} FROM applications WHERE id IN ({marks})", ids)
    )
    rows = [
        _new_row(
            application_id=room.application_id,
            room_id=room.id,
            event=room_expired(
                room.id, room.type, expires_at=room.expires_at, created_at=room.created_at
            ),
            metadata=room.metadata,
            url=_room_url(room.options, column) or application_urls.get(room.application_id),
            now_ms=now_ms,
        )
        for room in rooms
    ]
    conn.executemany(_INSERT, rows)


def claim_due_events(conn: Connection, *, now_ms: int, lease_ms: int, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due events, the oldest pending one of each room at most."""
    skip_locked = " FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else ""
    # SQLite is told to walk the pending events' index: with statistics taken while most
    # events were pending (a receiver down), or while the log was small, it scanned the
    # whole log, which only grows, on every poll (twice a second), pending events or not.
    # The UPDATE may only name that index with its condition. (On PostgreSQL, with that
    # condition, a second claim also returned an event the first had leased: SQLite only.)
    by_pending_index, only_pending = "", ""
    if conn.dialect == "sqlite":
        by_pending_index, only_pending = " INDEXED BY events_pending", "status = 'pending' AND "
    rows = conn.fetchall(
        f"UPDATE events{by_pending_index} SET claimed_until = ?, attempts = attempts + 1,"
        " last_attempt_at = ?"
        f" WHERE {only_pending}serial IN ("
        f"  SELECT e.serial FROM events e{by_pending_index}"
        "  WHERE e.status = 'pending' AND e.next_attempt_at <= ?"
        "  AND (e.claimed_until IS NULL OR e.claimed_until <= ?)"
        "  AND NOT EXISTS (SELECT 1 FROM events p WHERE p.status = 'pending'"
        "   AND p.room_id = e.room_id AND p.serial < e.serial)"
        f"  ORDER BY e.serial LIMIT ?{skip_locked})"
        " RETURNING serial, id, application_id, room_id, type, body, metadata, url, attempts",
        (now_ms + lease_ms, now_ms, now_ms, now_ms, limit),
    )
    if not rows:
        return []
    secrets = _signature_secrets(conn, {row[2] for row in rows})
    claimed = [
        Claimed(
            serial=row[0],
            id=row[1],
            application_id=row[2],
            room_id=row[3],
            type=row[4],
            body=row[5].encode(),
            metadata=row[6],
            url=row[7],
            attempt=row[8],
            signature_secret=secrets[row[2]],
            lease_until=now_ms + lease_ms,
        )
        for row in rows
    ]
    claimed.sort(key=lambda event: event.serial)
    return claimed


def _signature_secrets(conn: Connection, application_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(application_ids)
    marks = ", ".join("?" for _ in ids)
    rows = conn.fetchall(
        f"SELECT id, signature_secret FROM applications WHERE id IN ({marks})", ids
    )
    return {row[0]: row[1] for row in rows}


def record_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], *, now_ms: int, schedule: Sequence[int]
) -> None:
    """Write how attempts went: delivered, to be tried again on the schedule, or failed for
    good after the last attempt. An event no longer leased to the attempt (its lease ran out
    and another worker took it, or it was redelivered meanwhile) is left alone."""
    delivered: list[tuple[Any, ...]] = []
    failed: list[tuple[Any, ...]] = []
    for outcome in outcomes:
        if outcome.attempt is None or outcome.lease_until is None:
            _record_unleased(conn, outcome, now_ms, schedule)
        elif outcome.delivered:
            delivered.append(
                (now_ms, outcome.status_code, outcome.response, outcome.serial, outcome.lease_until)
            )
        else:
            retry_at = next_attempt_at(outcome.attempt, now_ms, schedule)
            failed.append(
                (
                    "pending" if retry_at is not None else "failed",
                    retry_at,
                    outcome.status_code,
                    outcome.error,
                    outcome.response,
                    outcome.serial,
                    outcome.lease_until,
                )
            )
    if delivered:
        conn.executemany(
            "UPDATE events SET status = 'delivered', delivered_at = ?, claimed_until = NULL,"
            " next_attempt_at = NULL, last_status_code = ?, last_error = NULL,"
            " last_response = ? WHERE serial = ? AND status = 'pending' AND claimed_until = ?",
            delivered,
        )
    if failed:
        conn.executemany(
            "UPDATE events SET status = ?, next_attempt_at = ?, claimed_until = NULL,"
            " last_status_code = ?, last_error = ?, last_response = ?"
            " WHERE serial = ? AND status = 'pending' AND claimed_until = ?",
            failed,
        )


def _record_unleased(
    conn: Connection, outcome: Outcome, now_ms: int, schedule: Sequence[int]
) -> None:
    """An outcome that does not say which attempt and lease it was (made by hand, as tests
    do): read the attempt count, and accept any lease."""
    row = conn.fetchone(
        "SELECT attempts FROM events WHERE serial = ? AND status = 'pending'"
        " AND claimed_until IS NOT NULL",
        (outcome.serial,),
    )
    if row is None:
        return
    if outcome.delivered:
        conn.execute(
            "UPDATE events SET status = 'delivered', delivered_at = ?, claimed_until = NULL,"
            " next_attempt_at = NULL, last_status_code = ?, last_error = NULL,"
            " last_response = ? WHERE serial = ?",
            (now_ms, outcome.status_code, outcome.response, outcome.serial),
        )
        return
    retry_at = next_attempt_at(int(row[0]), now_ms, schedule)
    conn.execute(
        "UPDATE events SET status = ?, next_attempt_at = ?, claimed_until = NULL,"
        " last_status_code = ?, last_error = ?, last_response = ? WHERE serial = ?",
        (
            "pending" if retry_at is not None else "failed",
            retry_at,
            outcome.status_code,
            outcome.error,
            outcome.response,
            outcome.serial,
        ),
    )


# -- the delivery log --------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class EventPage:
    events: list[EventRecord]
    total: int
    has_prev: bool
    has_next: bool


def event_not_found(event_id: str) -> NotFoundError:
    return NotFoundError(f"The event with id: {event_id} could not be found")


async def list_events(
    conn: Reader,
    application_id: str,
    *,
    page_size: int,
    start_id: int | None = None,
    end_id: int | None = None,
    room_id: str | None = None,
    event_type: str | None = None,
    status: str | None = None,
) -> EventPage:
    """One page of the application's log in serial order, the filters given applied: from
    ``start_id`` on, or the last events before ``end_id`` — rooms page the same way.

    The page walks the (application, serial) index, or (application, room, serial) for one
    room, or (application, status, serial) for one status, from its bound and stops after
    ``page_size`` matches, so its cost does not grow with the log. (A ``type`` that few
    events have makes the walk skip the others.) The total counts the matching events: that
    count does grow with the log.
    """
    # The key: the columns of the index the page walks. Other filters are checked on the way.
    key: list[tuple[str, Any]] = [("application_id", application_id)]
    index = "events_by_application"
    if room_id is not None:
        key.append(("room_id", room_id))
        index = "events_by_room"
    elif status is not None:
        key.append(("status", status))
        index = "events_by_status"
    conditions, params = ["TRUE"], []
    if event_type is not None:
        conditions.append("type = ?")
        params.append(event_type)
    if status is not None and room_id is not None:
        # A status beside a room is read on the room's index. The status is written so that no
        # index can answer it: as ``status = ?``, without statistics, the generic plan read the
        # application's events of that status (events_by_status) and kept the room's. And the
        # room is named by equality too: without it, that condition's low estimate made the
        # plan with statistics look for the page's neighbours along the primary key.
        conditions.append("room_id = ? AND status || '' = ?")
        params += [room_id, status]
    where = " AND ".join(conditions)
    rows, has_prev, has_next, total = await paging.page(
        conn,
        select=f"SELECT {_COLUMNS} FROM events",
        source="events",
        key=key,
        column="serial",
        index=index,
        where=where,
        params=params,
        start_id=start_id,
        end_id=end_id,
        page_size=page_size,
    )
    found = [EventRecord(*row) for row in rows]
    return EventPage(found, total, has_prev, has_next)


def check_room(conn: Connection, application_id: str, room_id: str) -> None:
    """Raise the rooms' 404 unless the application has this room. A deleted room counts: its
    ``room:expired`` stays in the log and may need sending again."""
    match, params = room_match(conn, room_id)
    row = conn.fetchone(
        f"SELECT 1 FROM rooms r WHERE {match} AND r.application_id = ?", (*params, application_id)
    )
    if row is None:
        raise room_not_found(room_id)


async def get_event(conn: Reader, application_id: str, event_id: str) -> EventRecord:
    row = await conn.row(
        f"SELECT {_COLUMNS} FROM events WHERE id = ? AND application_id = ?",
        (event_id, application_id),
    )
    if row is None:
        raise event_not_found(event_id)
    return EventRecord(*row)


async def redeliver_event(
    conn: Connection, application_id: str, event_id: str, *, now_ms: int
) -> EventRecord:
    """Send an event again now, to the URL configured now, in a new round of attempts
    (``docs/callbacks.md``): a pending one's attempts start over too, and one whose attempt
    is in flight is released for another (at least once: it may be sent twice)."""
    event = await get_event(conn, application_id, event_id)
    return _redeliver(conn, event, now_ms)


def redeliver_failed_events(
    conn: Connection, application_id: str, room_id: str, *, now_ms: int
) -> list[EventRecord]:
    """Send every failed event of a room again, oldest first."""
    # The status is written so that no index can answer it, which leaves the room's: as
    # ``status = 'failed'`` PostgreSQL, without statistics, read every failed event of the
    # application (on events_by_status) and kept the room's, 30 ms for 18 000 of them.
    rows = conn.fetchall(
        f"SELECT {_COLUMNS} FROM events WHERE application_id = ? AND room_id = ?"
        " AND status || '' = 'failed' ORDER BY serial",
        (application_id, room_id),
    )
    return [_redeliver(conn, EventRecord(*row), now_ms) for row in rows]


def _redeliver(conn: Connection, event: EventRecord, now_ms: int) -> EventRecord:
    url = _callback_url(conn, event.application_id, event.room_id, event.kind)
    status = "pending" if url else "no_url"
    row = conn.fetchone(
        "UPDATE events SET status = ?, url = ?, attempts = 0, next_attempt_at = ?,"
        f" claimed_until = NULL WHERE serial = ? RETURNING {_COLUMNS}",
        (status, url, now_ms if url else None, event.serial),
    )
    return EventRecord(*row)
