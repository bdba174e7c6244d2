"""Errors and the operator endpoints (contract §1, §3): unknown routes, wrong methods, the
media type of every answer, /healthz and /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
import uuid
from typing import Any

import asyncpg
import psycopg
import pytest
from starlette.testclient import TestClient

from meetd.api import service
from meetd.api.requests import MAX_BODY_BYTES
from tests.support import Caller

ROOMS = "/v1/meetings/rooms"


def assert_error_body(response: Any, status: int, name: str | None) -> dict[str, Any]:
    """The §3 body; ``name`` None: any ``...Error`` name (the contract names none for 405)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert list(body) == ["message", "name", "status"]
    assert body["name"] == name if name else body["name"].endswith("Error")
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v1/meetings",
        "/v1/meetings/room",
        "/v2/meetings/rooms",
        "/v1/meetings/rooms//",
        f"/v1/meetings/rooms/{uuid.uuid4()}/extra",
        "/beta/meetings/nothing",
        "/V1/MEETINGS/ROOMS",
    ],
)
def test_unknown_route_is_a_404_in_the_error_format(
    client: TestClient, account: Caller, path: str
) -> None:
    for headers in ({}, account.basic):
        assert_error_body(client.get(path, headers=headers), 404, "NotFoundError")
    assert_error_body(client.post(path, headers=account.basic, json={}), 404, "NotFoundError")


def test_one_trailing_slash_is_ignored_as_express_ignored_it(
    client: TestClient, account: Caller
) -> None:
    created = client.post(f"{ROOMS}/", headers=account.basic, json={"display_name": "x"})
    assert created.status_code == 201, created.text
    room = created.json()
    listed = client.get(f"{ROOMS}/", headers=account.basic)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["_embedded"]] == [room["id"]]
    read = client.get(f"{ROOMS}/{room['id']}/", headers=account.basic)
    assert (read.status_code, read.json()) == (200, room)
    assert client.delete(f"{ROOMS}/{room['id']}/", headers=account.basic).status_code == 204
    allowed = client.put("/beta/meetings/rooms/", headers=account.basic)
    assert_error_body(allowed, 405, None)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", ROOMS, {"GET", "POST"}),
        ("DELETE", ROOMS, {"GET", "POST"}),
        ("PATCH", "/beta/meetings/rooms", {"GET", "POST"}),
        ("POST", f"{ROOMS}/{uuid.uuid4()}", {"GET", "PATCH", "DELETE"}),
        ("PUT", f"{ROOMS}/{uuid.uuid4()}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/metrics", {"GET"}),
    ],
)
def test_wrong_method_is_a_405_with_allow(
    client: TestClient, account: Caller, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path, headers=account.basic, json={"display_name": "x"})
    assert_error_body(response, 405, None)
    listed = {part.strip() for part in response.headers["allow"].split(",")}
    assert allowed <= listed
    assert method not in listed
    assert listed <= allowed | {"HEAD", "OPTIONS"}


def test_wrong_method_writes_nothing(client: TestClient, account: Caller) -> None:
    client.put(ROOMS, headers=account.basic, json={"display_name": "x"})
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


def test_every_answer_is_exactly_application_json(client: TestClient, account: Caller) -> None:
    created = client.post(ROOMS, headers=account.basic, json={"display_name": "x"})
    room_url = f"{ROOMS}/{created.json()['id']}"
    responses = {
        "201": created,
        "200 read": client.get(room_url, headers=account.basic),
        "200 list": client.get(ROOMS, headers=account.basic),
        "200 beta list": client.get("/beta/meetings/rooms", headers=account.basic),
        "200 update": client.patch(
            room_url, headers=account.basic, json={"update_details": {"expire_after_use": True}}
        ),
        "400": client.post(ROOMS, headers=account.basic, json={}),
        "400 bad json": client.post(ROOMS, headers=account.basic, content=b"{"),
        "401": client.get(ROOMS),
        "404": client.get(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic),
        "404 route": client.get("/nowhere"),
        "405": client.put(ROOMS, headers=account.basic),
        "healthz": client.get("/healthz"),
    }
    for label, response in responses.items():
        assert response.headers["content-type"] == "application/json", label
        assert response.json() is not None, label
    assert responses["200 update"].status_code == 400  # instant rooms do not change


def test_delete_answers_204_without_a_body(client: TestClient, account: Caller) -> None:
    created = client.post(ROOMS, headers=account.basic, json={"display_name": "x"}).json()
    response = client.delete(f"{ROOMS}/{created['id']}", headers=account.basic)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


@pytest.mark.parametrize(
    "content",
    [b"[]", b'"room"', b"42", b"true", b"null", b"{", b"\x00", b"\xff\xfe", b"  "],
)
def test_a_body_that_is_not_a_json_object_is_a_400_on_update(
    client: TestClient, account: Caller, content: bytes
) -> None:
    response = client.patch(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic, content=content)
    assert_error_body(response, 400, "InputValidationError")


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("POST", ROOMS, '"display_name" is required'),
        ("PATCH", f"{ROOMS}/{uuid.uuid4()}", '"update_details" is required'),
        ("POST", "/beta/meetings/rooms", '"display_name" is required'),
        ("POST", "/v1/meetings/themes", '"main_color" is required'),
        ("PATCH", f"/v1/meetings/themes/{uuid.uuid4()}", '"update_details" is required'),
        ("PUT", f"/v1/meetings/themes/{uuid.uuid4()}/finalizeLogos", '"keys" is required'),
        ("PATCH", "/v1/meetings/applications", '"update_details" is required'),
        ("POST", "/v1/meetings/events/redeliver", '"room_id" is required'),
    ],
)
@pytest.mark.parametrize("content", [None, b"", b" \r\n\t"])
def test_an_empty_body_reads_as_an_empty_object(
    client: TestClient, account: Caller, method: str, path: str, message: str, content: bytes | None
) -> None:
    """Express's body parser made ``{}`` of an empty body, so Vonage named the first field
    missing; without a body, or with ``Content-Length: 0``, or only whitespace."""
    headers = {**account.basic, "Content-Type": "application/json"}
    response = client.request(method, path, headers=headers, content=content)
    body = assert_error_body(response, 400, "InputValidationError")
    assert body["message"] == message


def test_content_type_header_is_case_insensitive(client: TestClient, account: Caller) -> None:
    for content_type in ("application/json", "APPLICATION/JSON", "Application/Json; charset=UTF-8"):
        response = client.post(
            ROOMS,
            headers={**account.basic, "content-type": content_type},
            content=b'{"display_name": "ct"}',
        )
        assert response.status_code == 201, content_type


def test_a_byte_order_mark_before_the_json_is_dropped(client: TestClient, account: Caller) -> None:
    """Express's body parser decoded bodies with iconv-lite, which drops a UTF-8 BOM."""
    bom = b"\xef\xbb\xbf"
    response = client.post(ROOMS, headers=account.basic, content=bom + b'{"display_name": "b"}')
    assert response.status_code == 201
    assert response.json()["display_name"] == "b"
    response = client.post(ROOMS, headers=account.basic, content=bom)
    assert assert_error_body(response, 400, "InputValidationError")["message"] == (
        '"display_name" is required'
    )


def test_an_oversized_body_is_a_400(client: TestClient, account: Caller) -> None:
    body = b'{"display_name": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(ROOMS, headers=account.basic, content=body)
    assert_error_body(response, 400, "InputValidationError")
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


def call_app(
    client: TestClient, headers: list[tuple[bytes, bytes]], receive: Any
) -> tuple[int, dict[str, Any]]:
    """POST to /rooms straight through the ASGI app, with the test's own ``receive``: the
    body arrives as the test hands it out, which TestClient (reading it whole) cannot do."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": ROOMS,
        "raw_path": ROOMS.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"meet.example.test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("meet.example.test", 443),
    }
    client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return sent[0]["status"], json.loads(body)


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_body_is_refused_before_it_is_all_read(
    client: TestClient, account: Caller, announced: bool
) -> None:
    chunk, chunks = b"x" * 65536, 1000  # 64 MiB, far past the limit
    handed_out = 0

    async def receive() -> dict[str, Any]:
        nonlocal handed_out
        handed_out += 1
        return {"type": "http.request", "body": chunk, "more_body": handed_out < chunks}

    auth = account.basic["Authorization"].encode()
    headers = [(b"authorization", auth)]
    if announced:
        headers.append((b"content-length", str(len(chunk) * chunks).encode()))
    status, body = call_app(client, headers, receive)
    assert (status, body["name"]) == (400, "InputValidationError")
    assert body["message"] == f"The request body is larger than {MAX_BODY_BYTES} bytes"
    # Read up to the first chunk past the limit, or not at all when the length said so.
    assert handed_out == (0 if announced else MAX_BODY_BYTES // len(chunk) + 1)
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


def test_a_client_gone_during_the_body_is_not_a_server_error(
    client: TestClient, account: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b'{"display_name": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    auth = account.basic["Authorization"].encode()
    with caplog.at_level(logging.INFO):
        status, body = call_app(client, [(b"authorization", auth)], receive)
    # What /uploads answers when its client goes away.
    assert (status, body["name"]) == (400, "BadRequestError")
    assert body["message"] == "The client went away during the request"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    text = client.get("/metrics").text
    assert (
        metric(text, "meetd_http_requests_total", method="POST", route=ROOMS, status="500") is None
    )
    assert metric(text, "meetd_http_requests_total", method="POST", route=ROOMS, status="400") == 1
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_answers_503_when_the_database_hangs(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that never answers (a network that drops packets) is down, not slow."""
    monkeypatch.setattr(service, "HEALTH_TIMEOUT_SECONDS", 0.2)

    async def never_answers(fn: object) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(client.app.state.services.db, "read", never_answers)  # type: ignore[attr-defined]
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["message"] == "The database does not answer"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (sqlite3.OperationalError("database is locked"), 503),
        (sqlite3.OperationalError("attempt to write a readonly database"), 503),
        (TimeoutError(), 503),  # a PostgreSQL read that got no answer in time
        (ConnectionRefusedError(111, "Connection refused"), 503),
        (psycopg.OperationalError("server closed the connection unexpectedly"), 503),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), 503),
        (sqlite3.OperationalError("no such column: nonsense"), 500),  # meetd's own fault
        (RuntimeError("a bug"), 500),
    ],
)
def test_a_database_that_cannot_be_used_now_is_a_503(
    client: TestClient,
    account: Caller,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
) -> None:
    """Down, unreachable, locked or read-only: "try again" (503, Retry-After), which SDKs
    and load balancers act on; a statement meetd got wrong stays a 500."""

    async def fails(fn: object) -> None:
        raise error

    monkeypatch.setattr(client.app.state.services.db, "read", fails)  # type: ignore[attr-defined]
    response = client.get(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic)
    assert response.status_code == status
    if status == 503:
        assert response.headers["retry-after"] == "1"
        assert response.json() == {
            "message": "The database is not available",
            "name": "ServiceUnavailableError",
            "status": 503,
        }


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    return None


def test_metrics_count_requests_by_route_template(client: TestClient, account: Caller) -> None:
    room_ids = [
        client.post(ROOMS, headers=account.basic, json={"display_name": f"m{i}"}).json()["id"]
        for i in range(3)
    ]
    for room_id in room_ids:
        assert client.get(f"{ROOMS}/{room_id}", headers=account.basic).status_code == 200
    client.get(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic)
    client.get("/nowhere")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    template = "/v1/meetings/rooms/{room_id}"
    assert (
        metric(text, "meetd_http_requests_total", method="GET", route=template, status="200") == 3
    )
    assert (
        metric(text, "meetd_http_requests_total", method="GET", route=template, status="404") == 1
    )
    assert metric(text, "meetd_http_requests_total", method="POST", route=ROOMS, status="201") == 3
    assert metric(text, "meetd_rooms_created_total") == 3
    assert all(room_id not in text for room_id in room_ids)  # ids never become labels
    assert "/nowhere" not in text


def test_rooms_created_counts_only_rooms_made(client: TestClient, account: Caller) -> None:
    assert metric(client.get("/metrics").text, "meetd_rooms_created_total") == 0
    client.post(ROOMS, headers=account.basic, json={"display_name": "one"})
    client.post(ROOMS, headers=account.basic, json={})  # rejected
    client.post(ROOMS, json={"display_name": "anonymous"})  # unauthenticated
    client.post("/beta/meetings/rooms", headers=account.bearer(), json={"display_name": "two"})
    assert metric(client.get("/metrics").text, "meetd_rooms_created_total") == 2


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[" * 100_000, id="deep-array"),
        pytest.param(b'{"a":' * 50_000, id="deep-object"),
        pytest.param(b'{"display_name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", id="deep-field"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_deeply_nested_json_is_a_400_not_a_500(
    client: TestClient, account: Caller, content: bytes, method: str
) -> None:
    path = ROOMS if method == "POST" else f"{ROOMS}/{uuid.uuid4()}"
    response = client.request(method, path, headers=account.basic, content=content)
    assert_error_body(response, 400, "InputValidationError")


UNKNOWN = "757266EA-1B2C-4D3E-8F90-A1B2C3D4E5F6"  # upper-case, as some clients write UUIDs


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("GET", "/rooms/{id}", None, "The room with id: {id} could not be found"),
        (
            "PATCH",
            "/rooms/{id}",
            {"update_details": {"expire_after_use": True}},
            "The room with id: {id} could not be found",
        ),
        ("DELETE", "/rooms/{id}", None, "The room with id: {id} could not be found"),
        ("GET", "/themes/{id}", None, "could not find theme {id}"),
        (
            "PATCH",
            "/themes/{id}",
            {"update_details": {"brand_text": "b"}},
            "could not find theme {id}",
        ),
        ("DELETE", "/themes/{id}", None, "could not find theme {id}"),
        ("PUT", "/themes/{id}/finalizeLogos", {"keys": ["k"]}, "could not find theme {id}"),
        (
            "GET",
            "/themes/{id}/rooms",
            None,
            "Failed to get rooms because theme id {id} not found",
        ),
        ("GET", "/recordings/{id}", None, "Recording {id} was not found"),
        ("GET", "/events/{id}", None, "The event with id: {id} could not be found"),
        ("POST", "/events/{id}/redeliver", None, "The event with id: {id} could not be found"),
    ],
)
@pytest.mark.parametrize(
    "sent", [UNKNOWN, UNKNOWN[:8].lower() + UNKNOWN[8:]], ids=["upper", "mixed"]
)
def test_an_unknown_id_is_named_as_it_was_sent(
    client: TestClient,
    account: Caller,
    method: str,
    path: str,
    body: Any,
    message: str,
    sent: str,
) -> None:
    """Existing objects are found whatever the case of their id (the tests of each resource);
    an unknown id comes back in the 404 exactly as the client wrote it."""
    response = client.request(
        method,
        "/v1/meetings" + path.format(id=sent),
        headers=account.basic,
        json=body,
    )
    assert_error_body(response, 404, "NotFoundError")
    assert response.json()["message"] == message.format(id=sent)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_locked_by_another_process_holds_up_only_its_writes(
    client: TestClient, account: Caller, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's sqlite3 shell (or another process) holds SQLite's write lock: reads
    answer meanwhile; a create waits and lands once the lock is free; a create that waits
    past the writer's limit is a 503 that wrote nothing."""
    from concurrent.futures import ThreadPoolExecutor

    from meetd.store.runners import LoopWriter

    room = client.post(ROOMS, headers=account.basic, json={"display_name": "first"}).json()
    other = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                client.post, ROOMS, headers=account.basic, json={"display_name": "waited"}
            )
            time.sleep(0.2)
            began = time.monotonic()
            read = client.get(f"{ROOMS}/{room['id']}", headers=account.basic)
            read_seconds = time.monotonic() - began
            assert read.status_code == 200
            assert not waiting.done()
            other.execute("COMMIT")
            created = waiting.result(timeout=10)
        assert created.status_code == 201, created.text
        assert read_seconds < 1  # it once waited out SQLite's 10 s busy wait with the write

        monkeypatch.setattr(LoopWriter, "LOCK_WAIT_SECONDS", 0.3)
        other.execute("BEGIN IMMEDIATE")
        refused = client.post(ROOMS, headers=account.basic, json={"display_name": "refused"})
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    listed = client.get(ROOMS, headers=account.basic).json()
    names = [r["display_name"] for r in listed["_embedded"]]
    assert names == ["first", "waited"]
