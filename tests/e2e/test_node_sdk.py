"""The official Node SDK (``@vonage/meetings`` 1.12.1) against a real meetd over plain HTTP.

``node/driver.js`` makes one SDK call per run and prints its result as one JSON line. The
packages are installed from ``node/package-lock.json`` with ``npm ci`` once, and again only
when the lock file changes. Without node or npm the tests skip; ``MEETD_REQUIRE=node`` makes
them fail instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import support
from tests.e2e.conftest import VIDEO, Account, Server, add_recorded_session, run_meetd

pytestmark = [pytest.mark.e2e, pytest.mark.node]

NODE_DIR = Path(__file__).with_name("node")
STAMP = NODE_DIR / "node_modules" / ".meetd-lock-sha256"


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the SDK installed beside the driver."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        support.unavailable("node", "node and npm must be on PATH")
    assert node is not None and npm is not None
    lock = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != lock:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            support.unavailable("node", f"npm ci failed: {done.stderr.strip()[-500:]}")
        STAMP.write_text(lock)
    return node


class Driver:
    def __init__(self, node: str, server: Server, account: Account) -> None:
        app = account.application
        self.command = [
            node,
            str(NODE_DIR / "driver.js"),
            server.url,
            app.application_id,
            str(app.private_key),
        ]

    def batch(self, *calls: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Make ``(op, *args)`` calls in order in one node process; one output each:
        ``{"ok": true, "result"}`` or ``{"ok": false, "status", "error", "body"}``."""
        done = subprocess.run(
            [*self.command, "-"],
            input=json.dumps([list(call) for call in calls]),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    def call(self, op: str, *args: Any) -> Any:
        return self.calls((op, *args))[0]

    def calls(self, *calls: tuple[Any, ...]) -> list[Any]:
        """The results of calls that must all succeed."""
        outputs = self.batch(*calls)
        assert len(outputs) == len(calls)
        assert all(output["ok"] for output in outputs), outputs
        return [output["result"] for output in outputs]


@pytest.fixture
def sdk(node: str, http_server: Server) -> Driver:
    return Driver(node, http_server, http_server.accounts[0])


@pytest.fixture
def other_sdk(node: str, http_server: Server) -> Driver:
    return Driver(node, http_server, http_server.accounts[1])


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def wire_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_long_term_room(name: str) -> tuple[str, dict[str, Any]]:
    return ("createRoom", {"displayName": name, "type": "long_term", "expiresAt": in_days(2)})


def test_create_and_get_a_room(sdk: Driver, http_server: Server) -> None:
    room = sdk.call(
        "createRoom",
        {
            "displayName": "Node room",
            "metadata": "from node",
            "type": "long_term",
            "expiresAt": in_days(3),
            "expireAfterUse": True,
            "joinApprovalLevel": "after_owner_only",
        },
    )

    # The SDK camel-cases the room and lifts the links out of _links.
    assert uuid.UUID(room["id"]).version == 4
    assert room["displayName"] == "Node room"
    assert room["metadata"] == "from node"
    assert room["type"] == "long_term"
    assert room["expireAfterUse"] is True
    assert room["joinApprovalLevel"] == "after_owner_only"
    assert room["isAvailable"] is True
    assert room["recordingOptions"] == {"autoRecord": False, "recordOnlyOwner": False}
    assert room["availableFeatures"]["isChatAvailable"] is True
    assert room["guestUrl"] == f"{http_server.url}/{room['meetingCode']}"
    assert room["hostUrl"].startswith(
        f"{http_server.url}/?room_token={room['meetingCode']}&participant_token="
    )
    assert wire_time(room["expiresAt"]) - wire_time(room["createdAt"]) > timedelta(days=2)
    assert sdk.call("getRoom", room["id"]) == room


def test_instant_room(sdk: Driver) -> None:
    room = sdk.call("createRoom", {"displayName": "Node instant"})

    assert room["type"] == "instant"
    assert wire_time(room["expiresAt"]) - wire_time(room["createdAt"]) == timedelta(minutes=10)


def test_get_room_page(sdk: Driver, http_server: Server) -> None:
    *_, page = sdk.calls(
        *(new_long_term_room(f"page {n}") for n in range(3)), ("getRoomPage", {"pageSize": 2})
    )

    # getRoomPage returns the body as sent: snake_case, _embedded an array under /v1.
    assert page["page_size"] == 2
    assert page["total_items"] >= 3
    assert len(page["_embedded"]) == 2
    assert all({"display_name", "_links"} <= set(room) for room in page["_embedded"])
    next_href = page["_links"]["next"]["href"]
    assert next_href.startswith(f"{http_server.url}/v1/meetings/rooms?")
    start_id = parse_qs(urlsplit(next_href).query)["start_id"][0]

    following = sdk.call("getRoomPage", {"pageSize": 2, "startId": start_id})
    first_ids = {room["id"] for room in page["_embedded"]}
    assert first_ids.isdisjoint(room["id"] for room in following["_embedded"])
    assert "prev" in following["_links"]


def test_get_rooms_walks_every_page(sdk: Driver) -> None:
    *rooms, walked, everything = sdk.calls(
        *(new_long_term_room(f"walk {n}") for n in range(5)),
        ("getRooms", {"pageSize": 2}),
        ("getRoomPage", {"pageSize": 100}),
    )

    created = [room["id"] for room in rooms]
    walked_ids = [room["id"] for room in walked]
    assert walked_ids == [room["id"] for room in everything["_embedded"]]
    assert len(walked_ids) == everything["total_items"] > 2
    assert walked_ids[-5:] == created
    assert all("hostUrl" in room and "_links" not in room for room in walked)


def test_update_room_sends_update_options(sdk: Driver) -> None:
    room = sdk.call(*new_long_term_room("to update"))
    later = (datetime.now(UTC) + timedelta(days=6)).replace(microsecond=0)

    updated = sdk.call(
        "updateRoom",
        room["id"],
        {
            "expiresAt": later.isoformat(),
            "expireAfterUse": True,
            "joinApprovalLevel": "explicit_approval",
        },
    )

    assert updated["id"] == room["id"]
    assert wire_time(updated["expiresAt"]) == later
    assert updated["expireAfterUse"] is True
    assert updated["joinApprovalLevel"] == "explicit_approval"
    assert updated["meetingCode"] == room["meetingCode"]
    assert sdk.call("getRoom", room["id"]) == updated


def test_errors_reach_the_sdk_as_vonage_bodies(sdk: Driver, other_sdk: Driver) -> None:
    theirs = other_sdk.call(*new_long_term_room("theirs"))["id"]
    instant = sdk.call("createRoom", {"displayName": "instant"})["id"]

    missing, refused = sdk.batch(
        ("getRoom", theirs), ("updateRoom", instant, {"expireAfterUse": True})
    )

    assert missing["status"] == 404
    assert missing["error"] == "Request failed with status code 404"
    assert missing["body"] == {
        "message": f"The room with id: {theirs} could not be found",
        "name": "NotFoundError",
        "status": 404,
    }
    assert refused["status"] == 400
    assert refused["body"] == {
        "message": f"The room with id: {instant} could not be updated because of its type: "
        "temporary",
        "name": "BadRequestError",
        "status": 400,
    }


# -- themes, the default theme, dial-in numbers and recordings (issue 3) -----------------------
def test_themes(sdk: Driver, http_server: Server) -> None:
    short_url = f"node-{uuid.uuid4().hex[:8]}"
    theme = sdk.call(
        "createTheme",
        {
            "themeName": short_url,
            "mainColor": "#12f64e",
            "brandText": "Node Co",
            "shortCompanyUrl": short_url,
        },
    )
    theme_id = theme["themeId"]
    assert theme["brandText"] == "Node Co"
    assert theme["shortCompanyUrl"] == short_url
    assert theme["domain"] == "VCP"

    room = sdk.call(
        "createRoom",
        {
            "displayName": "themed",
            "type": "long_term",
            "expiresAt": in_days(2),
            "themeId": theme_id,
        },
    )
    listed, got, updated, rooms, default = sdk.calls(
        ("getThemes",),
        ("getTheme", theme_id),
        ("updateTheme", theme_id, {"brandText": "Node Co 2"}),
        ("getRoomsForTheme", theme_id),
        ("setDefaultTheme", theme_id),
    )
    assert theme in listed
    assert got == theme
    assert updated == {**theme, "brandText": "Node Co 2"}
    assert [r["id"] for r in rooms] == [room["id"]]
    assert rooms[0]["guestUrl"] == f"{http_server.url}/{short_url}/{room['meetingCode']}"
    assert default is True
    assert sdk.call("createRoom", {"displayName": "default theme"})["themeId"] == theme_id

    refused, deleted, after = sdk.batch(
        ("deleteTheme", theme_id), ("deleteTheme", theme_id, True), ("getRoom", room["id"])
    )
    assert refused["status"] == 400
    assert refused["body"]["message"] == "could not delete theme"
    assert deleted["ok"] is True
    assert after["result"]["themeId"] is None


def test_dial_in_numbers(sdk: Driver, http_server: Server) -> None:
    number = f"54{uuid.uuid4().int % 10**10:010d}"
    run_meetd(
        "dial-in-numbers",
        "add",
        number,
        "--locale",
        "es-AR",
        "--display-name",
        "Argentina",
        *http_server.store_options,
    )
    try:
        numbers = sdk.call("getDialInNumbers")
        assert {"number": number, "locale": "es-AR", "displayName": "Argentina"} in numbers
    finally:
        run_meetd("dial-in-numbers", "remove", number, *http_server.store_options)


def test_recordings(sdk: Driver, other_sdk: Driver, http_server: Server) -> None:
    room_id = sdk.call("createRoom", {"displayName": "recorded"})["id"]
    session_id, (uploaded, paused) = add_recorded_session(
        http_server, room_id, "uploaded", "paused"
    )

    # getSessionRecordings reads GET /sessions/{id} (contract §10).
    session, recording = sdk.calls(("getSessionRecordings", session_id), ("getRecording", uploaded))
    assert [r["id"] for r in session] == [uploaded, paused]
    assert session[0]["status"] == "uploaded"
    assert session[0]["url"].startswith(f"{http_server.url}/files/recordings/")
    assert "url" not in session[1]  # undefined: no file yet
    assert recording["sessionId"] == session_id
    with http_server.http() as http:
        assert http.get(recording["url"]).content == VIDEO

    theirs, forbidden, deleted, gone = [
        *other_sdk.batch(("getRecording", uploaded)),
        *sdk.batch(
            ("deleteRecording", paused), ("deleteRecording", uploaded), ("getRecording", uploaded)
        ),
    ]
    assert theirs["status"] == 404
    assert forbidden["status"] == 403
    assert deleted["ok"] is True
    assert gone["body"] == {
        "message": f"Recording {uploaded} was not found",
        "name": "NotFoundError",
        "status": 404,
    }
