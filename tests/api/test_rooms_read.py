"""GET /rooms/{room_id}: the room as created, and 404 for anything the caller cannot see
(contract §2 Tenancy, §4 Read)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.domain.timestamps import format_timestamp
from tests.support import Caller, bearer_header, create_room

ROOMS = "/v1/meetings/rooms"


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["message", "name", "status"]
    assert body["name"] == "NotFoundError"
    assert body["status"] == 404
    assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize("prefix", ["/v1", "/beta"])
def test_read_returns_the_body_create_returned(
    client: TestClient, account: Caller, prefix: str
) -> None:
    room = create_room(client, account, metadata="m")
    response = client.get(f"{prefix}/meetings/rooms/{room['id']}", headers=account.basic)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == room


def test_read_of_a_long_term_room_with_every_option(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create_room(
        client,
        account,
        type="long_term",
        expires_at=format_timestamp(clock.now_ms() + 3_600_000),
        callback_urls={"rooms_callback_url": "https://hooks.example/r"},
        ui_settings={"language": "ja"},
    )
    got = client.get(f"{ROOMS}/{room['id']}", headers=account.bearer()).json()
    assert got == room
    assert got["callback_urls"] == {"rooms_callback_url": "https://hooks.example/r"}


def test_read_is_the_same_with_basic_and_jwt(client: TestClient, account: Caller) -> None:
    room = create_room(client, account)
    by_basic = client.get(f"{ROOMS}/{room['id']}", headers=account.basic)
    by_jwt = client.get(f"{ROOMS}/{room['id']}", headers=account.bearer())
    assert by_basic.status_code == by_jwt.status_code == 200
    assert by_basic.json() == by_jwt.json() == room


def test_upper_case_id_names_the_same_room(client: TestClient, account: Caller) -> None:
    room = create_room(client, account)
    response = client.get(f"{ROOMS}/{room['id'].upper()}", headers=account.basic)
    assert response.status_code == 200
    assert response.json()["id"] == room["id"]


def test_unknown_id_is_a_404(client: TestClient, account: Caller) -> None:
    create_room(client, account)
    assert_not_found(client.get(f"{ROOMS}/{uuid.uuid4()}", headers=account.basic))


@pytest.mark.parametrize(
    "room_id",
    [
        "not-a-uuid",
        "1",
        "00000000-0000-0000-0000-00000000000g",
        "{12345678-1234-5678-1234-567812345678}",
        "12345678123456781234567812345678",
        "x" * 300,
        "%00",
    ],
)
def test_malformed_id_is_a_404(client: TestClient, account: Caller, room_id: str) -> None:
    assert_not_found(client.get(f"{ROOMS}/{room_id}", headers=account.basic))


def test_another_applications_room_is_a_404_with_basic(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    room = create_room(client, other_account)
    assert_not_found(client.get(f"{ROOMS}/{room['id']}", headers=account.basic))
    assert client.get(f"{ROOMS}/{room['id']}", headers=other_account.basic).status_code == 200


def test_another_applications_room_is_a_404_with_jwt(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    room = create_room(client, account)
    # A valid JWT, but for the other application: it must not see this room.
    other_jwt = bearer_header(
        other_account.application_id, iat=other_account.clock.now_ms() // 1000
    )
    assert_not_found(client.get(f"{ROOMS}/{room['id']}", headers=other_jwt))
    assert_not_found(client.get(f"{ROOMS}/{room['id']}", headers=other_account.bearer()))
    assert client.get(f"{ROOMS}/{room['id']}", headers=account.bearer()).status_code == 200


def test_not_found_looks_the_same_for_missing_and_foreign_rooms(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    foreign = create_room(client, other_account)
    missing_id = str(uuid.uuid4())
    foreign_body = client.get(f"{ROOMS}/{foreign['id']}", headers=account.basic).json()
    missing_body = client.get(f"{ROOMS}/{missing_id}", headers=account.basic).json()
    assert foreign_body == {
        **missing_body,
        "message": missing_body["message"].replace(missing_id, foreign["id"]),
    }


def test_a_deleted_room_is_a_404(client: TestClient, account: Caller) -> None:
    room = create_room(client, account)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    assert_not_found(client.get(f"{ROOMS}/{room['id']}", headers=account.basic))
    assert_not_found(client.get(f"/beta/meetings/rooms/{room['id']}", headers=account.bearer()))


def test_an_expired_room_is_still_readable_and_unavailable(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = create_room(client, account)
    clock.advance(600)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    client.portal.call(sweeper.sweep_once)  # type: ignore[union-attr]
    got = client.get(f"{ROOMS}/{room['id']}", headers=account.basic)
    assert got.status_code == 200
    assert got.json() == {**room, "is_available": False}
