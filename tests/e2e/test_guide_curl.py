"""The seed guide ("Create an Instant Room"), run as written with the real curl over TLS.

The guide's request: ``POST /beta/meetings/rooms`` with Basic credentials, a lower-case
``content-type`` header and ``{"display_name":"New Meeting Room"}``. Its answer is the whole
Room object of contract §4, which these tests check field by field.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import support
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

ROOM_FIELDS = set(support.ROOM_FIELDS)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def curl(server: Server, data: str) -> tuple[int, dict[str, str], Any]:
    """The guide's curl, verbatim but for host, port, credentials and ``--cacert``."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    account = server.accounts[0]
    token = base64.b64encode(f"{account.api_key}:{account.api_secret}".encode()).decode()
    assert server.ca_pem is not None
    done = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--include",
            "--cacert",
            str(server.ca_pem),
            "-X",
            "POST",
            f"https://127.0.0.1:{server.port}/beta/meetings/rooms",
            "-H",
            f"Authorization: Basic {token}",
            "-H",
            "content-type: application/json",
            "-d",
            data,
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    head, _, body = done.stdout.decode().partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, json.loads(body)


def moment(text: str) -> datetime:
    assert TIMESTAMP.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_instant_room(server: Server, room: dict[str, Any], recording: dict[str, bool]) -> None:
    assert set(room) == ROOM_FIELDS
    assert uuid.UUID(room["id"]).version == 4
    assert str(uuid.UUID(room["id"])) == room["id"]
    assert room["display_name"] == "New Meeting Room"
    assert room["metadata"] is None
    assert room["type"] == "instant"
    assert room["recording_options"] == recording
    assert re.fullmatch(r"[1-9]\d{8}", room["meeting_code"]), room["meeting_code"]

    created_at = moment(room["created_at"])
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)
    assert moment(room["expires_at"]) - created_at == timedelta(minutes=10)
    assert room["is_available"] is True
    assert room["expire_after_use"] is False
    assert room["theme_id"] is None
    assert room["initial_join_options"] == {"microphone_state": "default"}
    assert room["join_approval_level"] == "none"
    assert room["ui_settings"] == {"language": "default"}
    assert room["available_features"] == {
        "is_recording_available": True,
        "is_chat_available": True,
        "is_whiteboard_available": True,
        "is_locale_switcher_available": False,
        "is_captions_available": False,
    }

    code = room["meeting_code"]
    assert room["_links"]["guest_url"] == {"href": f"{server.url}/{code}"}
    host_url = room["_links"]["host_url"]["href"]
    prefix = f"{server.url}/?room_token={code}&participant_token="
    assert host_url.startswith(prefix), host_url
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", host_url.removeprefix(prefix))  # a JWT
    assert set(room["_links"]) == {"host_url", "guest_url"}


def test_guide_creates_an_instant_room(tls_server: Server) -> None:
    status, headers, room = curl(tls_server, '{"display_name":"New Meeting Room"}')

    assert status == 201
    assert headers["content-type"].split(";")[0] == "application/json"
    check_instant_room(tls_server, room, {"auto_record": False, "record_only_owner": False})


def test_guide_with_auto_record(tls_server: Server) -> None:
    status, _, room = curl(
        tls_server, '{"display_name":"New Meeting Room","recording_options":{"auto_record":true}}'
    )

    assert status == 201
    check_instant_room(tls_server, room, {"auto_record": True, "record_only_owner": False})


def test_guide_rooms_get_fresh_ids_and_codes(tls_server: Server) -> None:
    first = curl(tls_server, '{"display_name":"New Meeting Room"}')[2]
    second = curl(tls_server, '{"display_name":"New Meeting Room"}')[2]

    assert first["id"] != second["id"]
    assert first["meeting_code"] != second["meeting_code"]
    assert first["_links"]["host_url"] != second["_links"]["host_url"]
