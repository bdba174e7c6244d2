"""Recordings and sessions (contract §7): read a recording, delete an uploaded one, list a
session's, the Node SDK's ``/sessions/{id}`` path (§10), and tenancy (§2).

Sessions and recordings are made through meetd.store.recordings, as the realtime service
makes them; recording files through the app's own file store.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.domain.timestamps import format_timestamp
from meetd.files import FileStore
from meetd.store import recordings
from meetd.store.database import Connection, Database
from tests.support import Caller, assert_error, create_room

PREFIXES = ["/v1/meetings", "/beta/meetings"]
RECORDING_FIELDS = ["id", "session_id", "started_at", "ended_at", "status", "_links"]
VIDEO = b"\x00\x00\x00\x18ftypmp42 not really a video"


def database(client: TestClient) -> Database:
    found: Database = client.app.state.services.database  # type: ignore[attr-defined]
    return found


def files(client: TestClient) -> FileStore:
    found: FileStore = client.app.state.services.files  # type: ignore[attr-defined]
    return found


def add_session(client: TestClient, caller: Caller, session_id: str | None = None) -> str:
    """A session in a new room of the caller's application."""
    room = create_room(client, caller)
    session_id = session_id or f"1_MX40{uuid.uuid4().hex}fn4"
    started_at = caller.clock.now_ms()
    database(client).write_blocking(
        lambda c: recordings.insert_session(
            c, session_id=session_id, room_id=room["id"], started_at=started_at
        )
    )
    return session_id


def add_recording(
    client: TestClient,
    session_id: str,
    *,
    started_at: int,
    status: str = "started",
    ended_at: int | None = None,
    data: bytes | None = None,
) -> recordings.RecordingRecord:
    """A recording in ``status``; with ``data``, its file is stored and its key recorded."""
    recording_id = str(uuid.uuid4())

    def insert(conn: Connection) -> recordings.RecordingRecord:
        recording = recordings.insert_recording(
            conn, recording_id=recording_id, session_id=session_id, started_at=started_at
        )
        key = None
        if data is not None:
            key = recordings.recording_storage_key(recording.application_id, recording_id)
        return recordings.update_recording(
            conn, recording_id, status=status, ended_at=ended_at, storage_key=key
        )

    recording = database(client).write_blocking(insert)
    if data is not None:
        assert recording.storage_key is not None
        files(client).write(recording.storage_key, data, content_type="video/mp4")
    return recording


def uploaded(client: TestClient, caller: Caller, data: bytes = VIDEO) -> recordings.RecordingRecord:
    session_id = add_session(client, caller)
    now = caller.clock.now_ms()
    return add_recording(
        client, session_id, started_at=now, status="uploaded", ended_at=now + 9_000, data=data
    )


def recording_exists(client: TestClient, recording: recordings.RecordingRecord) -> bool:
    found = database(client).read_blocking(
        lambda c: c.fetchone("SELECT 1 FROM recordings WHERE id = ?", (recording.id,))
    )
    return found is not None


# -- GET /recordings/{id} ----------------------------------------------------------------------
@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_running_recording_has_no_end_and_no_link(
    client: TestClient, account: Caller, clock: FakeClock, prefix: str
) -> None:
    session_id = add_session(client, account)
    started_at = clock.now_ms() + 1_234
    recording = add_recording(client, session_id, started_at=started_at)
    response = client.get(f"{prefix}/recordings/{recording.id}", headers=account.basic)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == RECORDING_FIELDS
    assert body == {
        "id": recording.id,
        "session_id": session_id,
        "started_at": format_timestamp(started_at),
        "ended_at": None,
        "status": "started",
        "_links": {},
    }
    assert body["started_at"].endswith(".234Z")


@pytest.mark.parametrize("status", ["stopped", "paused"])
def test_a_recording_without_a_file_has_empty_links(
    client: TestClient, account: Caller, clock: FakeClock, status: str
) -> None:
    session_id = add_session(client, account)
    now = clock.now_ms()
    recording = add_recording(client, session_id, started_at=now, status=status, ended_at=now + 5)
    body = client.get(f"/v1/meetings/recordings/{recording.id}", headers=account.bearer()).json()
    assert (body["status"], body["ended_at"], body["_links"]) == (
        status,
        format_timestamp(now + 5),
        {},
    )


def test_an_uploaded_recording_without_a_stored_file_has_empty_links(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    session_id = add_session(client, account)
    recording = add_recording(client, session_id, started_at=clock.now_ms(), status="uploaded")
    body = client.get(f"/v1/meetings/recordings/{recording.id}", headers=account.basic).json()
    assert body["status"] == "uploaded"
    assert body["_links"] == {}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_an_uploaded_recording_links_to_its_file(
    client: TestClient, account: Caller, prefix: str
) -> None:
    recording = uploaded(client, account)
    response = client.get(f"{prefix}/recordings/{recording.id}", headers=account.basic)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == RECORDING_FIELDS
    assert body["status"] == "uploaded"
    assert body["ended_at"] == format_timestamp(recording.started_at + 9_000)
    assert list(body["_links"]) == ["url"]
    href = body["_links"]["url"]["href"]
    assert href.startswith("https://meet.example.test/")
    download = client.get(href)
    assert download.status_code == 200, download.text
    assert download.content == VIDEO


def test_the_download_link_is_signed(client: TestClient, account: Caller) -> None:
    recording = uploaded(client, account)
    href = client.get(f"/v1/meetings/recordings/{recording.id}", headers=account.basic).json()[
        "_links"
    ]["url"]["href"]
    path, _, query = href.partition("?")
    assert query, href  # the signature and expiry travel in the query
    assert client.get(path).status_code != 200
    tampered = f"{href[:-1]}{'0' if href[-1] != '0' else '1'}"
    assert client.get(tampered).status_code != 200


def test_the_download_link_works_for_an_hour(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    recording = uploaded(client, account)
    url = f"/v1/meetings/recordings/{recording.id}"
    href = client.get(url, headers=account.basic).json()["_links"]["url"]["href"]
    clock.advance(3599)
    assert client.get(href).content == VIDEO
    clock.advance(1)
    assert client.get(href).status_code != 200
    # A new read signs a new link.
    fresh = client.get(url, headers=account.basic).json()["_links"]["url"]["href"]
    assert fresh != href
    assert client.get(fresh).content == VIDEO


def test_an_upper_case_id_names_the_same_recording(client: TestClient, account: Caller) -> None:
    recording = uploaded(client, account)
    response = client.get(f"/v1/meetings/recordings/{recording.id.upper()}", headers=account.basic)
    assert response.status_code == 200
    assert response.json()["id"] == recording.id


def test_an_unknown_recording_is_a_404(client: TestClient, account: Caller) -> None:
    uploaded(client, account)
    missing = str(uuid.uuid4())
    response = client.get(f"/v1/meetings/recordings/{missing}", headers=account.basic)
    assert_error(response, 404, "NotFoundError", f"Recording {missing} was not found")


@pytest.mark.parametrize(
    "recording_id", ["not-a-real-recording-id", "1", "x" * 300, "{" + "1" * 34 + "}"]
)
def test_a_malformed_recording_id_is_a_404_naming_it(
    client: TestClient, account: Caller, recording_id: str
) -> None:
    response = client.get(f"/beta/meetings/recordings/{recording_id}", headers=account.basic)
    assert_error(response, 404, "NotFoundError", f"Recording {recording_id} was not found")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_another_applications_recording_is_not_found(
    client: TestClient, account: Caller, other_account: Caller, prefix: str
) -> None:
    foreign = uploaded(client, other_account)
    for headers in (account.basic, account.bearer()):
        response = client.get(f"{prefix}/recordings/{foreign.id}", headers=headers)
        assert_error(response, 404, "NotFoundError", f"Recording {foreign.id} was not found")
    mine = client.get(f"{prefix}/recordings/{foreign.id}", headers=other_account.bearer())
    assert mine.status_code == 200


# -- DELETE /recordings/{id} -------------------------------------------------------------------
@pytest.mark.parametrize("prefix", PREFIXES)
def test_deleting_an_uploaded_recording_removes_row_and_file(
    client: TestClient, account: Caller, prefix: str
) -> None:
    recording = uploaded(client, account)
    assert recording.storage_key is not None
    href = client.get(f"{prefix}/recordings/{recording.id}", headers=account.basic).json()[
        "_links"
    ]["url"]["href"]

    response = client.delete(f"{prefix}/recordings/{recording.id}", headers=account.basic)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert not recording_exists(client, recording)
    assert files(client).read(recording.storage_key) is None
    assert client.get(href).status_code != 200
    gone = client.get(f"{prefix}/recordings/{recording.id}", headers=account.basic)
    assert_error(gone, 404, "NotFoundError", f"Recording {recording.id} was not found")
    again = client.delete(f"{prefix}/recordings/{recording.id}", headers=account.basic)
    assert_error(again, 404, "NotFoundError", "Could not find recording")
    listed = client.get(f"{prefix}/sessions/{recording.session_id}", headers=account.basic)
    assert listed.json() == {"_embedded": {"recordings": []}}


@pytest.mark.parametrize("status", ["started", "stopped", "paused"])
def test_only_uploaded_recordings_can_be_deleted(
    client: TestClient, account: Caller, clock: FakeClock, status: str
) -> None:
    session_id = add_session(client, account)
    now = clock.now_ms()
    recording = add_recording(client, session_id, started_at=now, status=status, data=VIDEO)
    assert recording.storage_key is not None
    url = f"/v1/meetings/recordings/{recording.id}"
    before = client.get(url, headers=account.basic).json()

    response = client.delete(url, headers=account.bearer())
    assert_error(response, 403, "ForbiddenError", "Can only delete recordings in 'uploaded' status")
    assert client.get(url, headers=account.basic).json() == before
    assert files(client).read(recording.storage_key) == VIDEO


def test_deleting_an_unknown_recording_is_a_404(client: TestClient, account: Caller) -> None:
    for recording_id in (str(uuid.uuid4()), "not-a-uuid", "x" * 300):
        response = client.delete(f"/v1/meetings/recordings/{recording_id}", headers=account.basic)
        assert_error(response, 404, "NotFoundError", "Could not find recording")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_another_applications_recording_cannot_be_deleted(
    client: TestClient, account: Caller, other_account: Caller, clock: FakeClock, prefix: str
) -> None:
    foreign = uploaded(client, other_account)
    running = add_recording(client, add_session(client, other_account), started_at=clock.now_ms())
    for recording in (foreign, running):  # 404 whatever its status: it is not the caller's
        response = client.delete(f"{prefix}/recordings/{recording.id}", headers=account.basic)
        assert_error(response, 404, "NotFoundError", "Could not find recording")
        assert recording_exists(client, recording)
    assert foreign.storage_key is not None
    assert files(client).read(foreign.storage_key) == VIDEO


class UndeletableFiles:
    """The app's file store, except that deleting fails (a disk or bucket refusing)."""

    def __init__(self, inner: FileStore) -> None:
        self.inner = inner
        self.attempts: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, key: str) -> None:
        self.attempts.append(key)
        raise OSError("read-only file system")


def test_a_file_that_will_not_go_is_logged_not_a_500(
    client: TestClient, account: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    recording = uploaded(client, account)
    services = client.app.state.services  # type: ignore[attr-defined]
    undeletable = UndeletableFiles(services.files)
    services.files = undeletable
    with caplog.at_level(logging.WARNING, logger="meetd.api"):
        response = client.delete(f"/v1/meetings/recordings/{recording.id}", headers=account.basic)
    assert response.status_code == 204, response.text
    assert undeletable.attempts == [recording.storage_key]
    assert not recording_exists(client, recording)
    logged = [r for r in caplog.records if "could not delete" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].storage_key == recording.storage_key  # type: ignore[attr-defined]
    assert logged[0].exc_info is not None


# -- GET /sessions/{id}/recordings and GET /sessions/{id} --------------------------------------
def session_paths(session_id: str) -> list[str]:
    quoted = quote(session_id, safe="")
    return [
        f"{prefix}/sessions/{quoted}{suffix}"
        for prefix in PREFIXES
        for suffix in ("/recordings", "")
    ]


def test_a_sessions_recordings_in_the_order_they_started(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    session_id = add_session(client, account)
    now = clock.now_ms()
    second = add_recording(client, session_id, started_at=now + 60_000, status="stopped")
    first = uploaded_in(client, session_id, started_at=now)
    third = add_recording(client, session_id, started_at=now + 120_000)
    add_recording(client, add_session(client, account), started_at=now - 1)  # another session

    bodies = []
    for path in session_paths(session_id):
        response = client.get(path, headers=account.basic)
        assert response.status_code == 200, f"{path}: {response.text}"
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert list(body) == ["_embedded"] and list(body["_embedded"]) == ["recordings"]
        bodies.append(body)
    found = bodies[0]["_embedded"]["recordings"]
    assert [r["id"] for r in found] == [first.id, second.id, third.id]
    assert all(list(r) == RECORDING_FIELDS for r in found)
    assert [r["status"] for r in found] == ["uploaded", "stopped", "started"]
    assert found[1]["_links"] == found[2]["_links"] == {}
    # Each body is the recording's own, and the listed link downloads the file too.
    alone = client.get(f"/v1/meetings/recordings/{second.id}", headers=account.basic).json()
    assert found[1] == alone
    assert client.get(found[0]["_links"]["url"]["href"]).content == VIDEO
    # Every path answers the same, links aside (each answer signs its own).
    unlinked = [
        [{**r, "_links": list(r["_links"])} for r in b["_embedded"]["recordings"]] for b in bodies
    ]
    assert all(listing == unlinked[0] for listing in unlinked)


def uploaded_in(
    client: TestClient, session_id: str, *, started_at: int
) -> recordings.RecordingRecord:
    return add_recording(
        client,
        session_id,
        started_at=started_at,
        status="uploaded",
        ended_at=started_at + 1_000,
        data=VIDEO,
    )


def test_a_session_without_recordings_has_an_empty_list(
    client: TestClient, account: Caller
) -> None:
    session_id = add_session(client, account)
    for path in session_paths(session_id):
        response = client.get(path, headers=account.bearer())
        assert response.status_code == 200, f"{path}: {response.text}"
        assert response.json() == {"_embedded": {"recordings": []}}


def test_an_unknown_session_is_a_404(client: TestClient, account: Caller) -> None:
    add_session(client, account)
    for path in session_paths("not-a-real-session-id"):
        assert_error(
            client.get(path, headers=account.basic),
            404,
            "NotFoundError",
            "Failed to find session recordings by id: not-a-real-session-id",
        )


@pytest.mark.parametrize(
    "session_id", ["x" * 256, "x" * 5000, "\x00", "a\x00b", "recordings", " ", "é中"]
)
def test_odd_session_ids_are_simply_not_found(
    client: TestClient, account: Caller, session_id: str
) -> None:
    for path in session_paths(session_id):
        assert_error(
            client.get(path, headers=account.basic),
            404,
            "NotFoundError",
            f"Failed to find session recordings by id: {session_id}",
        )


def test_session_ids_are_opaque_strings(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    session_id = add_session(client, account, "2_MX4 ~é+=:@" + "y" * 240)
    recording = add_recording(client, session_id, started_at=clock.now_ms())
    for path in session_paths(session_id):
        response = client.get(path, headers=account.basic)
        assert response.status_code == 200, f"{path}: {response.text}"
        assert [r["id"] for r in response.json()["_embedded"]["recordings"]] == [recording.id]


@pytest.mark.parametrize("slash", ["%2F", "%2f"])
def test_a_session_id_may_hold_a_slash(
    client: TestClient, account: Caller, clock: FakeClock, slash: str
) -> None:
    """Sent percent-encoded, a slash stays in the session id: the router matches on the raw
    path's segments then (meetd.api.asgi)."""
    session_id = add_session(client, account, "a/b")
    recording = add_recording(client, session_id, started_at=clock.now_ms())
    add_recording(client, add_session(client, account, "a"), started_at=clock.now_ms())
    for prefix in PREFIXES:
        for suffix in ("/recordings", ""):
            path = f"{prefix}/sessions/a{slash}b{suffix}"
            response = client.get(path, headers=account.basic)
            assert response.status_code == 200, f"{path}: {response.text}"
            assert [r["id"] for r in response.json()["_embedded"]["recordings"]] == [recording.id]


def test_an_encoded_slash_does_not_reach_another_session(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    """``/sessions/x%2Frecordings`` is the Node SDK's path for the session "x/recordings",
    never the recordings of the session "x"."""
    add_recording(client, add_session(client, account, "x"), started_at=clock.now_ms())
    for prefix in PREFIXES:
        assert_error(
            client.get(f"{prefix}/sessions/x%2Frecordings", headers=account.basic),
            404,
            "NotFoundError",
            "Failed to find session recordings by id: x/recordings",
        )
    session_id = add_session(client, account, "x/recordings")
    recording = add_recording(client, session_id, started_at=clock.now_ms())
    for path in session_paths(session_id):
        response = client.get(path, headers=account.basic)
        assert response.status_code == 200, f"{path}: {response.text}"
        assert [r["id"] for r in response.json()["_embedded"]["recordings"]] == [recording.id]
    # And a plain id, no percent sign anywhere, still names its own session.
    response = client.get("/v1/meetings/sessions/x/recordings", headers=account.basic)
    assert len(response.json()["_embedded"]["recordings"]) == 1
    assert response.json()["_embedded"]["recordings"][0]["session_id"] == "x"


def test_another_applications_session_is_not_found(
    client: TestClient, account: Caller, other_account: Caller, clock: FakeClock
) -> None:
    session_id = add_session(client, other_account)
    add_recording(client, session_id, started_at=clock.now_ms())
    for path in session_paths(session_id):
        for headers in (account.basic, account.bearer()):
            assert_error(
                client.get(path, headers=headers),
                404,
                "NotFoundError",
                f"Failed to find session recordings by id: {session_id}",
            )
        assert client.get(path, headers=other_account.basic).status_code == 200


# -- authentication ----------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_route_needs_credentials(client: TestClient, account: Caller, prefix: str) -> None:
    recording = uploaded(client, account)
    wrong = {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}
    requests = [
        ("GET", f"{prefix}/recordings/{recording.id}"),
        ("DELETE", f"{prefix}/recordings/{recording.id}"),
        ("GET", f"{prefix}/sessions/{recording.session_id}/recordings"),
        ("GET", f"{prefix}/sessions/{recording.session_id}"),
    ]
    for method, path in requests:
        for headers in ({}, wrong):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, f"{method} {path}: {response.text}"
            assert response.json()["title"] == "Unauthorized"
    assert recording_exists(client, recording)
