"""PATCH /rooms/{room_id}: each key of ``update_details`` (and the Node SDK's
``update_options``), its validation, and the states that forbid a change (contract §4 Update)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.domain.timestamps import format_timestamp
from tests.support import Caller, assert_error, create_room

ROOMS = "/v1/meetings/rooms"


def later(clock: FakeClock, seconds: float) -> str:
    return format_timestamp(clock.now_ms() + round(seconds * 1000))


def long_term(client: TestClient, caller: Caller, clock: FakeClock, **body: Any) -> dict[str, Any]:
    return create_room(client, caller, type="long_term", expires_at=later(clock, 3600), **body)


def patch(client: TestClient, caller: Caller, room_id: str, body: Any, prefix: str = "/v1") -> Any:
    return client.patch(f"{prefix}/meetings/rooms/{room_id}", headers=caller.basic, json=body)


def read(client: TestClient, caller: Caller, room_id: str) -> dict[str, Any]:
    response = client.get(f"{ROOMS}/{room_id}", headers=caller.basic)
    assert response.status_code == 200, response.text
    room: dict[str, Any] = response.json()
    return room


def updated(
    client: TestClient, caller: Caller, room: dict[str, Any], details: dict[str, Any]
) -> dict[str, Any]:
    """PATCH ``details``; check the 200 body is what GET then returns."""
    response = patch(client, caller, room["id"], {"update_details": details})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert read(client, caller, room["id"]) == body
    return body


def add_theme(client: TestClient, caller: Caller, short_company_url: str | None = None) -> str:
    """A theme row straight in the store: the themes API is not the subject here."""
    theme_id = str(uuid.uuid4())
    database = client.app.state.services.database  # type: ignore[attr-defined]
    database.write_blocking(
        lambda c: c.execute(
            "INSERT INTO themes (id, application_id, theme_name, main_color, brand_text,"
            " short_company_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (theme_id, caller.application_id, theme_id, "#112233", "Brand", short_company_url, 0),
        )
    )
    return theme_id


# -- each key ---------------------------------------------------------------------------------


def test_expires_at_moves(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    body = updated(client, account, room, {"expires_at": later(clock, 7200)})
    assert body == {**room, "expires_at": later(clock, 7200)}


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2027-01-15T12:00:00.123456", "2027-01-15T12:00:00.123Z"),
        ("2027-01-15T12:00:00+0000", "2027-01-15T12:00:00.000Z"),
        ("2027-01-15T13:30:00+01:30", "2027-01-15T12:00:00.000Z"),
    ],
)
def test_expires_at_takes_the_sdk_timestamp_forms(
    client: TestClient, account: Caller, clock: FakeClock, sent: str, expected: str
) -> None:
    clock.set(1_800_000_000_000)  # 2027-01-15T08:00:00Z
    room = long_term(client, account, clock)
    assert updated(client, account, room, {"expires_at": sent})["expires_at"] == expected


def test_expires_at_must_lie_more_than_the_lead_ahead(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    assert_error(
        patch(client, account, room["id"], {"update_details": {"expires_at": later(clock, 600)}}),
        400,
        "InputValidationError",
        '"update_details.expires_at" must be more than 10 minutes in the future',
    )
    assert read(client, account, room["id"]) == room
    ok = {"update_details": {"expires_at": later(clock, 600.001)}}
    assert patch(client, account, room["id"], ok).json()["expires_at"] == later(clock, 600.001)


@pytest.mark.parametrize("value", ["soon", None, 1_900_000_000, "2027-02-30T00:00:00Z"])
def test_expires_at_must_be_a_date(
    client: TestClient, account: Caller, clock: FakeClock, value: Any
) -> None:
    room = long_term(client, account, clock)
    assert_error(
        patch(client, account, room["id"], {"update_details": {"expires_at": value}}),
        400,
        "InputValidationError",
        '"update_details.expires_at" must be a valid date',
    )


def test_expire_after_use(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    assert updated(client, account, room, {"expire_after_use": True}) == {
        **room,
        "expire_after_use": True,
    }
    assert updated(client, account, room, {"expire_after_use": False}) == room


def test_theme_id_sets_and_clears_the_theme_and_its_links(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    theme_id = add_theme(client, account, short_company_url="acme")
    code = room["meeting_code"]
    themed = updated(client, account, room, {"theme_id": theme_id})
    assert themed["theme_id"] == theme_id
    assert themed["_links"]["guest_url"] == {"href": f"https://meet.example.test/acme/{code}"}
    assert themed["_links"]["host_url"]["href"] == room["_links"]["host_url"]["href"].replace(
        "https://meet.example.test/?", "https://meet.example.test/acme/?"
    )
    assert updated(client, account, room, {"theme_id": None}) == room


def test_unknown_theme_is_a_400(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    theme_id = str(uuid.uuid4())
    assert_error(
        patch(client, account, room["id"], {"update_details": {"theme_id": theme_id}}),
        400,
        "BadRequestError",
        f"Failed to update room because theme id {theme_id} not found",
    )


def test_another_applications_theme_is_unknown(
    client: TestClient, account: Caller, other_account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    theme_id = add_theme(client, other_account)
    assert_error(
        patch(client, account, room["id"], {"update_details": {"theme_id": theme_id}}),
        400,
        "BadRequestError",
        f"Failed to update room because theme id {theme_id} not found",
    )
    assert read(client, account, room["id"]) == room


@pytest.mark.parametrize("level", ["none", "after_owner_only", "explicit_approval"])
def test_join_approval_level(
    client: TestClient, account: Caller, clock: FakeClock, level: str
) -> None:
    room = long_term(client, account, clock, join_approval_level="after_owner_only")
    body = updated(client, account, room, {"join_approval_level": level})
    assert body == {**room, "join_approval_level": level}


def test_callback_urls_merge_and_clear_with_null(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(
        client, account, clock, callback_urls={"rooms_callback_url": "https://hooks.example/r"}
    )
    body = updated(
        client, account, room, {"callback_urls": {"sessions_callback_url": "http://h.example/s"}}
    )
    assert body["callback_urls"] == {
        "rooms_callback_url": "https://hooks.example/r",
        "sessions_callback_url": "http://h.example/s",
    }
    body = updated(
        client,
        account,
        room,
        {
            "callback_urls": {
                "rooms_callback_url": None,
                "recordings_callback_url": "https://h.example/rec",
            }
        },
    )
    assert body["callback_urls"] == {
        "sessions_callback_url": "http://h.example/s",
        "recordings_callback_url": "https://h.example/rec",
    }
    body = updated(
        client,
        account,
        room,
        {"callback_urls": {"sessions_callback_url": None, "recordings_callback_url": None}},
    )
    assert "callback_urls" not in body
    assert body == {key: value for key, value in room.items() if key != "callback_urls"}


@pytest.mark.parametrize("url", ["ftp://x", "http://[::1", "http://example.com:99999/"])
def test_callback_urls_are_checked(
    client: TestClient, account: Caller, clock: FakeClock, url: str
) -> None:
    room = long_term(client, account, clock)
    assert_error(
        patch(
            client,
            account,
            room["id"],
            {"update_details": {"callback_urls": {"rooms_callback_url": url}}},
        ),
        400,
        "InputValidationError",
        '"update_details.callback_urls.rooms_callback_url" must be a valid uri with a scheme'
        " matching the http|https pattern",
    )
    assert client.get(f"{ROOMS}/{room['id']}", headers=account.basic).json() == room


def test_available_features_merge(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock, available_features={"is_captions_available": True})
    body = updated(client, account, room, {"available_features": {"is_chat_available": False}})
    assert body["available_features"] == {
        "is_recording_available": True,
        "is_chat_available": False,
        "is_whiteboard_available": True,
        "is_locale_switcher_available": False,
        "is_captions_available": True,
    }
    assert body == {**room, "available_features": body["available_features"]}


def test_initial_join_options(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    body = updated(client, account, room, {"initial_join_options": {"microphone_state": "on"}})
    assert body == {**room, "initial_join_options": {"microphone_state": "on"}}
    assert updated(client, account, room, {"initial_join_options": {}}) == body


def test_ui_settings(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    body = updated(client, account, room, {"ui_settings": {"language": "fr"}})
    assert body == {**room, "ui_settings": {"language": "fr"}}


def test_every_key_at_once(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    theme_id = add_theme(client, account)
    details = {
        "expires_at": later(clock, 86_400),
        "expire_after_use": True,
        "theme_id": theme_id,
        "join_approval_level": "explicit_approval",
        "callback_urls": {"rooms_callback_url": "https://hooks.example/r"},
        "available_features": {"is_recording_available": False},
        "initial_join_options": {"microphone_state": "off"},
        "ui_settings": {"language": "de"},
    }
    body = updated(client, account, room, details)
    assert body == {
        **room,
        "expires_at": later(clock, 86_400),
        "expire_after_use": True,
        "theme_id": theme_id,
        "join_approval_level": "explicit_approval",
        "callback_urls": {"rooms_callback_url": "https://hooks.example/r"},
        "available_features": {**room["available_features"], "is_recording_available": False},
        "initial_join_options": {"microphone_state": "off"},
        "ui_settings": {"language": "de"},
    }


def test_node_sdk_update_options(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    response = client.patch(
        f"{ROOMS}/{room['id']}",
        headers=account.bearer(),
        json={"update_options": {"ui_settings": {"language": "it"}, "expire_after_use": True}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**room, "ui_settings": {"language": "it"}, "expire_after_use": True}
    assert read(client, account, room["id"]) == response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"update_details": {"expire_after_use": True}, "update_options": {"theme_id": None}},
        {"update_options": {"theme_id": None}, "update_details": {"expire_after_use": True}},
    ],
)
def test_both_wrappers_at_once_are_refused(
    client: TestClient, account: Caller, clock: FakeClock, body: dict[str, Any]
) -> None:
    """One wrapper a request: with both, update_details is the body's and update_options an
    unknown field, whatever their order (docs/api.md)."""
    room = long_term(client, account, clock)
    response = patch(client, account, room["id"], body)
    assert_error(response, 400, "InputValidationError", '"update_options" is not allowed')
    assert read(client, account, room["id"]) == room


def test_beta_prefix_updates_too(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    response = patch(
        client,
        account,
        room["id"],
        {"update_details": {"ui_settings": {"language": "pt"}}},
        "/beta",
    )
    assert response.status_code == 200
    assert read(client, account, room["id"])["ui_settings"] == {"language": "pt"}


def test_fields_that_never_change_stay(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(
        client, account, clock, metadata="keep", recording_options={"auto_record": True}
    )
    body = updated(client, account, room, {"join_approval_level": "explicit_approval"})
    for key in ("id", "display_name", "metadata", "type", "created_at", "meeting_code", "_links"):
        assert body[key] == room[key], key
    assert body["recording_options"] == {"auto_record": True, "record_only_owner": False}


# -- rejected requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"update_details": {}}, '"update_details" must have at least 1 key'),
        ({}, '"update_details" is required'),
        ({"display_name": "x"}, '"update_details" is required'),
        ({"update_details": []}, '"update_details" must be of type object'),
        ({"update_details": None}, '"update_details" must be of type object'),
        ({"update_details": {"display_name": "x"}}, '"update_details.display_name" is not allowed'),
        (
            {"update_details": {"recording_options": {"auto_record": True}}},
            '"update_details.recording_options" is not allowed',
        ),
        (
            {"update_details": {"ui_settings": {"language": "fr"}}, "extra": 1},
            '"extra" is not allowed',
        ),
        (
            {"update_details": {"expire_after_use": "yes"}},
            '"update_details.expire_after_use" must be a boolean',
        ),
        (
            {"update_details": {"theme_id": "nope"}},
            '"update_details.theme_id" must be a valid GUID',
        ),
        (
            {"update_details": {"join_approval_level": "maybe"}},
            '"update_details.join_approval_level" must be one of'
            " [none, after_owner_only, explicit_approval]",
        ),
        (
            {"update_details": {"initial_join_options": {"microphone_state": "loud"}}},
            '"update_details.initial_join_options.microphone_state" must be one of'
            " [default, on, off]",
        ),
        (
            {"update_details": {"available_features": {"is_chat_available": 0}}},
            '"update_details.available_features.is_chat_available" must be a boolean',
        ),
        (
            {"update_details": {"available_features": {"is_magic_available": True}}},
            '"update_details.available_features.is_magic_available" is not allowed',
        ),
        ([], '"value" must be of type object'),
    ],
)
def test_invalid_updates_are_named_and_change_nothing(
    client: TestClient, account: Caller, clock: FakeClock, body: Any, message: str
) -> None:
    room = long_term(client, account, clock)
    assert_error(patch(client, account, room["id"], body), 400, "InputValidationError", message)
    assert read(client, account, room["id"]) == room


def test_a_body_that_is_not_json_is_a_400(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    response = client.patch(f"{ROOMS}/{room['id']}", headers=account.basic, content=b"{nope")
    assert response.status_code == 400
    assert response.json()["name"] == "InputValidationError"
    assert read(client, account, room["id"]) == room


def test_an_update_with_one_bad_key_changes_nothing(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    details = {
        "join_approval_level": "explicit_approval",
        "expires_at": later(clock, 9000),
        "ui_settings": {"language": "klingon"},
    }
    response = patch(client, account, room["id"], {"update_details": details})
    assert response.status_code == 400
    assert response.json()["name"] == "InputValidationError"
    assert response.json()["message"].startswith('"update_details.ui_settings.language"')
    assert read(client, account, room["id"]) == room


def test_an_update_with_an_unknown_theme_changes_nothing(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    details = {
        "expire_after_use": True,
        "callback_urls": {"rooms_callback_url": "https://hooks.example/r"},
        "theme_id": str(uuid.uuid4()),
    }
    response = patch(client, account, room["id"], {"update_details": details})
    assert response.status_code == 400
    assert response.json()["name"] == "BadRequestError"
    assert read(client, account, room["id"]) == room


@pytest.mark.parametrize(
    "details", [{"ui_settings": {"language": "fr"}}, {"expire_after_use": True}]
)
def test_instant_room_cannot_be_updated(
    client: TestClient, account: Caller, details: dict[str, Any]
) -> None:
    room = create_room(client, account)
    assert_error(
        patch(client, account, room["id"], {"update_details": details}),
        400,
        "BadRequestError",
        f"The room with id: {room['id']} could not be updated because of its type: temporary",
    )
    assert read(client, account, room["id"]) == room


def test_expired_room_cannot_be_updated(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    clock.advance(3600)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    assert [r.id for r in client.portal.call(sweeper.sweep_once)] == [room["id"]]  # type: ignore[union-attr]
    expired = read(client, account, room["id"])
    assert expired["is_available"] is False
    response = patch(
        client, account, room["id"], {"update_details": {"expires_at": later(clock, 3600)}}
    )
    assert response.status_code == 400, response.text
    assert response.json()["name"] == "BadRequestError"
    assert response.json()["status"] == 400
    assert room["id"] in response.json()["message"]
    assert read(client, account, room["id"]) == expired


def test_another_applications_room_is_a_404(
    client: TestClient, account: Caller, other_account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, other_account, clock)
    response = patch(client, account, room["id"], {"update_details": {"expire_after_use": True}})
    assert response.status_code == 404
    assert response.json()["name"] == "NotFoundError"
    assert response.json()["status"] == 404
    assert read(client, other_account, room["id"]) == room


@pytest.mark.parametrize("room_id", [str(uuid.uuid4()), "not-a-room"])
def test_unknown_room_is_a_404(client: TestClient, account: Caller, room_id: str) -> None:
    response = patch(client, account, room_id, {"update_details": {"expire_after_use": True}})
    assert response.status_code == 404
    assert response.json()["name"] == "NotFoundError"


def test_deleted_room_is_a_404(client: TestClient, account: Caller, clock: FakeClock) -> None:
    room = long_term(client, account, clock)
    assert client.delete(f"{ROOMS}/{room['id']}", headers=account.basic).status_code == 204
    response = patch(client, account, room["id"], {"update_details": {"expire_after_use": True}})
    assert response.status_code == 404
    assert response.json()["name"] == "NotFoundError"


def test_moving_expiry_earlier_is_what_the_sweeper_follows(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    room = long_term(client, account, clock)
    updated(client, account, room, {"expires_at": later(clock, 700)})
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    clock.advance(699.999)
    assert client.portal.call(sweeper.sweep_once) == []  # type: ignore[union-attr]
    clock.advance(0.001)
    assert [r.id for r in client.portal.call(sweeper.sweep_once)] == [room["id"]]  # type: ignore[union-attr]
