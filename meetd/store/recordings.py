"""Session and recording rows (contract §7).

A session is one continuous meeting in a room; a recording belongs to one session and, through
it, to one application. The realtime service writes them as meetings happen (insert, end,
change a recording's status and file); the API reads them and deletes uploaded recordings.

Every function takes a :class:`~meetd.store.database.Connection` already inside the right
transaction (see :mod:`meetd.store.database`); none commits on its own. Reads that the API
answers with take the caller's ``application_id``: another application's session or recording
is simply not found (contract §2, Tenancy).
"""

from __future__ import annotations

import dataclasses

from meetd.errors import ForbiddenError, NotFoundError
from meetd.store.database import Connection, Reader
from meetd.store.rooms import room_match

# A recording's life: started ⇄ paused → stopped → uploaded (the file is stored and linked).
STATUSES = ("started", "stopped", "paused", "uploaded")
UPLOADED = "uploaded"  # stored and linked; the only status that may be deleted

# Session ids are opaque (contract §7); anything longer than this, or holding a NUL (which
# PostgreSQL's text cannot store), names no session rather than reaching the database.
MAX_SESSION_ID_LENGTH = 255


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    room_id: str
    application_id: str
    started_at: int
    ended_at: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingRecord:
    id: str
    session_id: str
    application_id: str
    status: str
    started_at: int
    ended_at: int | None
    storage_key: str | None
    created_at: int

    @property
    def download_key(self) -> str | None:
        """The stored file to link to: there is one to download only once uploaded."""
        return self.storage_key if self.status == UPLOADED else None


def recording_not_found(recording_id: str) -> NotFoundError:
    """The answer of ``GET /recordings/{id}`` for a missing or foreign recording."""
    return NotFoundError(f"Recording {recording_id} was not found")


def recording_to_delete_not_found() -> NotFoundError:
    """The answer of ``DELETE /recordings/{id}``: Vonage named no id there."""
    return NotFoundError("Could not find recording")


# Vonage's words for a recording still in progress (its OpenAPI document, DELETE 403).
CANNOT_DELETE = "Can only delete recordings in 'uploaded' status"


def session_not_found(session_id: str) -> NotFoundError:
    return NotFoundError(f"Failed to find session recordings by id: {session_id}")


def is_session_id(text: str) -> bool:
    """Whether ``text`` can name a session at all (see :data:`MAX_SESSION_ID_LENGTH`)."""
    return 0 < len(text) <= MAX_SESSION_ID_LENGTH and "\x00" not in text


def recording_storage_key(application_id: str, recording_id: str) -> str:
    """Where a recording's file lives in the file store."""
    return f"recordings/{application_id}/{recording_id}.mp4"


_SESSION = "SELECT id, room_id, application_id, started_at, ended_at FROM sessions"
_RECORDING = (
    "SELECT id, session_id, application_id, status, started_at, ended_at, storage_key,"
    " created_at FROM recordings"
)


# -- sessions ----------------------------------------------------------------------------------
def insert_session(
    conn: Connection, *, session_id: str, room_id: str, started_at: int
) -> SessionRecord:
    """Start a session in a room; it belongs to the room's application."""
    if not is_session_id(session_id):
        raise ValueError(f"not a usable session id: {session_id!r}")
    match, params = room_match(conn, room_id)
    row = conn.fetchone(
        "INSERT INTO sessions (id, room_id, application_id, started_at)"
        f" SELECT ?, r.id, r.application_id, ? FROM rooms r WHERE {match}"
        " RETURNING id, room_id, application_id, started_at, ended_at",
        (session_id, started_at, *params),
    )
    if row is None:
        raise NotFoundError(f"room {room_id} not found")
    return SessionRecord(*row)


def end_session(conn: Connection, session_id: str, *, ended_at: int) -> SessionRecord:
    """Mark a session ended. Ending it again keeps the first end."""
    row = conn.fetchone(
        "UPDATE sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?"
        " RETURNING id, room_id, application_id, started_at, ended_at",
        (ended_at, session_id),
    )
    if row is None:
        raise NotFoundError(f"session {session_id} not found")
    return SessionRecord(*row)


async def get_session(conn: Reader, application_id: str, session_id: str) -> SessionRecord:
    row = await conn.row(
        f"{_SESSION} WHERE id = ? AND application_id = ?", (session_id, application_id)
    )
    if row is None:
        raise session_not_found(session_id)
    return SessionRecord(*row)


# -- recordings --------------------------------------------------------------------------------
def insert_recording(
    conn: Connection,
    *,
    recording_id: str,
    session_id: str,
    started_at: int,
    status: str = "started",
) -> RecordingRecord:
    """Start a recording of a session; it belongs to the session's application."""
    _check_status(status)
    row = conn.fetchone(
        "INSERT INTO recordings (id, session_id, application_id, status, started_at, created_at)"
        " SELECT ?, id, application_id, ?, ?, ? FROM sessions WHERE id = ?"
        " RETURNING id, session_id, application_id, status, started_at, ended_at, storage_key,"
        " created_at",
        (recording_id, status, started_at, started_at, session_id),
    )
    if row is None:
        raise NotFoundError(f"session {session_id} not found")
    return RecordingRecord(*row)


def update_recording(
    conn: Connection,
    recording_id: str,
    *,
    status: str | None = None,
    ended_at: int | None = None,
    storage_key: str | None = None,
) -> RecordingRecord:
    """Change a recording's status, end or stored file; what is None stays as it was."""
    if status is not None:
        _check_status(status)
    row = conn.fetchone(
        "UPDATE recordings SET status = COALESCE(?, status), ended_at = COALESCE(?, ended_at),"
        " storage_key = COALESCE(?, storage_key) WHERE id = ?"
        " RETURNING id, session_id, application_id, status, started_at, ended_at, storage_key,"
        " created_at",
        (status, ended_at, storage_key, recording_id),
    )
    if row is None:
        raise NotFoundError(f"recording {recording_id} not found")
    return RecordingRecord(*row)


async def get_recording(conn: Reader, application_id: str, recording_id: str) -> RecordingRecord:
    row = await conn.row(
        f"{_RECORDING} WHERE id = ? AND application_id = ?", (recording_id, application_id)
    )
    if row is None:
        raise recording_not_found(recording_id)
    return RecordingRecord(*row)


async def list_session_recordings(
    conn: Reader, application_id: str, session_id: str
) -> list[RecordingRecord]:
    """A session's recordings, earliest first; an unknown (or foreign) session is not found,
    a known one without recordings has an empty list."""
    await get_session(conn, application_id, session_id)
    rows = await conn.rows(
        f"{_RECORDING} WHERE session_id = ? ORDER BY started_at, created_at, id", (session_id,)
    )
    return [RecordingRecord(*row) for row in rows]


def delete_recording(conn: Connection, application_id: str, recording_id: str) -> str | None:
    """Delete an uploaded recording's row; return its file's key for the caller to delete
    once this transaction has committed (a file is never gone while its row still shows)."""
    row = conn.fetchone(
        "DELETE FROM recordings WHERE id = ? AND application_id = ? AND status = ?"
        " RETURNING storage_key",
        (recording_id, application_id, UPLOADED),
    )
    if row is not None:
        key: str | None = row[0]
        return key
    found = conn.fetchone(
        "SELECT status FROM recordings WHERE id = ? AND application_id = ?",
        (recording_id, application_id),
    )
    if found is None:
        raise recording_to_delete_not_found()
    raise ForbiddenError(CANNOT_DELETE)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"recording status must be one of {', '.join(STATUSES)}: {status!r}")
