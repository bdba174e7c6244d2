"""The official Python SDK (``vonage==3.17.4``) against a real meetd over TLS.

The SDK only speaks https and copies the meetings host when ``vonage.Meetings`` is built, so
each client sets the host and then rebuilds ``client.meetings``; the server's CA reaches
``requests`` through ``REQUESTS_CA_BUNDLE``. Errors come back as the SDK formats a Vonage
error body: ``Status Code {status}: {name}: {message}``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import vonage
from vonage.errors import AuthenticationError, ClientError, MeetingsError
from vonage_jwt.jwt import JwtClient

from tests.e2e.conftest import MeetingsFactory, Server

pytestmark = pytest.mark.e2e


def wire_time(moment: datetime) -> str:
    """How meetd answers a moment: UTC, milliseconds (truncated), ``Z``."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def parse_wire_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def error(status: int, name: str, message: str) -> str:
    return f"Status Code {status}: {name}: {message}"


# -- create and read ---------------------------------------------------------------------------
def test_create_and_get_an_instant_room(meetings: vonage.Meetings) -> None:
    room = meetings.create_room({"display_name": "Python instant", "metadata": "m-1"})

    assert room["display_name"] == "Python instant"
    assert room["metadata"] == "m-1"
    assert room["type"] == "instant"
    assert room["is_available"] is True
    created_at = parse_wire_time(room["created_at"])
    assert parse_wire_time(room["expires_at"]) - created_at == timedelta(minutes=10)
    assert meetings.get_room(room["id"]) == room


def test_long_term_room_with_a_naive_microsecond_expiry(meetings: vonage.Meetings) -> None:
    """The SDK's users pass ``datetime.isoformat()`` of a naive UTC moment: no offset, µs."""
    expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=3, microseconds=123456)
    sent = expires.isoformat()
    assert "." in sent
    assert "+" not in sent

    room = meetings.create_room(
        {
            "display_name": "Python long term",
            "type": "long_term",
            "expires_at": sent,
            "expire_after_use": True,
            "join_approval_level": "explicit_approval",
        }
    )

    assert room["type"] == "long_term"
    assert room["expires_at"] == wire_time(expires.replace(tzinfo=UTC))
    assert room["expire_after_use"] is True
    assert room["join_approval_level"] == "explicit_approval"
    assert meetings.get_room(room["id"])["expires_at"] == room["expires_at"]


@pytest.mark.parametrize("offset", ["+0000", "+0200", "-0530"])
def test_long_term_room_with_a_compact_offset(meetings: vonage.Meetings, offset: str) -> None:
    local = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, tzinfo=None)
    sent = f"{local:%Y-%m-%dT%H:%M:%S}{offset}"
    moment = datetime.strptime(sent, "%Y-%m-%dT%H:%M:%S%z")

    room = meetings.create_room({"display_name": "Offset", "type": "long_term", "expires_at": sent})

    assert room["expires_at"] == wire_time(moment)


# -- list --------------------------------------------------------------------------------------
def next_start_id(page: dict[str, Any]) -> str | None:
    """The SDK's list_rooms returns one page; callers follow ``_links.next`` themselves."""
    link = page["_links"].get("next")
    if link is None:
        return None
    return parse_qs(urlsplit(link["href"]).query)["start_id"][0]


def test_list_rooms_page_by_page(tls_server: Server, meetings: vonage.Meetings) -> None:
    created = [meetings.create_room({"display_name": f"page {n}"})["id"] for n in range(5)]

    pages = [meetings.list_rooms(page_size=2)]
    while (start_id := next_start_id(pages[-1])) is not None:
        pages.append(meetings.list_rooms(page_size=2, start_id=start_id))

    listed = [room["id"] for page in pages for room in page["_embedded"]]
    assert len(pages) >= 3
    assert all(page["page_size"] == 2 for page in pages)
    assert all(1 <= len(page["_embedded"]) <= 2 for page in pages)
    assert len(listed) == len(set(listed)) == pages[0]["total_items"]
    assert listed[-5:] == created  # ascending creation order
    assert "prev" not in pages[0]["_links"]
    assert all("prev" in page["_links"] for page in pages[1:])
    assert all("next" in page["_links"] for page in pages[:-1])
    assert pages[1]["_links"]["self"] == {
        "href": f"{tls_server.url}/v1/meetings/rooms?page_size=2&start_id={next_start_id(pages[0])}"
    }


def test_list_shows_only_the_callers_rooms(
    meetings: vonage.Meetings, other_meetings: vonage.Meetings
) -> None:
    theirs = other_meetings.create_room({"display_name": "not yours"})["id"]

    page = meetings.list_rooms(page_size=100)

    assert theirs not in [room["id"] for room in page["_embedded"]]


# -- update ------------------------------------------------------------------------------------
def test_update_a_long_term_room(meetings: vonage.Meetings) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    room = meetings.create_room(
        {"display_name": "To update", "type": "long_term", "expires_at": expires.isoformat()}
    )
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=5, microseconds=654321)

    updated = meetings.update_room(
        room["id"],
        {
            "update_details": {
                "expires_at": later.isoformat(),
                "expire_after_use": True,
                "join_approval_level": "after_owner_only",
                "available_features": {"is_chat_available": False},
            }
        },
    )

    assert updated["id"] == room["id"]
    assert updated["expires_at"] == wire_time(later.replace(tzinfo=UTC))
    assert updated["expire_after_use"] is True
    assert updated["join_approval_level"] == "after_owner_only"
    assert updated["available_features"] == {
        **room["available_features"],
        "is_chat_available": False,
    }
    assert updated["display_name"] == "To update"
    assert updated["meeting_code"] == room["meeting_code"]
    assert updated["_links"] == room["_links"]
    assert meetings.get_room(room["id"]) == updated


# -- 400 ---------------------------------------------------------------------------------------
def test_missing_display_name(meetings: vonage.Meetings) -> None:
    # The SDK refuses before sending; the same body sent through the SDK's own transport
    # gets the server's answer.
    with pytest.raises(MeetingsError):
        meetings.create_room({"metadata": "no name"})
    with pytest.raises(ClientError) as raised:
        meetings._client.post(
            meetings._meetings_api_host, "/rooms", {"metadata": "no name"}, auth_type="jwt"
        )
    assert str(raised.value) == error(400, "InputValidationError", '"display_name" is required')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"display_name": ""}, '"display_name" is not allowed to be empty'),
        ({"display_name": "x", "bogus": 1}, '"bogus" is not allowed'),
        (
            {"display_name": "x", "recording_options": {"auto_record": "yes"}},
            '"recording_options.auto_record" must be a boolean',
        ),
    ],
)
def test_invalid_room(meetings: vonage.Meetings, body: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as raised:
        meetings.create_room(body)
    assert str(raised.value) == error(400, "InputValidationError", message)


def test_long_term_expiry_too_soon(meetings: vonage.Meetings) -> None:
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    with pytest.raises(ClientError) as raised:
        meetings.create_room(
            {"display_name": "soon", "type": "long_term", "expires_at": soon.isoformat()}
        )
    assert str(raised.value) == error(
        400, "InputValidationError", '"expires_at" must be more than 10 minutes in the future'
    )


def test_instant_rooms_cannot_be_updated(meetings: vonage.Meetings) -> None:
    room = meetings.create_room({"display_name": "instant"})
    with pytest.raises(ClientError) as raised:
        meetings.update_room(room["id"], {"update_details": {"expire_after_use": True}})
    assert str(raised.value) == error(
        400,
        "BadRequestError",
        f"The room with id: {room['id']} could not be updated because of its type: temporary",
    )


def test_update_without_keys(meetings: vonage.Meetings) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    room = meetings.create_room(
        {"display_name": "lt", "type": "long_term", "expires_at": expires.isoformat()}
    )
    with pytest.raises(ClientError) as raised:
        meetings.update_room(room["id"], {"update_details": {}})
    assert str(raised.value) == error(
        400, "InputValidationError", '"update_details" must have at least 1 key'
    )


# -- 401 ---------------------------------------------------------------------------------------
def wrong_callers(server: Server) -> dict[str, tuple[str, str]]:
    alice, bob = (account.application for account in server.accounts)
    return {
        "another application's key": (alice.application_id, str(bob.private_key)),
        "another application's id": (bob.application_id, str(alice.private_key)),
        "an unknown application": (str(uuid.uuid4()), str(alice.private_key)),
    }


@pytest.mark.parametrize(
    "case", ["another application's key", "another application's id", "an unknown application"]
)
def test_wrong_credentials(tls_server: Server, connect: MeetingsFactory, case: str) -> None:
    application_id, key = wrong_callers(tls_server)[case]

    with pytest.raises(AuthenticationError):
        connect(application_id, key).list_rooms()

    # The SDK drops the 401 body; check it with the same kind of JWT the SDK signs.
    token = JwtClient(application_id, key).generate_application_jwt().decode()
    with tls_server.http() as http:
        response = http.get("/v1/meetings/rooms", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"]
    body = response.json()
    assert uuid.UUID(body.pop("instance"))
    assert body == {
        "type": "https://developer.vonage.com/api-errors#unauthorized",
        "title": "Unauthorized",
        "detail": "You did not provide correct credentials.",
    }


# -- 404 ---------------------------------------------------------------------------------------
def test_unknown_room(meetings: vonage.Meetings) -> None:
    room_id = str(uuid.uuid4())
    with pytest.raises(ClientError) as raised:
        meetings.get_room(room_id)
    assert str(raised.value) == error(
        404, "NotFoundError", f"The room with id: {room_id} could not be found"
    )


def test_another_applications_room_does_not_exist(
    meetings: vonage.Meetings, other_meetings: vonage.Meetings
) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    theirs = other_meetings.create_room(
        {"display_name": "theirs", "type": "long_term", "expires_at": expires.isoformat()}
    )["id"]
    missing = error(404, "NotFoundError", f"The room with id: {theirs} could not be found")

    with pytest.raises(ClientError) as read:
        meetings.get_room(theirs)
    with pytest.raises(ClientError) as update:
        meetings.update_room(theirs, {"update_details": {"expire_after_use": True}})

    assert str(read.value) == missing
    assert str(update.value) == missing
    assert other_meetings.get_room(theirs)["expire_after_use"] is False
