"""The expiry sweeper with a FakeClock (contract §4 Lifetime): exact to the millisecond,
once per room, instant rooms wait while people are inside, long-term rooms do not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.domain.timestamps import format_timestamp, parse_timestamp
from meetd.metrics import Metrics
from meetd.settings import MAX_ROOM_SECONDS, build_settings
from meetd.sweeper import NOTHING_EXPIRED_PAUSE_SECONDS, ExpirySweeper
from tests import support
from tests.support import Caller

ROOMS = "/v1/meetings/rooms"


def sweep(client: TestClient) -> list[Any]:
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    expired: list[Any] = client.portal.call(sweeper.sweep_once)
    return expired


def create(client: TestClient, caller: Caller, **body: Any) -> dict[str, Any]:
    response = client.post(ROOMS, headers=caller.basic, json={"display_name": "room", **body})
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


def is_available(client: TestClient, caller: Caller, room_id: str) -> bool:
    response = client.get(f"{ROOMS}/{room_id}", headers=caller.basic)
    assert response.status_code == 200
    available: bool = response.json()["is_available"]
    return available


def expires_at_ms(room: dict[str, Any]) -> int:
    ms = parse_timestamp(room["expires_at"])
    assert ms is not None
    return ms


def set_participants(client: TestClient, room_id: str, count: int) -> None:
    database = client.app.state.services.database  # type: ignore[attr-defined]
    database.write_blocking(
        lambda c: c.execute("UPDATE rooms SET participant_count = ? WHERE id = ?", (count, room_id))
    )


def expired_metric(client: TestClient) -> float:
    metrics = client.app.state.services.metrics  # type: ignore[attr-defined]
    value = metrics.registry.get_sample_value("meetd_rooms_expired_total")
    assert value is not None
    return float(value)


def test_instant_room_expires_exactly_ten_minutes_after_creation(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    created_at = clock.now_ms()
    room = create(client, account, metadata="meta")
    assert expires_at_ms(room) == created_at + 600_000

    clock.set(created_at + 600_000 - 1)
    assert sweep(client) == []
    assert is_available(client, account, room["id"]) is True

    clock.set(created_at + 600_000)
    expired = sweep(client)
    assert [(e.id, e.application_id, e.type) for e in expired] == [
        (room["id"], account.application_id, "instant")
    ]
    assert (expired[0].expires_at, expired[0].created_at) == (created_at + 600_000, created_at)
    assert expired[0].metadata == "meta"
    assert is_available(client, account, room["id"]) is False


def test_sweeping_twice_expires_once(client: TestClient, account: Caller, clock: FakeClock) -> None:
    rooms = [create(client, account) for _ in range(3)]
    clock.advance(600)
    assert sorted(e.id for e in sweep(client)) == sorted(room["id"] for room in rooms)
    assert expired_metric(client) == 3
    assert sweep(client) == []
    clock.advance(3600)
    assert sweep(client) == []
    assert expired_metric(client) == 3
    assert all(not is_available(client, account, room["id"]) for room in rooms)


def test_each_room_expires_at_its_own_moment(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    first = create(client, account)
    clock.advance(0.25)
    second = create(client, account)
    clock.set(expires_at_ms(first))
    assert [e.id for e in sweep(client)] == [first["id"]]
    assert is_available(client, account, second["id"]) is True
    clock.advance(0.249)
    assert sweep(client) == []
    clock.advance(0.001)
    assert [e.id for e in sweep(client)] == [second["id"]]


def test_sweep_catches_up_on_rooms_long_overdue(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create(client, account)
    clock.advance(86_400)
    assert [e.id for e in sweep(client)] == [room["id"]]
    expired_at = client.app.state.services.database.read_blocking(  # type: ignore[attr-defined]
        lambda c: c.fetchone("SELECT expired_at FROM rooms WHERE id = ?", (room["id"],))[0]
    )
    assert expired_at == clock.now_ms()


def test_long_term_room_expires_at_expires_at(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    expires_at = clock.now_ms() + 7_200_123
    room = create(client, account, type="long_term", expires_at=format_timestamp(expires_at))
    clock.set(expires_at - 1)
    assert sweep(client) == []
    assert is_available(client, account, room["id"]) is True
    clock.set(expires_at)
    assert [(e.id, e.type, e.expires_at) for e in sweep(client)] == [
        (room["id"], "long_term", expires_at)
    ]
    assert is_available(client, account, room["id"]) is False


def test_occupied_instant_room_does_not_expire(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create(client, account)
    set_participants(client, room["id"], 1)
    clock.advance(600)
    assert sweep(client) == []
    clock.advance(3600)
    assert sweep(client) == []
    assert is_available(client, account, room["id"]) is True


def test_occupied_long_term_room_expires_anyway(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    expires_at = clock.now_ms() + 3_600_000
    room = create(client, account, type="long_term", expires_at=format_timestamp(expires_at))
    set_participants(client, room["id"], 3)
    clock.set(expires_at)
    assert [e.id for e in sweep(client)] == [room["id"]]
    assert is_available(client, account, room["id"]) is False


# -- settings ---------------------------------------------------------------------------------


@pytest.fixture
def short_client(tmp_path: Path, database_url: str, clock: FakeClock) -> Iterator[TestClient]:
    """An app with MEETD_INSTANT_ROOM_TTL_SECONDS=30 and MEETD_LONG_TERM_MIN_LEAD_SECONDS=60."""
    settings = build_settings(
        {"data_dir": tmp_path / "data", "public_url": "https://meet.example.test"},
        environ={
            "MEETD_DATABASE_URL": database_url,
            "MEETD_SECRET_KEY": "test-secret-key-of-32-characters",
            "MEETD_INSTANT_ROOM_TTL_SECONDS": "30",
            "MEETD_LONG_TERM_MIN_LEAD_SECONDS": "60",
        },
    )
    assert (settings.instant_room_ttl_seconds, settings.long_term_min_lead_seconds) == (30, 60)
    app = create_app(settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url="https://meet.example.test") as test_client:
        yield test_client


def test_instant_room_ttl_is_honoured(short_client: TestClient, clock: FakeClock) -> None:
    caller = support.create_account(short_client, clock)
    created_at = clock.now_ms()
    room = create(short_client, caller)
    assert expires_at_ms(room) == created_at + 30_000
    clock.advance(29.999)
    assert sweep(short_client) == []
    clock.advance(0.001)
    assert [e.id for e in sweep(short_client)] == [room["id"]]


def test_long_term_min_lead_is_honoured(short_client: TestClient, clock: FakeClock) -> None:
    caller = support.create_account(short_client, clock)
    body = {"display_name": "lt", "type": "long_term"}
    response = short_client.post(
        ROOMS,
        headers=caller.basic,
        json={**body, "expires_at": format_timestamp(clock.now_ms() + 60_000)},
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": '"expires_at" must be more than 1 minute in the future',
        "name": "InputValidationError",
        "status": 400,
    }
    room = create(
        short_client,
        caller,
        type="long_term",
        expires_at=format_timestamp(clock.now_ms() + 60_001),
    )
    # The same lead rules an update.
    update = {"update_details": {"expires_at": format_timestamp(clock.now_ms() + 61_000)}}
    response = short_client.patch(f"{ROOMS}/{room['id']}", headers=caller.basic, json=update)
    assert response.status_code == 200, response.text
    clock.advance(60.999)
    assert sweep(short_client) == []
    clock.advance(0.001)
    assert [e.id for e in sweep(short_client)] == [room["id"]]


def test_the_longest_instant_room_ttl_still_creates_rooms(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    """A TTL past the bound was refused by nothing, and every create overflowed (500)."""
    settings = build_settings(
        {"data_dir": tmp_path / "data", "public_url": "https://meet.example.test"},
        environ={
            "MEETD_DATABASE_URL": database_url,
            "MEETD_SECRET_KEY": "test-secret-key-of-32-characters",
            "MEETD_INSTANT_ROOM_TTL_SECONDS": str(MAX_ROOM_SECONDS),
        },
    )
    app = create_app(settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url="https://meet.example.test") as client:
        caller = support.create_account(client, clock)
        created_at = clock.now_ms()
        room = create(client, caller)
        assert expires_at_ms(room) == created_at + MAX_ROOM_SECONDS * 1000


# -- the running sweeper ----------------------------------------------------------------------


@pytest.fixture
def sweeping_client(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> Iterator[TestClient]:
    """An app whose sweeper runs in the background, as ``meetd serve`` starts it."""
    settings = build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": sqlite_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
        },
        environ={},
    )
    app = create_app(settings, clock=clock, run_sweeper=True)
    with TestClient(app, base_url="https://meet.example.test") as test_client:
        yield test_client


def test_the_running_sweeper_expires_rooms_within_a_second(
    sweeping_client: TestClient, clock: FakeClock
) -> None:
    client = sweeping_client
    caller = support.create_account(client, clock)
    room = create(client, caller)
    time.sleep(0.05)
    assert is_available(client, caller, room["id"]) is True  # not before its time
    clock.advance(600)
    deadline = time.monotonic() + 2.5
    while is_available(client, caller, room["id"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_available(client, caller, room["id"]) is False
    assert expired_metric(client) == 1


# -- the loop, with a stand-in database -------------------------------------------------------


class StuckDatabase:
    """A room is due, but no sweep expires it (its row locked by another transaction), or
    every read fails (the database down)."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.sweeps = 0

    async def read(self, fn: Any) -> int:
        await asyncio.sleep(0)  # a real database lets the loop run meanwhile
        if self.failure is not None:
            raise self.failure
        return 0  # due since the epoch

    async def write(self, fn: Any) -> list[Any]:
        await asyncio.sleep(0)
        self.sweeps += 1
        return []


def run_sweeper_for(database: StuckDatabase, seconds: float) -> None:
    sweeper = ExpirySweeper(database, FakeClock(), Metrics())  # type: ignore[arg-type]

    async def run_for_a_while() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sweeper.run(), seconds)

    asyncio.run(run_for_a_while())


def test_a_due_room_that_does_not_expire_is_tried_again_after_a_pause() -> None:
    database = StuckDatabase()
    run_sweeper_for(database, 0.35)
    assert 1 <= database.sweeps <= 0.35 / NOTHING_EXPIRED_PAUSE_SECONDS + 1


def test_a_database_that_stays_down_logs_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    database = StuckDatabase(failure=OSError("connection refused"))
    with caplog.at_level(logging.WARNING, logger="meetd.sweeper"):
        run_sweeper_for(database, 2.5)
    failures = [record for record in caplog.records if record.name == "meetd.sweeper"]
    assert len(failures) == 3  # at 0, 1 and 2 s
    assert [record.exc_info is not None for record in failures] == [True, False, False]
