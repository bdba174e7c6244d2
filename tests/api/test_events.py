"""The delivery log through the API: list (filtered, paged like rooms), read, redeliver one or
a room's failed events; tenancy and both prefixes.

Events come from the real paths (a deleted room, the expiry sweeper, the emitting function
later issues call), and delivery runs through ``deliver_once()`` with a fake sender whose
answers each test chooses: no network, no sleeping.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import schemathesis
from schemathesis.specs.openapi import checks
from starlette.testclient import TestClient

from meetd.api.openapi import openapi_document
from meetd.clock import FakeClock
from meetd.domain.events import EVENT_TYPES
from meetd.domain.timestamps import format_timestamp
from meetd.settings import Settings, build_settings
from meetd.store.events import Claimed, Outcome
from tests import support
from tests.support import Caller, assert_error, assert_invalid, create_room

BASE = "https://meet.example.test"
EVENTS = "/v1/meetings/events"
ROOMS = "/v1/meetings/rooms"
SCHEDULE = (10, 60)  # seconds: two retries, so an event fails for good at its third attempt
HOOK = "https://hooks.example.test/rooms"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """conftest's settings with a short retry schedule."""
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": BASE,
            "secret_key": "test-secret-key-of-32-characters",
            "callback_retry_schedule": SCHEDULE,
        },
        environ={},
    )


class FakeSender:
    """Answers every attempt with ``answers[url]`` (204 unless set): an HTTP status, or None
    for no answer at all. Remembers what it was asked to send."""

    def __init__(self) -> None:
        self.answers: dict[str, int | None] = {}
        self.sent: list[Claimed] = []

    async def send(self, event: Claimed, *, now_s: int) -> Outcome:
        self.sent.append(event)
        status = self.answers.get(event.url, 204)
        if status is None:
            return Outcome(event.serial, False, None, "timed out after 5 s", None)
        delivered = 200 <= status < 300
        error = None if delivered else f"HTTP {status}"
        return Outcome(event.serial, delivered, status, error, f"answer {status}")

    async def close(self) -> None:
        pass


@pytest.fixture
def sender(client: TestClient) -> FakeSender:
    fake = FakeSender()
    services(client).delivery.sender = fake
    return fake


def services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


def deliver(client: TestClient) -> list[Outcome]:
    outcomes: list[Outcome] = client.portal.call(services(client).delivery.deliver_once)
    return outcomes


def set_url(client: TestClient, caller: Caller, url: str | None) -> None:
    """The application's rooms callback URL, as ``meetd applications update`` sets it."""
    services(client).database.write_blocking(
        lambda c: c.execute(
            "UPDATE applications SET rooms_callback_url = ? WHERE id = ?",
            (url, caller.application_id),
        )
    )


def expire(client: TestClient, caller: Caller, **room: Any) -> dict[str, Any]:
    """A room created and deleted: one ``room:expired``, emitted now."""
    made = create_room(client, caller, **room)
    response = client.delete(f"{ROOMS}/{made['id']}", headers=caller.basic)
    assert response.status_code == 204
    return made


def emit(client: TestClient, caller: Caller, room_id: str, event: dict[str, Any]) -> str:
    return support.emit_event(services(client), caller, room_id, event)


def session_started(room_id: str) -> dict[str, Any]:
    return {
        "event": "session:started",
        "session_id": f"s-{uuid.uuid4().hex[:8]}",
        "room_id": room_id,
        "started_at": "2027-01-15T08:00:00.000Z",
    }


def get_json(client: TestClient, caller: Caller, url: str) -> Any:
    response = client.get(url, headers=caller.basic)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def listed(client: TestClient, caller: Caller, query: str = "", prefix: str = "/v1") -> Any:
    return get_json(client, caller, f"{prefix}/meetings/events" + (f"?{query}" if query else ""))


def entries(page: dict[str, Any]) -> list[dict[str, Any]]:
    embedded = page["_embedded"]
    found: list[dict[str, Any]] = embedded["events"] if isinstance(embedded, dict) else embedded
    return found


def only_event(client: TestClient, caller: Caller) -> dict[str, Any]:
    (event,) = entries(listed(client, caller))
    return event


def read(client: TestClient, caller: Caller, event_id: str) -> dict[str, Any]:
    found: dict[str, Any] = get_json(client, caller, f"{EVENTS}/{event_id}")
    return found


def redeliver(client: TestClient, caller: Caller, event_id: str) -> dict[str, Any]:
    response = client.post(f"{EVENTS}/{event_id}/redeliver", headers=caller.basic)
    assert response.status_code == 202, response.text
    found: dict[str, Any] = response.json()
    return found


def links(event_id: str, prefix: str = "/v1") -> dict[str, Any]:
    href = f"{BASE}{prefix}/meetings/events/{event_id}"
    return {"self": {"href": href}, "redeliver": {"href": f"{href}/redeliver"}}


def at(ms: int | None) -> str | None:
    return None if ms is None else format_timestamp(ms)


# -- the representation --------------------------------------------------------------------------


def test_no_events_is_an_empty_page(client: TestClient, account: Caller) -> None:
    first = {"href": f"{BASE}{EVENTS}?page_size=20"}
    assert listed(client, account) == {
        "page_size": 20,
        "_embedded": [],
        "_links": {"first": first, "self": first},
        "total_items": 0,
    }


def test_an_event_without_a_url_is_kept_as_no_url(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    created = clock.now_ms()
    room = create_room(client, account, metadata="m")
    clock.advance(5)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    event = only_event(client, account)
    assert list(event) == [
        "id",
        "type",
        "room_id",
        "status",
        "url",
        "attempts",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "last_response",
        "payload",
        "_links",
    ]
    assert event == {
        "id": event["id"],
        "type": "room:expired",
        "room_id": room["id"],
        "status": "no_url",
        "url": None,
        "attempts": 0,
        "created_at": at(clock.now_ms()),
        "last_attempt_at": None,
        "next_attempt_at": None,
        "delivered_at": None,
        "last_status_code": None,
        "last_error": None,
        "last_response": None,
        "payload": {
            "event": "room:expired",
            "room_id": room["id"],
            "room_type": "instant",
            "expires_at": at(clock.now_ms()),
            "created_at": at(created),
            "event_id": event["id"],
            "timestamp": at(clock.now_ms()),
        },
        "_links": links(event["id"]),
    }
    assert read(client, account, event["id"]) == event
    assert deliver(client) == []
    assert sender.sent == []


def test_the_payload_is_the_exact_body_sent(
    client: TestClient, account: Caller, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    expire(client, account)
    deliver(client)
    (sent,) = sender.sent
    response = client.get(EVENTS, headers=account.basic)
    assert sent.body in response.content  # the stored bytes, not a re-encoding
    assert only_event(client, account)["payload"] == json.loads(sent.body)


def test_a_delivered_event(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    expire(client, account)
    emitted = clock.now_ms()
    pending = only_event(client, account)
    assert (pending["status"], pending["url"], pending["attempts"]) == ("pending", HOOK, 0)
    assert pending["next_attempt_at"] == at(emitted)

    clock.advance(2)
    assert [outcome.delivered for outcome in deliver(client)] == [True]
    event = read(client, account, pending["id"])
    assert event == {
        **pending,
        "status": "delivered",
        "attempts": 1,
        "last_attempt_at": at(clock.now_ms()),
        "next_attempt_at": None,
        "delivered_at": at(clock.now_ms()),
        "last_status_code": 204,
        "last_error": None,
        "last_response": "answer 204",
    }
    assert event["created_at"] == at(emitted)
    assert deliver(client) == []  # delivered once


def test_the_rooms_own_url_comes_first(
    client: TestClient, account: Caller, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    own = "https://own.example.test/expired"
    expire(client, account, callback_urls={"rooms_callback_url": own})
    assert only_event(client, account)["url"] == own
    deliver(client)
    assert [event.url for event in sender.sent] == [own]


def test_a_failed_attempt_is_retried_on_the_schedule_then_given_up(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    sender.answers[HOOK] = 500
    expire(client, account)
    event_id = only_event(client, account)["id"]

    deliver(client)
    first = clock.now_ms()
    event = read(client, account, event_id)
    assert {key: event[key] for key in ("status", "attempts", "last_attempt_at")} == {
        "status": "pending",
        "attempts": 1,
        "last_attempt_at": at(first),
    }
    assert event["next_attempt_at"] == at(first + SCHEDULE[0] * 1000)
    assert (event["last_status_code"], event["last_error"]) == (500, "HTTP 500")
    assert (event["last_response"], event["delivered_at"]) == ("answer 500", None)

    clock.advance(SCHEDULE[0] - 0.001)
    assert deliver(client) == []
    clock.advance(0.001)
    sender.answers[HOOK] = None  # no answer this time
    assert len(deliver(client)) == 1
    event = read(client, account, event_id)
    assert (event["status"], event["attempts"]) == ("pending", 2)
    assert event["next_attempt_at"] == at(clock.now_ms() + SCHEDULE[1] * 1000)
    assert (event["last_status_code"], event["last_error"]) == (None, "timed out after 5 s")
    assert event["last_response"] is None

    clock.advance(SCHEDULE[1])
    sender.answers[HOOK] = 503
    assert len(deliver(client)) == 1
    event = read(client, account, event_id)
    assert (event["status"], event["attempts"]) == ("failed", 1 + len(SCHEDULE))
    assert (event["next_attempt_at"], event["delivered_at"]) == (None, None)
    assert (event["last_status_code"], event["last_error"]) == (503, "HTTP 503")
    assert event["last_attempt_at"] == at(clock.now_ms())

    clock.advance(86_400)
    assert deliver(client) == []
    assert len(sender.sent) == 1 + len(SCHEDULE)


# -- redelivery ---------------------------------------------------------------------------------


def fail_for_good(client: TestClient, clock: FakeClock) -> None:
    """Deliver until every event due fails for good (the sender answers with errors)."""
    for pause in (0, *SCHEDULE):
        clock.advance(pause)
        deliver(client)


def test_redelivering_a_failed_event_starts_over_at_the_url_configured_now(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    sender.answers[HOOK] = 500
    expire(client, account)
    fail_for_good(client, clock)
    failed = only_event(client, account)
    assert failed["status"] == "failed"

    fixed = "https://fixed.example.test/hook"
    set_url(client, account, fixed)
    clock.advance(30)
    calls: list[int] = []
    services(client).delivery.notice = lambda: calls.append(1)
    again = redeliver(client, account, failed["id"])
    assert calls == [1]  # the worker was told at once
    assert again == {
        **failed,
        "status": "pending",
        "url": fixed,
        "attempts": 0,
        "next_attempt_at": at(clock.now_ms()),
    }
    assert read(client, account, failed["id"]) == again

    clock.advance(1)
    deliver(client)
    assert sender.sent[-1].url == fixed
    assert sender.sent[-1].attempt == 1
    done = read(client, account, failed["id"])
    assert (done["status"], done["attempts"], done["last_status_code"]) == ("delivered", 1, 204)
    assert done["payload"] == failed["payload"]  # the same event, the same body


def test_redelivering_a_pending_event_starts_its_schedule_over(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    """As docs/callbacks.md says: its attempts are reset, not only made due."""
    set_url(client, account, HOOK)
    sender.answers[HOOK] = 500
    expire(client, account)
    event_id = only_event(client, account)["id"]
    deliver(client)
    clock.advance(SCHEDULE[0])
    deliver(client)
    assert read(client, account, event_id)["attempts"] == 2

    again = redeliver(client, account, event_id)

    assert (again["status"], again["attempts"]) == ("pending", 0)
    assert again["next_attempt_at"] == at(clock.now_ms())
    deliver(client)
    event = read(client, account, event_id)
    assert sender.sent[-1].attempt == 1
    # The first step of the schedule again, not the third.
    assert (event["attempts"], event["next_attempt_at"]) == (
        1,
        at(clock.now_ms() + SCHEDULE[0] * 1000),
    )


def test_redelivering_a_delivered_event_sends_it_again(
    client: TestClient, account: Caller, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    expire(client, account)
    deliver(client)
    event_id = only_event(client, account)["id"]
    assert redeliver(client, account, event_id)["status"] == "pending"
    deliver(client)
    assert [event.id for event in sender.sent] == [event_id, event_id]
    assert read(client, account, event_id)["status"] == "delivered"


def test_redelivering_without_a_url_stays_no_url_until_one_is_set(
    client: TestClient, account: Caller, sender: FakeSender
) -> None:
    expire(client, account)
    event_id = only_event(client, account)["id"]
    again = redeliver(client, account, event_id)
    assert (again["status"], again["url"], again["next_attempt_at"]) == ("no_url", None, None)
    set_url(client, account, HOOK)
    again = redeliver(client, account, event_id)
    assert (again["status"], again["url"]) == ("pending", HOOK)
    deliver(client)
    assert read(client, account, event_id)["status"] == "delivered"


def test_redelivering_a_rooms_failed_events(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    set_url(client, account, HOOK)
    sender.answers[HOOK] = 500
    room = create_room(client, account)
    other = expire(client, account)
    started = emit(client, account, room["id"], session_started(room["id"]))
    # session events go to the sessions URL, which is not set: no_url, never failed
    unsent = emit(client, account, room["id"], session_started(room["id"]))
    client.delete(f"{ROOMS}/{room['id']}", headers=account.basic)
    fail_for_good(client, clock)
    by_type = {(e["room_id"], e["type"]): e for e in entries(listed(client, account))}
    expired = by_type[(room["id"], "room:expired")]
    assert expired["status"] == "failed"
    assert read(client, account, started)["status"] == "no_url"
    assert by_type[(other["id"], "room:expired")]["status"] == "failed"

    sender.answers[HOOK] = 200
    response = client.post(
        f"{EVENTS}/redeliver", headers=account.basic, json={"room_id": room["id"]}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert list(body) == ["room_id", "redelivered"]
    assert body["room_id"] == room["id"]
    assert [e["id"] for e in body["redelivered"]] == [expired["id"]]
    assert body["redelivered"][0] == {
        **expired,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at(clock.now_ms()),
    }
    deliver(client)
    assert read(client, account, expired["id"])["status"] == "delivered"
    other_id = by_type[(other["id"], "room:expired")]["id"]
    assert read(client, account, other_id)["status"] == "failed"  # not that room's
    assert read(client, account, unsent)["status"] == "no_url"

    # Nothing failed any more: an empty list, still a 202.
    again = client.post(f"{EVENTS}/redeliver", headers=account.basic, json={"room_id": room["id"]})
    assert (again.status_code, again.json()) == (202, {"room_id": room["id"], "redelivered": []})


def test_a_rooms_failed_events_go_again_oldest_first(
    client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender
) -> None:
    """Events of one room stay in order: the first failing holds the second back, so both
    fail in turn; redelivered, they go again in the order they happened."""
    room = create_room(
        client, account, callback_urls={"sessions_callback_url": HOOK, "rooms_callback_url": HOOK}
    )
    sender.answers[HOOK] = 500
    first = emit(client, account, room["id"], session_started(room["id"]))
    second = emit(client, account, room["id"], session_started(room["id"]))
    fail_for_good(client, clock)
    assert read(client, account, second)["status"] == "pending"  # held back
    fail_for_good(client, clock)
    assert read(client, account, second)["status"] == "failed"

    sender.answers[HOOK] = 204
    sender.sent.clear()
    response = client.post(
        f"{EVENTS}/redeliver", headers=account.basic, json={"room_id": room["id"].upper()}
    )
    assert [e["id"] for e in response.json()["redelivered"]] == [first, second]
    assert response.json()["room_id"] == room["id"]
    deliver(client)
    deliver(client)
    assert [event.id for event in sender.sent] == [first, second]


def test_redelivering_an_unknown_or_foreign_room_is_a_404(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theirs = expire(client, other_account)
    for room_id in (theirs["id"], str(uuid.uuid4())):
        response = client.post(
            f"{EVENTS}/redeliver", headers=account.basic, json={"room_id": room_id}
        )
        assert_error(
            response, 404, "NotFoundError", f"The room with id: {room_id} could not be found"
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"room_id" is required'),
        ([], '"value" must be of type object'),
        ("x", '"value" must be of type object'),
        ({"room_id": None}, '"room_id" must be a string'),
        ({"room_id": "nope"}, '"room_id" must be a valid GUID'),
        ({"room_id": str(uuid.UUID(int=1)), "status": "failed"}, '"status" is not allowed'),
    ],
)
def test_redeliver_body_errors(
    client: TestClient, account: Caller, body: Any, message: str
) -> None:
    assert_invalid(client.post(f"{EVENTS}/redeliver", headers=account.basic, json=body), message)


def test_redeliver_needs_a_room_id(client: TestClient, account: Caller) -> None:
    response = client.post(f"{EVENTS}/redeliver", headers=account.basic)  # an empty body is {}
    assert_invalid(response, '"room_id" is required')


# -- tenancy and ids -----------------------------------------------------------------------------


def test_another_applications_event_is_not_found(
    client: TestClient, account: Caller, other_account: Caller, sender: FakeSender
) -> None:
    room = expire(client, other_account)
    theirs = only_event(client, other_account)["id"]
    assert listed(client, account)["total_items"] == 0
    assert entries(listed(client, account, f"room_id={room['id']}")) == []
    message = f"The event with id: {theirs} could not be found"
    assert_error(
        client.get(f"{EVENTS}/{theirs}", headers=account.basic), 404, "NotFoundError", message
    )
    response = client.post(f"{EVENTS}/{theirs}/redeliver", headers=account.basic)
    assert_error(response, 404, "NotFoundError", message)
    assert read(client, other_account, theirs)["status"] == "no_url"  # untouched


@pytest.mark.parametrize("event_id", ["nope", "0" * 36, str(uuid.uuid4())])
def test_unknown_events_are_not_found(client: TestClient, account: Caller, event_id: str) -> None:
    message = f"The event with id: {event_id} could not be found"
    for response in (
        client.get(f"{EVENTS}/{event_id}", headers=account.basic),
        client.post(f"{EVENTS}/{event_id}/redeliver", headers=account.basic),
    ):
        assert_error(response, 404, "NotFoundError", message)


def test_an_event_id_in_capitals_is_the_same_event(client: TestClient, account: Caller) -> None:
    expire(client, account)
    event = only_event(client, account)
    assert read(client, account, event["id"].upper()) == event


def test_the_log_needs_credentials(client: TestClient, account: Caller) -> None:
    expire(client, account)
    event_id = only_event(client, account)["id"]
    for response in (
        client.get(EVENTS),
        client.get(f"{EVENTS}/{event_id}"),
        client.post(f"{EVENTS}/{event_id}/redeliver"),
        client.post(f"{EVENTS}/redeliver", json={"room_id": str(uuid.uuid4())}),
    ):
        assert response.status_code == 401
        assert "www-authenticate" in response.headers
    jwt_page = client.get(EVENTS, headers=account.bearer()).json()
    assert [e["id"] for e in entries(jwt_page)] == [event_id]


# -- both prefixes ---------------------------------------------------------------------------


def test_beta_embeds_an_object_and_links_on_its_own_prefix(
    client: TestClient, account: Caller
) -> None:
    expire(client, account)
    v1 = listed(client, account)
    beta = listed(client, account, prefix="/beta")
    (event,) = v1["_embedded"]
    assert list(beta["_embedded"]) == ["events"]
    (beta_event,) = beta["_embedded"]["events"]
    assert beta_event == {**event, "_links": links(event["id"], "/beta")}
    first = {"href": f"{BASE}/beta/meetings/events?page_size=20"}
    assert beta["_links"] == {"first": first, "self": first}
    assert get_json(client, account, f"/beta/meetings/events/{event['id']}") == beta_event
    response = client.post(f"/beta/meetings/events/{event['id']}/redeliver", headers=account.basic)
    assert response.status_code == 202
    assert response.json()["_links"] == links(event["id"], "/beta")
    response = client.post(
        "/beta/meetings/events/redeliver", headers=account.basic, json={"room_id": event["room_id"]}
    )
    assert response.json() == {"room_id": event["room_id"], "redelivered": []}


# -- listing: filters and pages -----------------------------------------------------------------


@pytest.fixture
def log(client: TestClient, account: Caller, clock: FakeClock, sender: FakeSender) -> list[Any]:
    """Ten events over three rooms, as ``(room_id, type, status)`` in the order they
    happened: ``noisy``'s receiver takes everything, ``broken``'s answers 500 to everything
    (so each of its events fails for good in turn), ``quiet`` has no URL."""

    def hooks(host: str) -> dict[str, str]:
        return {f"{kind}_callback_url": f"https://{host}/{kind}" for kind in ("rooms", "sessions")}

    noisy = create_room(client, account, callback_urls=hooks("ok.example.test"))
    quiet = create_room(client, account)
    broken = create_room(client, account, callback_urls=hooks("broken.example.test"))
    sender.answers = {url: 500 for url in hooks("broken.example.test").values()}
    made: list[Any] = []
    for room in (noisy, quiet, broken, noisy, broken, quiet, noisy):
        made.append((room["id"], "session:started"))
        emit(client, account, room["id"], session_started(room["id"]))
    for room in (noisy, broken, quiet):
        assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
        made.append((room["id"], "room:expired"))
    for _ in range(4):  # each round settles the first pending event of each room
        fail_for_good(client, clock)
    statuses = {quiet["id"]: "no_url", noisy["id"]: "delivered", broken["id"]: "failed"}
    return [(room_id, kind, statuses[room_id]) for room_id, kind in made]


def summary(page: dict[str, Any]) -> list[Any]:
    return [(e["room_id"], e["type"], e["status"]) for e in entries(page)]


def test_the_log_lists_every_event_in_order(
    client: TestClient, account: Caller, log: list[Any]
) -> None:
    page = listed(client, account)
    assert summary(page) == log
    assert page["total_items"] == len(log)


@pytest.mark.parametrize(
    "filters",
    [
        {"type": "room:expired"},
        {"type": "session:started"},
        {"type": "recording:ready"},
        {"status": "failed"},
        {"status": "delivered"},
        {"status": "no_url"},
        {"status": "pending"},
        {"room": 0},
        {"room": 2, "type": "room:expired"},
        {"room": 0, "status": "delivered", "type": "session:started"},
        {"room": 2, "status": "failed"},
        {"room": 1, "status": "failed"},
    ],
)
def test_filters_select_the_matching_events(
    client: TestClient, account: Caller, log: list[Any], filters: dict[str, Any]
) -> None:
    rooms = list(dict.fromkeys(room_id for room_id, _, _ in log))
    query = {name: value for name, value in filters.items() if name != "room"}
    if "room" in filters:
        query = {"room_id": rooms[filters["room"]], **query}
    wanted = [
        entry
        for entry in log
        if entry[0] == query.get("room_id", entry[0])
        and entry[1] == query.get("type", entry[1])
        and entry[2] == query.get("status", entry[2])
    ]
    text = "&".join(f"{name}={value}" for name, value in query.items())
    page = listed(client, account, text)
    assert summary(page) == wanted
    assert page["total_items"] == len(wanted)
    for link in page["_links"].values():
        params = dict(parse_qsl(urlsplit(link["href"]).query))
        assert {name: params.get(name) for name in query} == query


@pytest.mark.parametrize("prefix", ["/v1", "/beta"])
@pytest.mark.parametrize(
    "query", ["", "status=delivered", "type=session:started", "type=session%3Astarted&room=1"]
)
def test_walking_the_pages_visits_each_event_once(
    client: TestClient, account: Caller, log: list[Any], prefix: str, query: str
) -> None:
    rooms = list(dict.fromkeys(room_id for room_id, _, _ in log))
    query = query.replace("room=1", f"room_id={rooms[1]}")
    everything = listed(client, account, query, prefix)
    assert everything["total_items"] >= 2
    url = f"{BASE}{prefix}/meetings/events?page_size=2" + (f"&{query}" if query else "")
    forward = walk(client, account, url, "next")
    assert [len(entries(page)) for page in forward[:-1]] == [2] * (len(forward) - 1)
    assert [e for page in forward for e in entries(page)] == entries(everything)
    assert {page["total_items"] for page in forward} == {everything["total_items"]}

    last_serial = serial_of(client, entries(everything)[-1]["id"])
    backward = walk(client, account, f"{url}&end_id={last_serial + 1}", "prev")
    ids = [e["id"] for page in reversed(backward) for e in entries(page)]
    assert ids == [e["id"] for e in entries(everything)]


def walk(client: TestClient, caller: Caller, url: str, direction: str) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    seen: set[str] = set()
    while True:
        assert url not in seen and url.startswith(BASE)
        seen.add(url)
        pages.append(get_json(client, caller, url))
        link = pages[-1]["_links"].get(direction)
        if link is None:
            return pages
        url = link["href"]


def serial_of(client: TestClient, event_id: str) -> int:
    row = services(client).database.read_blocking(
        lambda c: c.fetchone("SELECT serial FROM events WHERE id = ?", (event_id,))
    )
    return int(row[0])


def test_start_and_end_ids_bound_the_page_as_for_rooms(
    client: TestClient, account: Caller, log: list[Any]
) -> None:
    ids = [e["id"] for e in entries(listed(client, account))]
    serials = [serial_of(client, event_id) for event_id in ids]
    page = listed(client, account, f"page_size=3&start_id={serials[2]}&status=delivered")
    delivered = [i for i, entry in zip(ids, log, strict=True) if entry[2] == "delivered"]
    later = [i for i in delivered if serial_of(client, i) >= serials[2]]
    assert [e["id"] for e in entries(page)] == later[:3]
    href = f"{BASE}{EVENTS}?page_size=3&status=delivered"
    assert page["_links"]["first"] == {"href": href}
    assert page["_links"]["self"] == {"href": f"{href}&start_id={serials[2]}"}

    page = listed(client, account, f"page_size=2&end_id={serials[5]}")
    assert [e["id"] for e in entries(page)] == ids[3:5]
    assert page["_links"]["self"] == {"href": f"{BASE}{EVENTS}?page_size=2&end_id={serials[5]}"}
    assert page["_links"]["prev"] == {"href": f"{BASE}{EVENTS}?page_size=2&end_id={serials[3]}"}
    after = serials[4] + 1
    assert page["_links"]["next"] == {"href": f"{BASE}{EVENTS}?page_size=2&start_id={after}"}

    beyond = serials[-1] + 100
    page = listed(client, account, f"start_id={beyond}")
    assert entries(page) == []
    assert page["_links"]["prev"] == {"href": f"{BASE}{EVENTS}?page_size=20&end_id={beyond}"}
    assert "next" not in page["_links"]
    page = listed(client, account, f"end_id={serials[0]}")
    assert entries(page) == []
    assert page["_links"]["next"] == {"href": f"{BASE}{EVENTS}?page_size=20&start_id={serials[0]}"}
    assert "prev" not in page["_links"]


def test_the_sweeper_logs_room_expired(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create_room(client, account, display_name="swept")
    clock.advance(600)
    sweeper = services(client).sweeper
    assert len(client.portal.call(sweeper.sweep_once)) == 1
    event = only_event(client, account)
    assert (event["type"], event["room_id"], event["status"]) == (
        "room:expired",
        room["id"],
        "no_url",
    )
    assert event["payload"]["expires_at"] == room["expires_at"]
    assert entries(listed(client, account, f"room_id={room['id']}&type=room:expired")) == [event]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("type=room:created", '"type" must be one of [{}]'),
        ("type=", '"type" must be one of [{}]'),
        ("status=sent", '"status" must be one of [pending, delivered, failed, no_url]'),
        ("room_id=nope", '"room_id" must be a valid GUID'),
        ("room_id=", '"room_id" must be a valid GUID'),
        ("page_size=0", '"page_size" must be greater than or equal to 1'),
        ("page_size=101", '"page_size" must be less than or equal to 100'),
        ("start_id=-1", '"start_id" must be greater than or equal to 0'),
        ("end_id=x", '"end_id" must be a number'),
    ],
)
def test_bad_queries_are_named(
    client: TestClient, account: Caller, query: str, message: str
) -> None:
    types = ", ".join(EVENT_TYPES)
    assert_invalid(client.get(f"{EVENTS}?{query}", headers=account.basic), message.format(types))


# -- the document -----------------------------------------------------------------------------


@pytest.fixture
def document() -> Any:
    return schemathesis.openapi.from_dict(openapi_document(BASE))


def test_answers_keep_to_the_openapi_document(
    client: TestClient, account: Caller, log: list[Any], document: Any
) -> None:
    """Every status, every nullable field filled and empty, against the closed schemas."""
    for prefix in ("/v1", "/beta"):
        path = f"{prefix}/meetings/events"
        page = client.get(path, headers=account.basic)
        case = document[path]["GET"].Case()
        case.validate_response(page, checks=[checks.response_schema_conformance])
        for event in entries(page.json()):
            one = document[f"{path}/{{event_id}}"]["GET"].Case(
                path_parameters={"event_id": event["id"]}
            )
            response = client.get(f"{path}/{event['id']}", headers=account.basic)
            one.validate_response(response, checks=[checks.response_schema_conformance])
        room_id = entries(page.json())[-1]["room_id"]
        response = client.post(
            f"{path}/redeliver", headers=account.basic, json={"room_id": room_id}
        )
        case = document[f"{path}/redeliver"]["POST"].Case(body={"room_id": room_id})
        case.validate_response(response, checks=[checks.response_schema_conformance])
