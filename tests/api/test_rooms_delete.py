"""DELETE /rooms/{room_id}: 204, then the room is gone from reads and lists, and its
meeting code is free again (contract §4 Delete, Lifetime)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from tests.support import Caller, create_room

ROOMS = "/v1/meetings/rooms"


def listed(client: TestClient, caller: Caller) -> tuple[list[str], int]:
    page = client.get(ROOMS, headers=caller.basic).json()
    return [room["id"] for room in page["_embedded"]], page["total_items"]


def stored(client: TestClient, room_id: str) -> tuple[bool, Any, Any]:
    """``(is_available, expired_at, deleted_at)`` of the room's row."""
    database = client.app.state.services.database  # type: ignore[attr-defined]
    row = database.read_blocking(
        lambda c: c.fetchone(
            "SELECT is_available, expired_at, deleted_at FROM rooms WHERE id = ?", (room_id,)
        )
    )
    return bool(row[0]), row[1], row[2]


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    body = response.json()
    assert list(body) == ["message", "name", "status"]
    assert (body["name"], body["status"]) == ("NotFoundError", 404)


@pytest.mark.parametrize("prefix", ["/v1", "/beta"])
def test_delete_answers_204_and_the_room_is_gone(
    client: TestClient, account: Caller, clock: FakeClock, prefix: str
) -> None:
    keep = create_room(client, account, display_name="keep")
    room = create_room(client, account, display_name="gone")
    assert listed(client, account) == ([keep["id"], room["id"]], 2)

    response = client.delete(f"{prefix}/meetings/rooms/{room['id']}", headers=account.basic)
    assert response.status_code == 204
    assert response.content == b""

    assert_not_found(client.get(f"{ROOMS}/{room['id']}", headers=account.basic))
    assert listed(client, account) == ([keep["id"]], 1)
    beta = client.get("/beta/meetings/rooms", headers=account.basic).json()
    assert [r["id"] for r in beta["_embedded"]["rooms"]] == [keep["id"]]
    assert stored(client, room["id"]) == (False, clock.now_ms(), clock.now_ms())


def test_delete_with_a_jwt(client: TestClient, account: Caller) -> None:
    room = create_room(client, account)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.bearer()).status_code == 204
    assert listed(client, account) == ([], 0)


def test_second_delete_is_a_404(client: TestClient, account: Caller) -> None:
    room = create_room(client, account)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    assert_not_found(client.delete(f"{ROOMS}/{room['id']}", headers=account.basic))
    assert listed(client, account) == ([], 0)


@pytest.mark.parametrize("room_id", [str(uuid.uuid4()), "nope", "0" * 36])
def test_unknown_room_is_a_404(client: TestClient, account: Caller, room_id: str) -> None:
    create_room(client, account)
    assert_not_found(client.delete(f"{ROOMS}/{room_id}", headers=account.basic))
    assert listed(client, account)[1] == 1


def test_another_applications_room_is_a_404_and_survives(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    room = create_room(client, other_account)
    assert_not_found(client.delete(f"{ROOMS}/{room['id']}", headers=account.basic))
    assert_not_found(client.delete(f"{ROOMS}/{room['id']}", headers=account.bearer()))
    assert client.get(f"{ROOMS}/{room['id']}", headers=other_account.basic).json() == room
    assert listed(client, other_account) == ([room["id"]], 1)
    assert listed(client, account) == ([], 0)
    assert stored(client, room["id"]) == (True, None, None)


def test_an_expired_room_can_be_deleted(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create_room(client, account)
    expired_at = clock.now_ms() + 600_000
    clock.advance(600)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    assert len(client.portal.call(sweeper.sweep_once)) == 1  # type: ignore[union-attr]
    clock.advance(5)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    assert listed(client, account) == ([], 0)
    # It expired once, when the sweeper turned it; deleting keeps that moment.
    assert stored(client, room["id"]) == (False, expired_at, clock.now_ms())


def test_deletions_are_counted_apart_from_expiries(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    registry = client.app.state.services.metrics.registry  # type: ignore[attr-defined]

    def count(name: str, **labels: str) -> float | None:
        value: float | None = registry.get_sample_value(name, labels)
        return value

    swept = create_room(client, account)
    clock.advance(600)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    assert len(client.portal.call(sweeper.sweep_once)) == 1  # type: ignore[union-attr]
    live = create_room(client, account)
    assert count("meetd_rooms_deleted_total") == 0
    for room in (live, swept):
        assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    assert_not_found(client.delete(f"{ROOMS}/{live['id']}", headers=account.basic))
    assert_not_found(client.delete(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic))
    assert count("meetd_rooms_deleted_total") == 2
    assert count("meetd_rooms_expired_total") == 1  # the sweeper's; the deletion is not one
    # Both expiries sent room:expired: the swept room's, and the live room's deletion.
    assert count("meetd_callback_events_total", type="room:expired") == 2


def test_a_deleted_room_is_never_swept(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create_room(client, account)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    clock.advance(601)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    assert client.portal.call(sweeper.sweep_once) == []  # type: ignore[union-attr]


def test_deleting_every_room_empties_the_list(client: TestClient, account: Caller) -> None:
    rooms = [create_room(client, account, display_name=f"r{i}") for i in range(5)]
    for count, room in enumerate(rooms, 1):
        assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
        assert listed(client, account) == ([r["id"] for r in rooms[count:]], 5 - count)
    page = client.get(f"{ROOMS}?page_size=1", headers=account.basic).json()
    assert set(page["_links"]) == {"first", "self"}
