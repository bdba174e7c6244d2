"""Callbacks from a real ``meetd serve`` to a loopback receiver (contract §9, issue 4).

What a receiver gets — the body, the headers, a signature it can check with PyJWT alone —
where it gets it (the room's URL before the application's), and how delivery behaves when
the receiver fails: retried on the schedule through errors and timeouts, given up after the
last attempt and sent again through the delivery log's API, and in order per room while
other rooms flow. Each test uses receiver paths of its own on the module's
shared server.
"""

from __future__ import annotations

import collections
import hashlib
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import httpx
import jwt
import pytest

from meetd import __version__
from meetd.store import events
from meetd.store.database import Connection
from tests.e2e_callbacks.conftest import (
    APPLICATION_PATH,
    SCHEDULE,
    Deployment,
    run_meetd,
    store_options,
    write,
)
from tests.e2e_callbacks.receiver import TOO_LATE, Received, Reply
from tests.support import free_port

pytestmark = pytest.mark.e2e

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ROOM_EXPIRED_FIELDS = [
    "event",
    "room_id",
    "room_type",
    "expires_at",
    "created_at",
    "event_id",
    "timestamp",
]
CLAIMS = {"iat", "jti", "iss", "application_id", "payload_hash"}


def unique_path(name: str) -> str:
    return f"/{name}-{uuid.uuid4().hex[:8]}"


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def long_term_room(deployment: Deployment, **body: Any) -> dict[str, Any]:
    """A room that lives a day unless deleted: its events are the test's own doing."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    body = {"display_name": "room", "type": "long_term", "expires_at": tomorrow.isoformat(), **body}
    with deployment.api() as api:
        response = api.post("/rooms", json=body)
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


def delete_room(deployment: Deployment, room_id: str) -> None:
    with deployment.api() as api:
        response = api.delete(f"/rooms/{room_id}")
    assert response.status_code == 204, response.text


def about(room_id: str) -> Callable[[Received], bool]:
    return lambda received: bool(received.json()["room_id"] == room_id)


def verify(received: Received, secret: str) -> dict[str, Any]:
    """Check the Bearer JWT as a receiver would, with PyJWT only; return its claims."""
    scheme, _, token = received.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(received.body).hexdigest()
    return claims


def test_room_expired_body_headers_and_signature(deployment: Deployment) -> None:
    receiver, tenant = deployment.receiver, deployment.tenant
    metadata = "crm: deal #42 / café ✓ & more=yes"
    with deployment.api() as api:
        created = api.post("/rooms", json={"display_name": "expiring", "metadata": metadata})
    assert created.status_code == 201, created.text
    room = created.json()

    # An instant room lives one second here; the sweeper expires it and the event follows.
    received = receiver.wait_for_request(
        about(room["id"]), APPLICATION_PATH, what="the instant room's room:expired"
    )
    body = received.json()
    assert list(body) == ROOM_EXPIRED_FIELDS
    assert body == {
        "event": "room:expired",
        "room_id": room["id"],
        "room_type": "instant",
        "expires_at": room["expires_at"],
        "created_at": room["created_at"],
        "event_id": received.headers["X-Meetd-Event-Id"],
        "timestamp": body["timestamp"],
    }
    uuid.UUID(body["event_id"])
    assert TIMESTAMP.match(body["timestamp"])
    # Expired when due, not before; sent after it happened.
    assert seconds(room["expires_at"]) <= seconds(body["timestamp"]) <= received.at + 0.01

    assert received.method == "POST"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"] == f"meetd/{__version__}"
    assert received.headers["X-Meetd-Event-Type"] == "room:expired"
    assert received.attempt == 1
    header = received.headers["X-Meetd-Room-Metadata"]
    assert header.isascii()
    assert unquote(header) == metadata

    claims = verify(received, tenant.signature_secret)
    assert set(claims) == CLAIMS
    assert claims["iss"] == "meetd"
    assert claims["application_id"] == tenant.application_id
    assert seconds(body["timestamp"]) - 1 <= claims["iat"] <= received.at + 1
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            received.headers["Authorization"][7:],
            "not the application's signature secret",
            algorithms=["HS256"],
        )

    # A deleted live room: room:expired at the deletion, and no metadata header without metadata.
    other = long_term_room(deployment)
    delete_room(deployment, other["id"])
    deleted = receiver.wait_for_request(
        about(other["id"]), APPLICATION_PATH, what="the deleted room's room:expired"
    )
    body = deleted.json()
    assert list(body) == ROOM_EXPIRED_FIELDS
    assert body["room_type"] == "long_term"
    assert body["created_at"] == other["created_at"]
    assert body["expires_at"] == body["timestamp"]  # it expired when it was deleted
    assert "X-Meetd-Room-Metadata" not in deleted.headers
    second_claims = verify(deleted, tenant.signature_secret)
    assert second_claims["jti"] != claims["jti"]


def test_the_rooms_callback_url_wins_over_the_applications(deployment: Deployment) -> None:
    receiver = deployment.receiver
    own, moved = unique_path("room-own"), unique_path("app-moved")
    room = long_term_room(deployment, callback_urls={"rooms_callback_url": receiver.url(own)})
    assert room["callback_urls"] == {"rooms_callback_url": receiver.url(own)}
    plain = long_term_room(deployment)

    # The application's URL changes (as an operator does it); the room's own still wins.
    store = store_options(deployment.data_dir, deployment.database_url)
    application_id = deployment.tenant.application_id
    update = ["applications", "update", application_id, *store, "--rooms-callback-url"]
    run_meetd(*update, receiver.url(moved))
    try:
        delete_room(deployment, room["id"])
        delete_room(deployment, plain["id"])
        (to_room,) = receiver.wait_for_count(1, own)
        (to_application,) = receiver.wait_for_count(1, moved)
    finally:
        run_meetd(*update, receiver.url(APPLICATION_PATH))
    assert to_room.json()["room_id"] == room["id"]
    assert to_application.json()["room_id"] == plain["id"]
    everywhere = [r.json()["room_id"] for r in receiver.requests() if r.path not in (own, moved)]
    assert room["id"] not in everywhere
    assert plain["id"] not in everywhere


def test_retried_through_errors_and_a_timeout_until_delivered(deployment: Deployment) -> None:
    receiver = deployment.receiver
    path = unique_path("flaky")
    receiver.script(path, Reply(500, body=b"try later"), TOO_LATE)  # then 204
    room = long_term_room(deployment, callback_urls={"rooms_callback_url": receiver.url(path)})
    delete_room(deployment, room["id"])

    # 500 at once; 1 s later no answer within 5 s; 1 s after that, 204.
    first, second, third = receiver.wait_for_count(3, path, timeout=15)
    assert [r.attempt for r in (first, second, third)] == [1, 2, 3]
    assert first.body == second.body == third.body  # the same event, byte for byte
    assert first.event_id == second.event_id == third.event_id
    assert second.at - first.at >= 0.9  # the schedule's first step
    assert third.at - second.at >= 5.0 + 0.9  # the timeout, then the next step
    jtis = {verify(r, deployment.tenant.signature_secret)["jti"] for r in (first, second, third)}
    assert len(jtis) == 3  # each attempt signed anew

    counts = attempt_counts(deployment)
    assert counts["failed"] >= 2
    assert counts["delivered"] >= 1


def attempt_counts(deployment: Deployment) -> dict[str, float]:
    """``meetd_callback_attempts_total`` by result, from the server's /metrics."""
    text = httpx.get(f"{deployment.server.url}/metrics", timeout=5).text
    found = re.findall(r'^meetd_callback_attempts_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {result: float(value) for result, value in found}


def session_events(room_id: str) -> list[dict[str, Any]]:
    """A session's events as a later issue will emit them (contract §9 bodies)."""
    session_id = f"2_MX40{uuid.uuid4().hex}"
    started, ended = "2026-12-01T10:00:00.000Z", "2026-12-01T10:30:00.000Z"
    participant = {
        "participant_id": str(uuid.uuid4()),
        "session_id": session_id,
        "room_id": room_id,
        "name": "Ada",
        "type": "host",
        "is_host": True,
    }
    session = {"session_id": session_id, "room_id": room_id, "started_at": started}
    return [
        {"event": "session:started", **session},
        {"event": "session:participant:joined", **participant},
        {"event": "session:participant:left", **participant},
        {"event": "session:ended", **session, "ended_at": ended},
    ]


def test_a_failing_event_holds_back_its_room_only(deployment: Deployment) -> None:
    receiver, application_id = deployment.receiver, deployment.tenant.application_id
    path_a, path_b = unique_path("order-a"), unique_path("order-b")
    rooms = {}
    for name, path in (("a", path_a), ("b", path_b)):
        url = receiver.url(path)
        urls = {"rooms_callback_url": url, "sessions_callback_url": url}
        rooms[name] = long_term_room(deployment, metadata=f"room {name}", callback_urls=urls)
    receiver.script(path_a, Reply(500), Reply(500))  # A's first event fails twice

    # Four events for each room, interleaved, in one transaction — through the internal API
    # later features use, on the server's database; its worker finds them by polling.
    def emit(conn: Connection) -> dict[str, list[str]]:
        ids: dict[str, list[str]] = {"a": [], "b": []}
        now = int(time.time() * 1000)
        pairs = zip(session_events(rooms["a"]["id"]), session_events(rooms["b"]["id"]), strict=True)
        for event_a, event_b in pairs:
            for name, event in (("a", event_a), ("b", event_b)):
                record = events.emit_event(
                    conn,
                    application_id=application_id,
                    room_id=rooms[name]["id"],
                    event=event,
                    metadata=f"room {name}",
                    now_ms=now,
                )
                ids[name].append(record.id)
        return ids

    ids = write(deployment.database_url, emit)
    at_a = receiver.wait_for_events(set(ids["a"]), path_a)
    at_b = receiver.requests(path_b)

    # A: its first event three times (500, 500, 204), and only then the others, in order.
    assert [(r.event_id, r.attempt) for r in at_a] == [
        (ids["a"][0], 1),
        (ids["a"][0], 2),
        (ids["a"][0], 3),
        (ids["a"][1], 1),
        (ids["a"][2], 1),
        (ids["a"][3], 1),
    ]
    assert [r.json()["event"] for r in at_a[2:]] == [e["event"] for e in session_events("x")]
    # B: all four, in order, once each — and all of them while A's first was still failing.
    assert [r.event_id for r in at_b] == ids["b"]
    assert max(r.at for r in at_b) < at_a[2].at
    assert all(unquote(r.headers["X-Meetd-Room-Metadata"]) == "room b" for r in at_b)


def poll_event(api: httpx.Client, event_id: str, status: str) -> dict[str, Any]:
    """The delivery log's entry for ``event_id`` once it has ``status`` (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        response = api.get(f"/events/{event_id}")
        assert response.status_code == 200, response.text
        entry: dict[str, Any] = response.json()
        if entry["status"] == status:
            return entry
        assert time.monotonic() < deadline, f"event {event_id} stayed {entry['status']}: {entry}"
        time.sleep(0.05)


def test_given_up_after_the_last_attempt_then_redelivered_through_the_api(
    deployment: Deployment,
) -> None:
    receiver = deployment.receiver
    path = unique_path("down")
    url = receiver.url(path)
    receiver.answer(path, Reply(503, body=b"down for maintenance"))
    one = long_term_room(deployment, callback_urls={"rooms_callback_url": url})
    two = long_term_room(deployment, callback_urls={"rooms_callback_url": url})
    delete_room(deployment, one["id"])
    delete_room(deployment, two["id"])

    attempts = 1 + len(SCHEDULE.split(","))
    first_round = receiver.wait_for_count(2 * attempts, path)
    sent = {r.json()["room_id"]: r for r in first_round}
    ids = {room["id"]: sent[room["id"]].event_id for room in (one, two)}

    with deployment.api() as api:
        for room in (one, two):
            entry = poll_event(api, ids[room["id"]], "failed")
            assert entry["attempts"] == attempts
            assert entry["last_status_code"] == 503
            assert entry["last_error"] == "HTTP 503"
            assert entry["last_response"] == "down for maintenance"
            assert entry["next_attempt_at"] is None
            assert entry["delivered_at"] is None
            assert entry["url"] == url
            assert entry["payload"] == sent[room["id"]].json()
        # Failed for good: each was tried exactly as often as the schedule says, no more.
        per_event = collections.Counter(r.event_id for r in receiver.requests(path))
        assert per_event == {ids[one["id"]]: attempts, ids[two["id"]]: attempts}
        listed = api.get("/events", params={"room_id": one["id"], "status": "failed"}).json()
        assert [entry["id"] for entry in listed["_embedded"]] == [ids[one["id"]]]

        # The receiver is back: one event redelivered by id, the other by its room.
        receiver.answer(path, Reply(204))
        response = api.post(f"/events/{ids[one['id']]}/redeliver")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        response = api.post("/events/redeliver", json={"room_id": two["id"]})
        assert response.status_code == 202, response.text
        assert [entry["id"] for entry in response.json()["redelivered"]] == [ids[two["id"]]]

        seen = receiver.wait_for_events(set(ids.values()), path)
        again = seen[2 * attempts :]
        assert sorted(r.event_id for r in again) == sorted(ids.values())
        for received in again:
            assert received.attempt == 1  # a new round of attempts
            original = next(r for r in first_round if r.event_id == received.event_id)
            assert received.body == original.body  # the same event, byte for byte
            verify(received, deployment.tenant.signature_secret)
        for event_id in ids.values():
            entry = poll_event(api, event_id, "delivered")
            assert entry["attempts"] == 1
            assert entry["last_status_code"] == 204
            assert entry["last_error"] is None


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_callback.py"


def forward(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def test_the_documented_example_receiver_accepts_real_deliveries(
    deployment: Deployment,
) -> None:
    """docs/examples/verify_callback.py, run as docs/callbacks.md says, against meetd itself."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(port)],
        env={"MEETD_SIGNATURE_SECRET": deployment.tenant.signature_secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output = process.stdout
    assert output is not None
    reader = threading.Thread(target=forward, args=(output, lines))
    reader.start()
    try:
        assert lines.get(timeout=10).startswith("listening on ")
        url = f"http://127.0.0.1:{port}/meetd"
        room = long_term_room(
            deployment, metadata="from meetd", callback_urls={"rooms_callback_url": url}
        )
        delete_room(deployment, room["id"])
        handled = lines.get(timeout=10).split()
        assert handled[0] == "room:expired"
        assert handled[2:] == [f"room={room['id']}", "metadata='from", "meetd'"]
        with deployment.api() as api:
            entry = poll_event(api, handled[1], "delivered")
        assert entry["last_status_code"] == 204
    finally:
        process.terminate()
        process.wait(10)
        reader.join(10)
        output.close()
