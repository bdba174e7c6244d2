"""Session and recording rows (meetd.store.recordings) on SQLite and PostgreSQL: what the
realtime service writes and the API reads, tenancy included."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from meetd.errors import ForbiddenError, NotFoundError
from meetd.store import recordings
from meetd.store.database import Database, Reader
from tests.support import Caller, create_room

T0 = 1_800_000_000_000


@pytest.fixture
def database(client: TestClient) -> Database:
    found: Database = client.app.state.services.database  # type: ignore[attr-defined]
    return found


@pytest.fixture
def room_id(client: TestClient, account: Caller) -> str:
    room_id: str = create_room(client, account)["id"]
    return room_id


def new_session(database: Database, room_id: str, session_id: str = "") -> recordings.SessionRecord:
    session_id = session_id or f"s-{uuid.uuid4().hex}"
    return database.write_blocking(
        lambda c: recordings.insert_session(
            c, session_id=session_id, room_id=room_id, started_at=T0
        )
    )


def new_recording(
    database: Database, session_id: str, started_at: int = T0, recording_id: str = ""
) -> recordings.RecordingRecord:
    recording_id = recording_id or str(uuid.uuid4())
    return database.write_blocking(
        lambda c: recordings.insert_recording(
            c, recording_id=recording_id, session_id=session_id, started_at=started_at
        )
    )


# -- sessions ----------------------------------------------------------------------------------
def test_a_session_belongs_to_its_rooms_application(
    database: Database, room_id: str, account: Caller
) -> None:
    session = new_session(database, room_id, "1_MX40abc")
    assert session == recordings.SessionRecord(
        "1_MX40abc", room_id, account.application_id, T0, None
    )
    read = database.read_blocking(
        lambda c: recordings.get_session(c, account.application_id, "1_MX40abc")
    )
    assert read == session


def test_a_session_needs_a_room(database: Database) -> None:
    with pytest.raises(NotFoundError):
        new_session(database, str(uuid.uuid4()))


@pytest.mark.parametrize("session_id", ["x" * 256, "a\x00b"])
def test_a_session_id_must_be_usable(database: Database, room_id: str, session_id: str) -> None:
    with pytest.raises(ValueError):
        new_session(database, room_id, session_id)


def test_ending_a_session_keeps_the_first_end(
    database: Database, room_id: str, account: Caller
) -> None:
    session = new_session(database, room_id)
    ended = database.write_blocking(
        lambda c: recordings.end_session(c, session.id, ended_at=T0 + 5)
    )
    assert ended.ended_at == T0 + 5
    again = database.write_blocking(
        lambda c: recordings.end_session(c, session.id, ended_at=T0 + 9)
    )
    assert again.ended_at == T0 + 5
    read = database.read_blocking(
        lambda c: recordings.get_session(c, account.application_id, session.id)
    )
    assert read.ended_at == T0 + 5


def test_ending_an_unknown_session_fails(database: Database) -> None:
    with pytest.raises(NotFoundError):
        database.write_blocking(lambda c: recordings.end_session(c, "nope", ended_at=T0))


def test_another_applications_session_is_not_found(
    database: Database, room_id: str, other_account: Caller
) -> None:
    session = new_session(database, room_id)
    with pytest.raises(NotFoundError, match=rf"by id: {session.id}$"):
        database.read_blocking(
            lambda c: recordings.get_session(c, other_account.application_id, session.id)
        )
    with pytest.raises(NotFoundError):
        database.read_blocking(
            lambda c: recordings.list_session_recordings(
                c, other_account.application_id, session.id
            )
        )


# -- recordings --------------------------------------------------------------------------------
def test_a_recording_starts_in_its_sessions_application(
    database: Database, room_id: str, account: Caller
) -> None:
    session = new_session(database, room_id)
    recording_id = str(uuid.uuid4())
    recording = new_recording(database, session.id, T0 + 7, recording_id)
    assert recording == recordings.RecordingRecord(
        recording_id, session.id, account.application_id, "started", T0 + 7, None, None, T0 + 7
    )
    assert recording.download_key is None


def test_a_recording_needs_a_session(database: Database) -> None:
    with pytest.raises(NotFoundError):
        new_recording(database, "no-such-session")


def test_updates_change_only_what_they_name(
    database: Database, room_id: str, account: Caller
) -> None:
    session = new_session(database, room_id)
    recording = new_recording(database, session.id)
    key = recordings.recording_storage_key(account.application_id, recording.id)
    assert key == f"recordings/{account.application_id}/{recording.id}.mp4"

    def update(**changes: object) -> recordings.RecordingRecord:
        return database.write_blocking(
            lambda c: recordings.update_recording(c, recording.id, **changes)  # type: ignore[arg-type]
        )

    paused = update(status="paused")
    assert (paused.status, paused.ended_at, paused.storage_key) == ("paused", None, None)
    stopped = update(status="stopped", ended_at=T0 + 60)
    assert (stopped.status, stopped.ended_at, stopped.storage_key) == ("stopped", T0 + 60, None)
    stored = update(storage_key=key)
    assert (stored.status, stored.ended_at, stored.storage_key) == ("stopped", T0 + 60, key)
    assert stored.download_key is None  # not downloadable before it is uploaded
    done = update(status="uploaded")
    assert done.download_key == key
    read = database.read_blocking(
        lambda c: recordings.get_recording(c, account.application_id, recording.id)
    )
    assert read == done


def test_statuses_are_the_contracts(database: Database, room_id: str) -> None:
    session = new_session(database, room_id)
    with pytest.raises(ValueError):
        database.write_blocking(
            lambda c: recordings.insert_recording(
                c, recording_id=str(uuid.uuid4()), session_id=session.id, started_at=T0,
                status="recording",
            )
        )  # fmt: skip
    recording = new_recording(database, session.id)
    with pytest.raises(ValueError):
        database.write_blocking(
            lambda c: recordings.update_recording(c, recording.id, status="done")
        )


def test_updating_an_unknown_recording_fails(database: Database) -> None:
    with pytest.raises(NotFoundError):
        database.write_blocking(
            lambda c: recordings.update_recording(c, str(uuid.uuid4()), status="stopped")
        )


def test_another_applications_recording_is_not_found(
    database: Database, room_id: str, other_account: Caller
) -> None:
    recording = new_recording(database, new_session(database, room_id).id)
    with pytest.raises(NotFoundError, match=rf"^Recording {recording.id} was not found$"):
        database.read_blocking(
            lambda c: recordings.get_recording(c, other_account.application_id, recording.id)
        )


def test_a_sessions_recordings_earliest_first(
    database: Database, room_id: str, account: Caller
) -> None:
    session = new_session(database, room_id)
    other = new_session(database, room_id)
    late = new_recording(database, session.id, T0 + 20)
    tie_b = new_recording(database, session.id, T0 + 10, "bbbbbbbb-0000-4000-8000-000000000000")
    tie_a = new_recording(database, session.id, T0 + 10, "aaaaaaaa-0000-4000-8000-000000000000")
    early = new_recording(database, session.id, T0)
    new_recording(database, other.id, T0 - 1)
    found = database.read_blocking(
        lambda c: recordings.list_session_recordings(c, account.application_id, session.id)
    )
    assert [r.id for r in found] == [early.id, tie_a.id, tie_b.id, late.id]
    unrecorded = new_session(database, room_id)
    empty = database.read_blocking(
        lambda c: recordings.list_session_recordings(c, account.application_id, unrecorded.id)
    )
    assert empty == []


# -- delete ------------------------------------------------------------------------------------
def test_deleting_an_uploaded_recording_returns_its_key(
    database: Database, room_id: str, account: Caller
) -> None:
    recording = new_recording(database, new_session(database, room_id).id)
    key = recordings.recording_storage_key(account.application_id, recording.id)
    database.write_blocking(
        lambda c: recordings.update_recording(c, recording.id, status="uploaded", storage_key=key)
    )
    deleted = database.write_blocking(
        lambda c: recordings.delete_recording(c, account.application_id, recording.id)
    )
    assert deleted == key
    with pytest.raises(NotFoundError, match=r"^Could not find recording$"):
        database.write_blocking(
            lambda c: recordings.delete_recording(c, account.application_id, recording.id)
        )


def test_an_uploaded_recording_without_a_file_deletes_with_no_key(
    database: Database, room_id: str, account: Caller
) -> None:
    recording = new_recording(database, new_session(database, room_id).id)
    database.write_blocking(
        lambda c: recordings.update_recording(c, recording.id, status="uploaded")
    )
    assert (
        database.write_blocking(
            lambda c: recordings.delete_recording(c, account.application_id, recording.id)
        )
        is None
    )


@pytest.mark.parametrize("status", ["started", "paused", "stopped"])
def test_only_uploaded_recordings_are_deleted(
    database: Database, room_id: str, account: Caller, status: str
) -> None:
    recording = new_recording(database, new_session(database, room_id).id)
    database.write_blocking(lambda c: recordings.update_recording(c, recording.id, status=status))
    with pytest.raises(ForbiddenError, match="'uploaded' status"):
        database.write_blocking(
            lambda c: recordings.delete_recording(c, account.application_id, recording.id)
        )
    read = database.read_blocking(
        lambda c: recordings.get_recording(c, account.application_id, recording.id)
    )
    assert read.status == status


def test_another_application_cannot_delete(
    database: Database, room_id: str, other_account: Caller, account: Caller
) -> None:
    recording = new_recording(database, new_session(database, room_id).id)
    database.write_blocking(
        lambda c: recordings.update_recording(c, recording.id, status="uploaded")
    )
    with pytest.raises(NotFoundError, match=r"^Could not find recording$"):
        database.write_blocking(
            lambda c: recordings.delete_recording(c, other_account.application_id, recording.id)
        )

    async def still_there(conn: Reader) -> str:
        return (await recordings.get_recording(conn, account.application_id, recording.id)).status

    assert database.read_blocking(still_there) == "uploaded"
