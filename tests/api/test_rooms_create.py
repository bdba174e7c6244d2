"""POST /rooms: every field, default, limit and error of contract §4 (Create)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.domain.timestamps import format_timestamp, parse_timestamp
from tests.support import ROOM_FIELDS, Caller, assert_invalid

ROOMS = "/v1/meetings/rooms"


def create(client: TestClient, caller: Caller, body: Any, prefix: str = "/v1") -> Any:
    return client.post(f"{prefix}/meetings/rooms", headers=caller.basic, json=body)


def later(clock: FakeClock, seconds: int) -> str:
    return format_timestamp(clock.now_ms() + seconds * 1000)


@pytest.mark.parametrize("prefix", ["/v1", "/beta"])
def test_instant_room_has_every_field_with_its_default(
    client: TestClient, account: Caller, clock: FakeClock, prefix: str
) -> None:
    response = create(client, account, {"display_name": "New Meeting Room"}, prefix)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    room = response.json()
    assert list(room) == list(ROOM_FIELDS)
    assert uuid.UUID(room["id"]).version == 4
    assert room["display_name"] == "New Meeting Room"
    assert room["metadata"] is None
    assert room["type"] == "instant"
    assert room["created_at"] == format_timestamp(clock.now_ms())
    assert room["expires_at"] == later(clock, 600)
    assert room["recording_options"] == {"auto_record": False, "record_only_owner": False}
    assert re.fullmatch(r"[1-9][0-9]{8}", room["meeting_code"])
    assert room["is_available"] is True
    assert room["expire_after_use"] is False
    assert room["theme_id"] is None
    assert room["initial_join_options"] == {"microphone_state": "default"}
    assert room["join_approval_level"] == "none"
    assert room["ui_settings"] == {"language": "default"}
    assert room["available_features"] == {
        "is_recording_available": True,
        "is_chat_available": True,
        "is_whiteboard_available": True,
        "is_locale_switcher_available": False,
        "is_captions_available": False,
    }


def test_links_carry_the_meeting_code_and_a_signed_host_token(
    client: TestClient, account: Caller
) -> None:
    room = create(client, account, {"display_name": "links"}).json()
    code = room["meeting_code"]
    assert room["_links"]["guest_url"] == {"href": f"https://meet.example.test/{code}"}
    host = room["_links"]["host_url"]["href"]
    prefix = f"https://meet.example.test/?room_token={code}&participant_token="
    assert host.startswith(prefix)
    token = host.removeprefix(prefix)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["kid"]
    services = client.app.state.services  # type: ignore[attr-defined]
    claims = jwt.decode(
        token, services.signing_key, algorithms=["HS256"], options={"verify_iat": False}
    )
    assert uuid.UUID(claims["participantId"])
    again = client.get(f"{ROOMS}/{room['id']}", headers=account.basic).json()
    assert again["_links"] == room["_links"]


def test_every_option_is_stored_and_returned(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    body = {
        "display_name": "All options",
        "metadata": "customer=42",
        "type": "long_term",
        "expires_at": later(clock, 3600),
        "expire_after_use": True,
        "recording_options": {"auto_record": True, "record_only_owner": True},
        "join_approval_level": "explicit_approval",
        "initial_join_options": {"microphone_state": "off"},
        "callback_urls": {
            "rooms_callback_url": "https://hooks.example/rooms",
            "sessions_callback_url": "http://hooks.example/sessions",
            "recordings_callback_url": "https://hooks.example/recordings",
        },
        "available_features": {
            "is_recording_available": False,
            "is_chat_available": False,
            "is_whiteboard_available": False,
            "is_locale_switcher_available": True,
            "is_captions_available": True,
        },
        "ui_settings": {"language": "es"},
    }
    room = create(client, account, body).json()
    for key, value in body.items():
        assert room[key] == value, key
    assert client.get(f"{ROOMS}/{room['id']}", headers=account.basic).json() == room


def test_partial_nested_objects_take_defaults(client: TestClient, account: Caller) -> None:
    room = create(
        client,
        account,
        {
            "display_name": "partial",
            "recording_options": {"auto_record": True},
            "available_features": {"is_chat_available": False},
            "callback_urls": {"rooms_callback_url": "https://hooks.example/r"},
        },
    ).json()
    assert room["recording_options"] == {"auto_record": True, "record_only_owner": False}
    assert room["available_features"]["is_chat_available"] is False
    assert room["available_features"]["is_recording_available"] is True
    assert room["callback_urls"] == {"rooms_callback_url": "https://hooks.example/r"}


def test_guide_body_with_auto_record(client: TestClient, account: Caller) -> None:
    body = {"display_name": "New Meeting Room", "recording_options": {"auto_record": True}}
    room = create(client, account, body).json()
    assert room["recording_options"] == {"auto_record": True, "record_only_owner": False}


@pytest.mark.parametrize(
    ("sent", "stored_ms_offset"),
    [
        ("2027-01-15T10:00:00.123456", 123),  # the Python SDK: no offset, microseconds
        ("2027-01-15T10:00:00+0000", 0),
        ("2027-01-15T11:00:00+01:00", 0),
        ("2027-01-15T10:00:00Z", 0),
        ("2027-01-15T10:00:00.5Z", 500),
    ],
)
def test_long_term_expiry_accepts_sdk_timestamp_forms(
    client: TestClient, account: Caller, clock: FakeClock, sent: str, stored_ms_offset: int
) -> None:
    clock.set(parse_timestamp("2027-01-15T09:00:00Z") or 0)
    body = {"display_name": "lt", "type": "long_term", "expires_at": sent}
    response = create(client, account, body)
    assert response.status_code == 201, response.text
    expected = (parse_timestamp("2027-01-15T10:00:00Z") or 0) + stored_ms_offset
    assert response.json()["expires_at"] == format_timestamp(expected)


def test_long_term_expiry_must_lie_more_than_ten_minutes_ahead(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    body = {"display_name": "lt", "type": "long_term", "expires_at": later(clock, 600)}
    assert_invalid(
        create(client, account, body), '"expires_at" must be more than 10 minutes in the future'
    )
    body["expires_at"] = later(clock, 601)
    assert create(client, account, body).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"display_name" is required'),
        ({"display_name": ""}, '"display_name" is not allowed to be empty'),
        ({"display_name": 5}, '"display_name" must be a string'),
        ({"display_name": None}, '"display_name" must be a string'),
        (
            {"display_name": "x" * 201},
            '"display_name" length must be less than or equal to 200 characters long',
        ),
        (
            {"display_name": "r", "metadata": "m" * 501},
            '"metadata" length must be less than or equal to 500 characters long',
        ),
        ({"display_name": "r", "metadata": 3}, '"metadata" must be a string'),
        ({"display_name": "r", "type": "forever"}, '"type" must be one of [instant, long_term]'),
        ({"display_name": "r", "type": "long_term"}, '"expires_at" is required'),
        (
            {"display_name": "r", "type": "long_term", "expires_at": None},
            '"expires_at" must be a valid date',
        ),
        (
            {"display_name": "r", "type": "long_term", "expires_at": "tomorrow"},
            '"expires_at" must be a valid date',
        ),
        (
            {"display_name": "r", "expires_at": "2030-01-01T00:00:00Z"},
            '"expires_at" is not allowed when "type" is "instant"',
        ),
        ({"display_name": "r", "expire_after_use": "yes"}, '"expire_after_use" must be a boolean'),
        (
            {"display_name": "r", "recording_options": []},
            '"recording_options" must be of type object',
        ),
        (
            {"display_name": "r", "recording_options": {"auto_record": 1}},
            '"recording_options.auto_record" must be a boolean',
        ),
        (
            {"display_name": "r", "recording_options": {"other": True}},
            '"recording_options.other" is not allowed',
        ),
        ({"display_name": "r", "theme_id": "not-a-uuid"}, '"theme_id" must be a valid GUID'),
        (
            {"display_name": "r", "join_approval_level": "always"},
            '"join_approval_level" must be one of [none, after_owner_only, explicit_approval]',
        ),
        (
            {"display_name": "r", "initial_join_options": {"microphone_state": "loud"}},
            '"initial_join_options.microphone_state" must be one of [default, on, off]',
        ),
        (
            {"display_name": "r", "callback_urls": {"rooms_callback_url": "ftp://x"}},
            '"callback_urls.rooms_callback_url" must be a valid uri with a scheme matching the'
            " http|https pattern",
        ),
        (  # urlsplit raises ValueError on it: once a 500
            {"display_name": "r", "callback_urls": {"rooms_callback_url": "http://[::1"}},
            '"callback_urls.rooms_callback_url" must be a valid uri with a scheme matching the'
            " http|https pattern",
        ),
        (  # port 0: no receiver could listen there
            {
                "display_name": "r",
                "callback_urls": {"sessions_callback_url": "https://example.com:0/"},
            },
            '"callback_urls.sessions_callback_url" must be a valid uri with a scheme matching the'
            " http|https pattern",
        ),
        (
            {"display_name": "r", "callback_urls": {"rooms_callback_url": "http://example.com/\n"}},
            '"callback_urls.rooms_callback_url" must be a valid uri with a scheme matching the'
            " http|https pattern",
        ),
        (
            {"display_name": "r", "callback_urls": {"other_callback_url": "https://x"}},
            '"callback_urls.other_callback_url" is not allowed',
        ),
        (
            {"display_name": "r", "available_features": {"is_chat_available": "no"}},
            '"available_features.is_chat_available" must be a boolean',
        ),
        ({"display_name": "r", "ui_settings": {"language": "xx"}}, None),
        ({"display_name": "r", "colour": "red"}, '"colour" is not allowed'),
        ([], '"value" must be of type object'),
        ("room", '"value" must be of type object'),
    ],
)
def test_invalid_bodies_are_rejected_by_name(
    client: TestClient, account: Caller, body: Any, message: str | None
) -> None:
    response = create(client, account, body)
    if message is None:
        assert response.status_code == 400
        assert response.json()["name"] == "InputValidationError"
        assert response.json()["message"].startswith('"ui_settings.language" must be one of [')
    else:
        assert_invalid(response, message)
    listed = client.get(ROOMS, headers=account.basic).json()
    assert listed["total_items"] == 0 and listed["_embedded"] == []


@pytest.mark.parametrize("raw", [b"{", b"", b"null", b'{"display_name": "x",}', b"\xff"])
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: TestClient, account: Caller, raw: bytes
) -> None:
    response = client.post(
        ROOMS, headers={**account.basic, "Content-Type": "application/json"}, content=raw
    )
    assert response.status_code == 400
    assert response.json()["name"] == "InputValidationError"


def test_unknown_theme_is_a_400_and_writes_nothing(client: TestClient, account: Caller) -> None:
    theme_id = str(uuid.uuid4())
    response = create(client, account, {"display_name": "r", "theme_id": theme_id})
    assert response.status_code == 400
    assert response.json() == {
        "message": f"Failed to create room because theme id {theme_id} not found",
        "name": "BadRequestError",
        "status": 400,
    }
    assert client.get(ROOMS, headers=account.basic).json()["total_items"] == 0


def test_metadata_may_be_null_or_empty(client: TestClient, account: Caller) -> None:
    assert (
        create(client, account, {"display_name": "r", "metadata": None}).json()["metadata"] is None
    )
    assert create(client, account, {"display_name": "r", "metadata": ""}).json()["metadata"] == ""


def test_display_name_of_200_characters_is_accepted(client: TestClient, account: Caller) -> None:
    assert create(client, account, {"display_name": "é" * 200}).status_code == 201


def test_lengths_count_utf16_code_units(client: TestClient, account: Caller) -> None:
    """Vonage's Joi counted as JavaScript does: an emoji beyond U+FFFF is two units, so 100
    of them fill ``display_name``'s 200 and 101 are refused."""
    assert create(client, account, {"display_name": "😀" * 100}).status_code == 201
    assert_invalid(
        create(client, account, {"display_name": "😀" * 101}),
        '"display_name" length must be less than or equal to 200 characters long',
    )
    body = {"display_name": "r", "metadata": "😀" * 250}
    assert create(client, account, body).status_code == 201
    assert_invalid(
        create(client, account, {**body, "metadata": "😀" * 250 + "m"}),
        '"metadata" length must be less than or equal to 500 characters long',
    )


def test_meeting_codes_differ_between_live_rooms(client: TestClient, account: Caller) -> None:
    codes = {
        create(client, account, {"display_name": f"r{i}"}).json()["meeting_code"] for i in range(30)
    }
    assert len(codes) == 30


def test_content_type_is_not_required(client: TestClient, account: Caller) -> None:
    response = client.post(ROOMS, headers=account.basic, content=b'{"display_name":"no type"}')
    assert response.status_code == 201
