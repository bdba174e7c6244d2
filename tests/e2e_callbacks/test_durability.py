"""The outbox's promises against real processes: an event committed is delivered even when
the server is killed (SIGKILL) before it could be, and two servers on one PostgreSQL database
send each event once.

Events come from both of their sources: rooms that expire (one-second instant rooms, the
sweeper) and rooms deleted through the API. The receiver counts deliveries by
``X-Meetd-Event-Id``, as a real one deduplicates.
"""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meetd.delivery.worker import LEASE_MS
from meetd.store.database import Connection
from tests import support
from tests.e2e_callbacks.conftest import SERVER_ENV, Tenant, provision, read
from tests.e2e_callbacks.receiver import TOO_LATE, Reply, delivered_ids, running_receiver
from tests.e2e_lifetime.servers import ServerPool, wait_healthy

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 10.0


def make_events(apis: list[httpx.Client], count: int) -> set[str]:
    """``count`` rooms through the API, alternating between ``apis``: half instant (the
    sweeper expires them within a second or two), half long-term and deleted at once. Each
    gives one ``room:expired``; returns the room ids."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    room_ids = set()
    for index in range(count):
        api = apis[index % len(apis)]
        if index % 2:
            body = {"display_name": f"kept {index}", "type": "long_term", "expires_at": tomorrow}
        else:
            body = {"display_name": f"instant {index}"}
        response = api.post("/rooms", json=body)
        assert response.status_code == 201, response.text
        room_id = response.json()["id"]
        if index % 2:
            assert api.delete(f"/rooms/{room_id}").status_code == 204
        room_ids.add(room_id)
    return room_ids


def outbox(database_url: str, tenant: Tenant) -> list[tuple[Any, ...]]:
    """The tenant's events: (id, room_id, status, attempts, claimed_until)."""

    def select(conn: Connection) -> list[tuple[Any, ...]]:
        return conn.fetchall(
            "SELECT id, room_id, status, attempts, claimed_until FROM events"
            " WHERE application_id = ? ORDER BY serial",
            (tenant.application_id,),
        )

    rows: list[tuple[Any, ...]] = read(database_url, select)
    return rows


def wait_for_outbox(
    database_url: str, tenant: Tenant, condition: Any, what: str
) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = outbox(database_url, tenant)
        if condition(rows):
            return rows
        assert time.monotonic() < deadline, f"{what}: not so in {WAIT_SECONDS:g} s: {rows}"
        time.sleep(0.05)


def test_events_pending_at_a_sigkill_arrive_after_the_restart(
    servers: ServerPool, database_url: str, tmp_path: Path
) -> None:
    rooms = 20
    data_dir = tmp_path / "data"
    with running_receiver() as receiver:
        receiver.stop()  # the receiver is down: every attempt is refused
        tenant = provision(data_dir, database_url, receiver.url("/crash"))
        # Ten attempts a second apart: still pending, not failed, when the server is killed.
        env = {**SERVER_ENV, "MEETD_CALLBACK_RETRY_SCHEDULE": ",".join(["1"] * 10)}
        server = servers.start(data_dir, database_url=database_url, env=env)
        with tenant.api(server) as api:
            room_ids = make_events([api], rooms)

        def all_refused_and_idle(rows: list[tuple[Any, ...]]) -> bool:
            now = time.time() * 1000
            return len(rows) == rooms and all(
                status == "pending" and attempts >= 1 and (leased or 0) <= now
                for _, _, status, attempts, leased in rows
            )

        wait_for_outbox(database_url, tenant, all_refused_and_idle, "events refused once")
        server.process.kill()  # SIGKILL: no shutdown, no last writes
        server.process.wait()

        rows = outbox(database_url, tenant)
        assert {row[1] for row in rows} == room_ids
        assert {row[2] for row in rows} == {"pending"}  # committed, undelivered, not lost
        # An attempt begun in the instant before the kill keeps its event leased until the
        # lease runs out; then it is sent again.
        leased_until = max((row[4] or 0) for row in rows) / 1000
        event_ids = {row[0] for row in rows}

        receiver.start()
        servers.start(data_dir, database_url=database_url, env=env)
        patience = WAIT_SECONDS + max(0.0, leased_until - time.time())
        assert patience < WAIT_SECONDS + LEASE_MS / 1000 + 1
        seen = receiver.wait_for_events(event_ids, "/crash", timeout=patience)
    assert {r.json()["room_id"] for r in seen} == room_ids
    assert delivered_ids(seen) == event_ids  # at least once each, and nothing else
    wait_for_outbox(
        database_url,
        tenant,
        lambda rows: {row[2] for row in rows} == {"delivered"},
        "all delivered",
    )


def test_an_event_in_flight_at_a_sigkill_is_sent_again_after_its_lease(
    servers: ServerPool, database_url: str, tmp_path: Path
) -> None:
    """Killed mid-delivery: the receiver holds the request open, the server dies with it in
    flight, and the restarted server sends the event again once the lease runs out."""
    data_dir = tmp_path / "data"
    with running_receiver() as receiver:
        receiver.script("/held", TOO_LATE)  # held open: the attempt stays in flight
        tenant = provision(data_dir, database_url, receiver.url("/held"))
        server = servers.start(data_dir, database_url=database_url, env=SERVER_ENV)
        with tenant.api(server) as api:
            (room_id,) = make_events([api], 1)
        (first,) = receiver.wait_for_count(1, "/held")
        server.process.kill()  # SIGKILL while the attempt waits for its answer
        server.process.wait()
        (row,) = outbox(database_url, tenant)
        assert (row[1], row[2], row[3]) == (room_id, "pending", 1)  # leased, undelivered
        leased_until = row[4] / 1000

        servers.start(data_dir, database_url=database_url, env=SERVER_ENV)
        patience = WAIT_SECONDS + max(0.0, leased_until - time.time())
        seen = receiver.wait_for_events({first.event_id}, "/held", timeout=patience)
    again = [r for r in seen if r.event_id == first.event_id and r is not first]
    assert again, "the event was not sent again"
    assert again[0].at >= leased_until - 0.5  # not before the dead attempt's lease ran out
    assert again[0].body == first.body  # the same bytes, the same event_id
    assert again[0].attempt == 2
    wait_for_outbox(
        database_url, tenant, lambda rows: rows[0][2] == "delivered", "delivered after restart"
    )


def test_two_servers_on_one_postgresql_database_send_each_event_once(
    servers: ServerPool, tmp_path: Path
) -> None:
    events = 100
    with support.postgres_schema() as database_url, running_receiver() as receiver:
        try:
            # A little slow to answer, so both workers have deliveries in flight at once.
            receiver.answer("/pair", Reply(204, delay=0.01))
            tenant = provision(tmp_path / "a", database_url, receiver.url("/pair"))
            launched = [
                servers.launch(tmp_path / name, database_url=database_url, env=SERVER_ENV)
                for name in ("a", "b")
            ]
            pair = [wait_healthy(server) for server in launched]
            apis = [tenant.api(server) for server in pair]
            room_ids = make_events(apis, events)
            for api in apis:
                api.close()

            rows = wait_for_outbox(
                database_url,
                tenant,
                lambda rows: len(rows) == events and {row[2] for row in rows} == {"delivered"},
                "all delivered",
            )
            # Everything is recorded delivered: no worker sends any of them again now.
            seen = receiver.requests("/pair")
            per_event = collections.Counter(r.event_id for r in seen)
            assert set(per_event) == {row[0] for row in rows}
            assert {r.json()["room_id"] for r in seen} == room_ids
            twice = {event_id: n for event_id, n in per_event.items() if n > 1}
            assert not twice, f"sent more than once: {twice}"
            assert {row[3] for row in rows} == {1}  # one attempt each, as the log says

            delivered = [delivered_attempts(server.url) for server in pair]
            assert sum(delivered) == events, f"deliveries per process: {delivered}"
            for server in pair:
                assert server.process.poll() is None, server.stderr[-2000:]
        finally:
            servers.stop_all()  # before the schema is dropped under them


def delivered_attempts(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    prefix = 'meetd_callback_attempts_total{result="delivered"} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0
