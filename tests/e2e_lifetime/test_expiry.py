"""Room expiry against real ``meetd serve`` processes (contract §4, Lifetime).

"Expiry is exact to the second (a sweeper, not a lazy check on read only), survives restarts,
and happens once even with several server processes." Each test watches rooms from outside,
over HTTP, with the short lifetimes the settings allow, and counts expiries on /metrics.

Timing rules used throughout, on the one clock the server and the test share:
- a response saying ``is_available: false`` must arrive no earlier than ``expires_at``
  (the server cannot have expired the room before its time);
- a request sent more than a second after ``expires_at`` must not see it available
  (:data:`SLACK` adds the polling interval and request time to the sweeper's one second).
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from meetd.cli import main
from meetd.settings import ENVIRONMENT_VARIABLES
from tests import support
from tests.e2e_lifetime.servers import Server, ServerPool, clean_environment

pytestmark = pytest.mark.e2e

ROOMS = "/v1/meetings/rooms"
SHORT_LIVES = {"MEETD_INSTANT_ROOM_TTL_SECONDS": "2", "MEETD_LONG_TERM_MIN_LEAD_SECONDS": "1"}
SLACK = 1.3  # seconds past expires_at: the sweeper's second, plus polling and a request
POLL = 0.05
EXPIRED_TOTAL = "meetd_rooms_expired_total"
CREATED_TOTAL = "meetd_rooms_created_total"


@dataclasses.dataclass
class Credentials:
    api_key: str
    api_secret: str


@dataclasses.dataclass
class Watch:
    """What polling saw of one room."""

    room_id: str
    expires_at: float  # seconds since the epoch
    last_available_sent: float | None = None  # latest request sent that still saw it available
    first_expired_received: float | None = None
    flapped: bool = False  # available again after being seen unavailable

    def observe(self, available: bool, sent: float, received: float) -> None:
        if available:
            if self.first_expired_received is not None:
                self.flapped = True
            self.last_available_sent = max(self.last_available_sent or 0.0, sent)
        elif self.first_expired_received is None:
            self.first_expired_received = received

    def check(self) -> None:
        """Expired once, not before ``expires_at``, and within the second after it."""
        assert not self.flapped, f"room {self.room_id} became available again"
        assert self.first_expired_received is not None, (
            f"room {self.room_id} never expired (expires_at {self.expires_at:.3f})"
        )
        # 10 ms for the millisecond rounding of expires_at on the wire.
        early = self.expires_at - self.first_expired_received
        assert early < 0.01, f"room {self.room_id} expired {early:.3f}s before its expires_at"
        if self.last_available_sent is not None:
            late = self.last_available_sent - self.expires_at
            assert late < SLACK, f"room {self.room_id} still available {late:.3f}s after expiry"


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def create_account(data_dir: Path, database_url: str | None = None) -> Credentials:
    """An account made by the CLI, as an operator would, before the servers start."""
    credentials = Credentials(f"k{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex}")
    args = ["accounts", "create", "--data-dir", str(data_dir), "--json"]
    args += ["--api-key", credentials.api_key, "--api-secret", credentials.api_secret]
    if database_url is not None:
        args += ["--database-url", database_url]
    environ: dict[str, str | None] = dict.fromkeys(ENVIRONMENT_VARIABLES)
    result = CliRunner().invoke(main, args, env=environ, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return credentials


@pytest.fixture
def api() -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def client_for(server: Server, credentials: Credentials) -> httpx.Client:
        client = httpx.Client(
            base_url=server.url, auth=(credentials.api_key, credentials.api_secret), timeout=10
        )
        clients.append(client)
        return client

    yield client_for
    for client in clients:
        client.close()


def create_room(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("display_name", f"room {uuid.uuid4().hex[:6]}")
    response = client.post(ROOMS, json=body)
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    assert room["is_available"] is True
    return room


def watch_rooms(client: httpx.Client, rooms: list[dict[str, Any]]) -> list[Watch]:
    """Poll each room by GET until every one was seen expired, or well past its time."""
    watches = [Watch(room["id"], seconds(room["expires_at"])) for room in rooms]
    give_up = max(watch.expires_at for watch in watches) + SLACK + 2
    while time.time() < give_up:
        for watch in watches:
            sent = time.time()
            response = client.get(f"{ROOMS}/{watch.room_id}")
            assert response.status_code == 200, response.text
            watch.observe(response.json()["is_available"], sent, time.time())
        if all(watch.first_expired_received is not None for watch in watches):
            break
        time.sleep(POLL)
    return watches


def wait_for_metric(server: Server, name: str, value: float, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while server.metric(name) < value and time.monotonic() < deadline:
        time.sleep(POLL)


def test_rooms_expire_within_the_second_after_expires_at_and_once(
    servers: ServerPool, api: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    credentials = create_account(data_dir)
    server = servers.start(data_dir, env=SHORT_LIVES)
    client = api(server, credentials)

    instant = create_room(client)
    long_term = create_room(client, type="long_term", expires_at=iso(time.time() + 2.5))
    created = time.time()
    assert seconds(instant["expires_at"]) == pytest.approx(created + 2, abs=1)

    watches = watch_rooms(client, [instant, long_term])
    for watch in watches:
        watch.check()
        # It was watched while still available shortly before its time, not only after.
        assert watch.last_available_sent is not None
        assert watch.last_available_sent > watch.expires_at - 0.5

    assert server.metric(EXPIRED_TOTAL) == 2
    time.sleep(1.2)  # another sweep or two: nothing is expired a second time
    assert server.metric(EXPIRED_TOTAL) == 2
    assert server.metric(CREATED_TOTAL) == 2
    listed = client.get(ROOMS).json()["_embedded"]
    assert {room["id"]: room["is_available"] for room in listed} == {
        instant["id"]: False,
        long_term["id"]: False,
    }


def test_rooms_due_while_the_server_was_down_expire_promptly_after_start(
    servers: ServerPool, api: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    credentials = create_account(data_dir)
    lives = {**SHORT_LIVES, "MEETD_INSTANT_ROOM_TTL_SECONDS": "3"}
    first = servers.start(data_dir, env=lives)
    client = api(first, credentials)
    early = [create_room(client) for _ in range(3)]
    early.append(create_room(client, type="long_term", expires_at=iso(time.time() + 3)))
    late = create_room(client, type="long_term", expires_at=iso(time.time() + 7))
    first.stop()
    stopped = time.time()
    earliest = min(seconds(room["expires_at"]) for room in early)
    assert stopped < earliest - 0.5, "the first server took too long to stop for this test"
    assert first.process.poll() is not None

    # Down across every early room's expires_at; none expired, nobody was there to do it.
    time.sleep(max(seconds(room["expires_at"]) for room in early) - time.time() + 0.3)
    second = servers.start(data_dir, env=lives)
    ready = time.time()
    client = api(second, credentials)

    watches = watch_rooms(client, early)
    for watch in watches:
        assert watch.first_expired_received is not None, f"{watch.room_id} did not expire"
        assert watch.first_expired_received - ready < SLACK, "expired too long after start"
        assert not watch.flapped
    wait_for_metric(second, EXPIRED_TOTAL, len(early))
    assert second.metric(EXPIRED_TOTAL) == len(early)

    # A room due after the restart expires on time, from the deadline kept in the database.
    (watch,) = watch_rooms(client, [late])
    watch.check()
    assert watch.last_available_sent is not None
    assert watch.last_available_sent > watch.expires_at - 0.5
    wait_for_metric(second, EXPIRED_TOTAL, len(early) + 1)
    assert second.metric(EXPIRED_TOTAL) == len(early) + 1


def test_two_processes_on_one_postgresql_database_expire_each_room_once(
    servers: ServerPool, api: Any, tmp_path: Path
) -> None:
    with support.postgres_schema() as database_url:
        try:
            _expire_across_two_processes(servers, api, tmp_path, database_url)
        finally:
            servers.stop_all()  # before the schema is dropped under them


def _expire_across_two_processes(
    servers: ServerPool, api: Any, tmp_path: Path, database_url: str
) -> None:
    credentials = create_account(tmp_path / "a", database_url)
    pair = [
        servers.start(tmp_path / name, database_url=database_url, env=SHORT_LIVES)
        for name in ("a", "b")
    ]
    clients = [api(server, credentials) for server in pair]

    # Half instant (each its own deadline), half long-term sharing one deadline, so that
    # both sweepers find the same batch due at the same moment.
    shared_deadline = math.ceil(time.time() + 3)
    rooms = []
    for i in range(50):
        client = clients[i % 2]
        if i % 4 < 2:
            rooms.append(create_room(client))
        else:
            rooms.append(create_room(client, type="long_term", expires_at=iso(shared_deadline)))

    watches = {room["id"]: Watch(room["id"], seconds(room["expires_at"])) for room in rooms}
    give_up = max(watch.expires_at for watch in watches.values()) + SLACK + 2
    turn = 0
    while time.time() < give_up:
        sent = time.time()
        response = clients[turn % 2].get(ROOMS, params={"page_size": 100})
        received = time.time()
        turn += 1
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total_items"] == len(rooms)
        for room in page["_embedded"]:
            watches[room["id"]].observe(room["is_available"], sent, received)
        if all(watch.first_expired_received is not None for watch in watches.values()):
            break
        time.sleep(POLL)
    for watch in watches.values():
        watch.check()

    time.sleep(1.2)  # let both sweepers run again: a second expiry would show in the sum
    counts = [server.metric(EXPIRED_TOTAL) for server in pair]
    assert sum(counts) == len(rooms), f"expired per process: {counts}"
    assert sum(server.metric(CREATED_TOTAL) for server in pair) == len(rooms)
    for server in pair:
        assert server.process.poll() is None, server.stderr[-2000:]


def test_clean_environment_drops_meetd_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEETD_INSTANT_ROOM_TTL_SECONDS", "1")
    assert "MEETD_INSTANT_ROOM_TTL_SECONDS" not in clean_environment()
    assert clean_environment({"MEETD_PORT": "1"})["MEETD_PORT"] == "1"


def test_watch_rejects_early_late_and_repeated_expiry() -> None:
    early = Watch("early", expires_at=100.0)
    early.observe(False, sent=99.0, received=99.5)
    with pytest.raises(AssertionError, match="before its expires_at"):
        early.check()

    late = Watch("late", expires_at=100.0)
    late.observe(True, sent=101.5, received=101.6)
    late.observe(False, sent=101.7, received=101.8)
    with pytest.raises(AssertionError, match="still available"):
        late.check()

    flapping = Watch("flapping", expires_at=100.0)
    flapping.observe(False, sent=100.1, received=100.2)
    flapping.observe(True, sent=100.3, received=100.4)
    with pytest.raises(AssertionError, match="available again"):
        flapping.check()

    on_time = Watch("on time", expires_at=100.0)
    on_time.observe(True, sent=99.9, received=99.95)
    on_time.observe(False, sent=100.0, received=100.05)
    on_time.check()
