"""The official Python SDK's recording and dial-in calls against a real meetd over TLS:
``get_recording``, ``get_session_recordings``, ``delete_recording`` and
``list_dial_in_numbers``.

Nothing in meetd makes recordings yet (the realtime service will), so the tests put them
where that service will (``add_recorded_session``). The dial-in numbers come from ``meetd
dial-in-numbers add``, as an operator sets them.
"""

from __future__ import annotations

import random
import subprocess

import pytest
import vonage
from vonage.errors import ClientError

from tests.e2e.conftest import MEETD, VIDEO, Server, add_recorded_session, run_meetd

pytestmark = pytest.mark.e2e


def error(status: int, name: str, message: str) -> str:
    return f"Status Code {status}: {name}: {message}"


def recorded_session(
    server: Server, meetings: vonage.Meetings, *statuses: str
) -> tuple[str, list[str]]:
    room_id = meetings.create_room({"display_name": "recorded"})["id"]
    return add_recorded_session(server, room_id, *statuses)


def test_get_and_list_recordings(tls_server: Server, meetings: vonage.Meetings) -> None:
    session_id, (uploaded, running) = recorded_session(tls_server, meetings, "uploaded", "started")

    recording = meetings.get_recording(uploaded)
    assert list(recording) == ["id", "session_id", "started_at", "ended_at", "status", "_links"]
    assert recording["id"] == uploaded
    assert recording["session_id"] == session_id
    assert recording["status"] == "uploaded"
    assert recording["ended_at"] is not None
    link = recording["_links"]["url"]["href"]
    assert link.startswith(f"{tls_server.url}/files/recordings/")
    with tls_server.http() as http:
        download = http.get(link)
        assert download.status_code == 200
        assert download.content == VIDEO
        assert http.get(link.replace("signature=", "signature=0")).status_code == 403

    listed = meetings.get_session_recordings(session_id)
    assert [r["id"] for r in listed["_embedded"]["recordings"]] == [uploaded, running]
    assert listed["_embedded"]["recordings"][1]["_links"] == {}
    assert listed["_embedded"]["recordings"][1]["ended_at"] is None


def test_delete_recording(tls_server: Server, meetings: vonage.Meetings) -> None:
    _, (uploaded, stopped) = recorded_session(tls_server, meetings, "uploaded", "stopped")
    link = meetings.get_recording(uploaded)["_links"]["url"]["href"]

    assert meetings.delete_recording(uploaded) is None

    with pytest.raises(ClientError) as raised:
        meetings.get_recording(uploaded)
    assert str(raised.value) == error(404, "NotFoundError", f"Recording {uploaded} was not found")
    with tls_server.http() as http:
        assert http.get(link).status_code == 404  # the file went with it
    with pytest.raises(ClientError) as raised:
        meetings.delete_recording(stopped)
    assert "Status Code 403: ForbiddenError" in str(raised.value)
    assert meetings.get_recording(stopped)["status"] == "stopped"
    with pytest.raises(ClientError) as raised:
        meetings.delete_recording(uploaded)
    assert str(raised.value) == error(404, "NotFoundError", "Could not find recording")


def test_recordings_of_another_application_do_not_exist(
    tls_server: Server,
    meetings: vonage.Meetings,
    other_meetings: vonage.Meetings,
) -> None:
    session_id, (theirs,) = recorded_session(tls_server, other_meetings, "uploaded")
    with pytest.raises(ClientError) as raised:
        meetings.get_recording(theirs)
    assert str(raised.value) == error(404, "NotFoundError", f"Recording {theirs} was not found")
    with pytest.raises(ClientError) as raised:
        meetings.delete_recording(theirs)
    assert str(raised.value) == error(404, "NotFoundError", "Could not find recording")
    with pytest.raises(ClientError) as raised:
        meetings.get_session_recordings(session_id)
    assert str(raised.value) == error(
        404, "NotFoundError", f"Failed to find session recordings by id: {session_id}"
    )
    assert other_meetings.get_recording(theirs)["status"] == "uploaded"


def test_dial_in_numbers_the_operator_sets(tls_server: Server, meetings: vonage.Meetings) -> None:
    number = f"44{random.randrange(10**9, 10**10)}"
    run_meetd(
        "dial-in-numbers",
        "add",
        f"+{number}",
        "--locale",
        "en-GB",
        "--display-name",
        "United Kingdom",
        *tls_server.store_options,
    )
    try:
        listed = meetings.list_dial_in_numbers()
        assert {"number": number, "locale": "en-GB", "display_name": "United Kingdom"} in listed
    finally:
        subprocess.run(
            [str(MEETD), "dial-in-numbers", "remove", number, *tls_server.store_options],
            check=True,
            capture_output=True,
        )
    assert number not in [entry["number"] for entry in meetings.list_dial_in_numbers()]
