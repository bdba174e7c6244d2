"""The delivery worker driven by hand (``deliver_once()``) with a FakeClock and a fake sender:
order within a room while other rooms flow, retries exactly on the schedule, giving up; the
``room:expired`` events the sweeper and deletions write; and the sender's address checks.
Nothing sleeps and nothing reaches the network."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.delivery.sender import PublicOnlyResolver, Sender, is_public, refused_host
from meetd.domain.timestamps import format_timestamp
from meetd.settings import Settings, build_settings
from meetd.store import events
from meetd.store.events import Claimed, Outcome
from tests import support
from tests.support import Caller, create_room

SCHEDULE = (5, 30, 300)
ROOMS = "/v1/meetings/rooms"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
            "callback_retry_schedule": SCHEDULE,
        },
        environ={},
    )


class ScriptedSender:
    """Fails an event's first ``failures[event_id]`` attempts (500), then answers 204."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.sent: list[Claimed] = []

    async def send(self, event: Claimed, *, now_s: int) -> Outcome:
        self.sent.append(event)
        if self.failures.get(event.id, 0) > 0:
            self.failures[event.id] -= 1
            return Outcome(event.serial, False, 500, "HTTP 500", None)
        return Outcome(event.serial, True, 204, None, None)

    async def close(self) -> None:
        pass


@pytest.fixture
def services(client: TestClient) -> Any:
    return client.app.state.services  # type: ignore[attr-defined]


@pytest.fixture
def sender(services: Any) -> Iterator[ScriptedSender]:
    fake = ScriptedSender()
    services.delivery.sender = fake
    yield fake


def deliver(client: TestClient) -> list[str]:
    """One round of the worker; the ids of the events it tried."""
    services = client.app.state.services  # type: ignore[attr-defined]
    outcomes: list[Outcome] = client.portal.call(services.delivery.deliver_once)
    serials = [outcome.serial for outcome in outcomes]
    return [id_of(client, serial) for serial in serials]


def id_of(client: TestClient, serial: int) -> str:
    database = client.app.state.services.database  # type: ignore[attr-defined]
    row = database.read_blocking(
        lambda c: c.fetchone("SELECT id FROM events WHERE serial = ?", (serial,))
    )
    found: str = row[0]
    return found


def hooked_room(client: TestClient, caller: Caller, name: str) -> str:
    urls = {
        "rooms_callback_url": f"https://{name}.example.test/rooms",
        "sessions_callback_url": f"https://{name}.example.test/sessions",
    }
    room_id: str = create_room(client, caller, callback_urls=urls)["id"]
    return room_id


def emit(services: Any, caller: Caller, room_id: str, number: int) -> str:
    event = {"event": "session:participant:joined", "room_id": room_id, "name": f"p{number}"}
    return support.emit_event(services, caller, room_id, event)


def stored(services: Any, caller: Caller, event_id: str) -> events.EventRecord:
    found: events.EventRecord = services.database.read_blocking(
        lambda c: events.get_event(c, caller.application_id, event_id)
    )
    return found


def all_events(services: Any, caller: Caller) -> list[events.EventRecord]:
    page = services.database.read_blocking(
        lambda c: events.list_events(c, caller.application_id, page_size=100)
    )
    found: list[events.EventRecord] = page.events
    return found


# -- order and retries ----------------------------------------------------------------------


def test_a_room_is_delivered_in_order_while_another_room_flows(
    client: TestClient, account: Caller, clock: FakeClock, services: Any, sender: ScriptedSender
) -> None:
    slow, fast = hooked_room(client, account, "slow"), hooked_room(client, account, "fast")
    s1, f1, s2, f2, s3, f3 = (
        emit(services, account, room, n) for n, room in enumerate([slow, fast] * 3)
    )
    sender.failures[s1] = 2

    assert deliver(client) == [s1, f1]  # s1 fails
    assert deliver(client) == [f2]  # the fast room goes on; s2 waits behind s1
    assert deliver(client) == [f3]
    assert deliver(client) == []
    clock.advance(SCHEDULE[0])
    assert deliver(client) == [s1]  # fails again
    clock.advance(SCHEDULE[1])
    assert deliver(client) == [s1]  # delivered at its third attempt
    assert deliver(client) == [s2]
    assert deliver(client) == [s3]
    assert deliver(client) == []

    by_room: dict[str, list[str]] = {}
    for event in sender.sent:
        by_room.setdefault(event.room_id, []).append(event.id)
    assert by_room == {slow: [s1, s1, s1, s2, s3], fast: [f1, f2, f3]}
    assert [event.attempt for event in sender.sent if event.id == s1] == [1, 2, 3]
    assert {e.status for e in all_events(services, account)} == {"delivered"}


def test_retries_come_exactly_when_the_clock_reaches_the_schedule(
    client: TestClient, account: Caller, clock: FakeClock, services: Any, sender: ScriptedSender
) -> None:
    room = hooked_room(client, account, "down")
    event_id = emit(services, account, room, 1)
    sender.failures[event_id] = 99
    assert deliver(client) == [event_id]
    for wait in SCHEDULE:
        due = clock.now_ms() + wait * 1000
        clock.set(due - 1)
        assert deliver(client) == []
        assert stored(services, account, event_id).next_attempt_at == due
        clock.set(due)
        assert deliver(client) == [event_id]
    record = stored(services, account, event_id)
    assert (record.status, record.attempts, record.next_attempt_at) == (
        "failed",
        1 + len(SCHEDULE),
        None,
    )
    assert record.last_attempt_at == clock.now_ms()
    clock.advance(10 * 86_400)
    assert deliver(client) == []
    assert len(sender.sent) == 1 + len(SCHEDULE)
    metrics = services.metrics.registry
    failed = metrics.get_sample_value("meetd_callback_attempts_total", {"result": "failed"})
    assert failed == 1 + len(SCHEDULE)


def test_a_failed_event_no_longer_holds_back_its_room(
    client: TestClient, account: Caller, clock: FakeClock, services: Any, sender: ScriptedSender
) -> None:
    """Order is kept while an event may still go; once it has failed for good (and waits for
    a redelivery), the room's later events follow."""
    room = hooked_room(client, account, "flaky")
    first, second = emit(services, account, room, 1), emit(services, account, room, 2)
    sender.failures[first] = 99
    assert deliver(client) == [first]
    for wait in SCHEDULE:
        clock.advance(wait)
        assert deliver(client) == [first]
    assert stored(services, account, first).status == "failed"
    assert deliver(client) == [second]
    assert stored(services, account, second).status == "delivered"


def test_the_sender_gets_the_signed_body_and_the_rooms_metadata(
    client: TestClient, account: Caller, services: Any, sender: ScriptedSender
) -> None:
    room = create_room(
        client,
        account,
        metadata="Zoë\nline 2",
        callback_urls={"rooms_callback_url": "https://hook.example.test/"},
    )
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    deliver(client)
    (sent,) = sender.sent
    assert (sent.metadata, sent.url, sent.type) == (
        "Zoë\nline 2",
        "https://hook.example.test/",
        "room:expired",
    )
    assert json.loads(sent.body)["event_id"] == sent.id
    secret = services.database.read_blocking(
        lambda c: c.fetchone(
            "SELECT signature_secret FROM applications WHERE id = ?", (account.application_id,)
        )[0]
    )
    assert sent.signature_secret == secret


# -- room:expired from the sweeper and from deletions -----------------------------------------


def sweep(client: TestClient) -> list[Any]:
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    expired: list[Any] = client.portal.call(sweeper.sweep_once)
    return expired


def test_an_expired_room_yields_exactly_one_room_expired(
    client: TestClient, account: Caller, clock: FakeClock, services: Any
) -> None:
    created_at = clock.now_ms()
    room = create_room(client, account, metadata="m")
    clock.advance(600)
    assert [r.id for r in sweep(client)] == [room["id"]]
    clock.advance(3600)
    assert sweep(client) == []
    (event,) = all_events(services, account)
    assert (event.type, event.room_id, event.metadata) == ("room:expired", room["id"], "m")
    assert event.payload == {
        "event": "room:expired",
        "room_id": room["id"],
        "room_type": "instant",
        "expires_at": format_timestamp(created_at + 600_000),
        "created_at": format_timestamp(created_at),
        "event_id": event.id,
        "timestamp": format_timestamp(created_at + 600_000),
    }

    # Deleting it now, already expired, sends nothing more.
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    assert len(all_events(services, account)) == 1


def test_a_long_term_rooms_event_carries_its_type(
    client: TestClient, account: Caller, clock: FakeClock, services: Any
) -> None:
    expires_at = clock.now_ms() + 3_600_000
    room = create_room(client, account, type="long_term", expires_at=format_timestamp(expires_at))
    clock.set(expires_at)
    sweep(client)
    (event,) = all_events(services, account)
    assert event.payload["room_type"] == "long_term"
    assert event.payload["expires_at"] == room["expires_at"]


def test_deleting_a_live_room_yields_one_room_expired(
    client: TestClient, account: Caller, clock: FakeClock, services: Any
) -> None:
    room = create_room(client, account)
    clock.advance(42)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    clock.advance(600)
    assert sweep(client) == []  # deleted rooms do not expire a second time
    (event,) = all_events(services, account)
    assert event.room_id == room["id"]
    assert event.payload["expires_at"] == format_timestamp(clock.now_ms() - 600_000)
    assert event.payload["timestamp"] == event.payload["expires_at"]


# -- the sender's address checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # link-local: cloud metadata services
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped IPv6
        ("::ffff:10.1.2.3", False),
        ("::ffff:169.254.1.1", False),
        ("ff02::1", False),
        ("8.8.8.8", True),
        ("93.184.215.14", True),
        ("::ffff:8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost/hook", "localhost is a loopback name"),
        ("http://LOCALHOST:8080/hook", "localhost is a loopback name"),
        ("https://api.localhost/hook", "api.localhost is a loopback name"),
        ("http://127.0.0.1:9/hook", "127.0.0.1 is not a public address"),
        ("http://[::1]/hook", "::1 is not a public address"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is not a public address"),
        ("http://192.168.0.10/hook", "192.168.0.10 is not a public address"),
        ("http://169.254.169.254/latest", "169.254.169.254 is not a public address"),
        ("http://[fe80::1]/hook", "fe80::1 is not a public address"),
        ("https://hooks.example.com/x", None),  # a name: the resolver decides
        ("http://8.8.8.8/hook", None),
        ("http://[2606:4700:4700::1111]/hook", None),
        ("http://[::1/hook", "the URL is not valid"),
    ],
)
def test_refused_host(url: str, reason: str | None) -> None:
    assert refused_host(url) == reason


def resolve(host: str, inner: Any = None) -> list[Any]:
    """``PublicOnlyResolver().resolve(host)``, on a loop of its own (aiohttp's resolver
    wants one), optionally over a fake of the lookup it wraps."""

    async def run() -> list[Any]:
        resolver = PublicOnlyResolver()
        if inner is not None:
            await resolver.close()
            resolver._inner = inner
        try:
            return list(await resolver.resolve(host, 80, socket.AF_INET))
        finally:
            await resolver.close()

    return asyncio.run(run())


@pytest.mark.parametrize("host", ["localhost", "2130706433", "127.1"])
def test_names_that_resolve_to_loopback_are_refused(host: str) -> None:
    """What getaddrinfo makes of the name decides: a decimal or short form of 127.0.0.1 is
    no IP literal to refused_host, but it resolves to loopback."""
    assert refused_host(f"http://{host}/") in (None, f"{host} is a loopback name")
    with pytest.raises(OSError, match=f"{host} resolves only to loopback or private addresses"):
        resolve(host)


def test_only_the_public_addresses_of_a_name_are_kept() -> None:
    def entry(host: str) -> dict[str, Any]:
        return {"hostname": "mixed.example", "host": host, "port": 80, "family": 2}

    class Lookup:
        async def resolve(self, host: str, port: int, family: int) -> list[Any]:
            return [entry("10.0.0.5"), entry("93.184.215.14"), entry("::ffff:127.0.0.1")]

        async def close(self) -> None:
            pass

    assert resolve("mixed.example", Lookup()) == [entry("93.184.215.14")]


def test_a_blocking_sender_refuses_before_connecting() -> None:
    sender = Sender(block_private_addresses=True)
    event = Claimed(
        serial=7,
        id="e",
        application_id="a",
        room_id="r",
        type="room:expired",
        body=b"{}",
        metadata=None,
        url="http://127.0.0.1:9/hook",
        attempt=1,
        signature_secret="s" * 32,
        lease_until=30_000,
    )

    async def run() -> Outcome:
        try:
            return await sender.send(event, now_s=0)
        finally:
            await sender.close()

    assert asyncio.run(run()) == Outcome(
        7,
        False,
        None,
        "refused: 127.0.0.1 is not a public address",
        None,
        attempt=1,
        lease_until=30_000,
    )


class RaisingSender(ScriptedSender):
    """Raises for the events named in ``broken``: a bug in the sending path."""

    def __init__(self, broken: set[str]) -> None:
        super().__init__()
        self.broken = broken

    async def send(self, event: Claimed, *, now_s: int) -> Outcome:
        if event.id in self.broken:
            self.sent.append(event)
            raise RuntimeError("a bug in the sender")
        return await super().send(event, now_s=now_s)


def test_the_running_worker_survives_an_attempt_that_raises(
    client: TestClient, account: Caller, services: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The loop itself (``run``), not ``deliver_once``: an attempt that raises is logged, its
    event stays leased (to be tried again when the lease runs out), the others go out."""
    broken_room, fine_room = hooked_room(client, account, "a"), hooked_room(client, account, "b")
    broken = emit(services, account, broken_room, 1)
    fine = emit(services, account, fine_room, 1)
    sender = RaisingSender({broken})
    services.delivery.sender = sender
    running = client.portal.start_task_soon(services.delivery.run)  # type: ignore[union-attr]
    try:
        deadline = time.monotonic() + 10
        while stored(services, account, fine).status != "delivered":
            assert time.monotonic() < deadline, "the fine event was never delivered"
            time.sleep(0.01)
    finally:
        running.cancel()
    assert [event.id for event in sender.sent].count(broken) == 1
    left = stored(services, account, broken)
    assert (left.status, left.attempts) == ("pending", 1)
    assert "a delivery attempt raised" in caplog.text
