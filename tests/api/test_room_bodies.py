"""Room bodies remembered by row: an equal row gets the same bytes, a changed one a new body."""

from __future__ import annotations

import json

from meetd.api.representations import RoomBodies
from meetd.store.rooms import RoomRow

OPTIONS = json.dumps(
    {
        "recording_options": {"auto_record": False, "record_only_owner": False},
        "initial_join_options": {"microphone_state": "default"},
        "join_approval_level": "none",
        "ui_settings": {"language": "default"},
        "available_features": {"is_recording_available": True},
        "callback_urls": None,
    }
)


def fresh(text: str) -> str:
    """An equal string in a new object, as each read from the database gives."""
    return (text + " ")[:-1]


def row(serial: int = 5, display_name: str = "Room", short_url: str | None = None) -> RoomRow:
    return (
        serial,
        fresh(f"0b0e6c55-31a9-4b9f-8f0e-{serial:012d}"),
        fresh("a3b1c2d4-0000-4000-8000-000000000001"),
        fresh(display_name),
        None,
        "instant",
        fresh("123456789"),
        fresh(f"token-{serial}"),
        None,
        0,
        fresh(OPTIONS),
        1_700_000_000_000,
        1_700_000_600_000,
        1,
        short_url,
    )


def test_an_equal_row_gets_the_bytes_made_before() -> None:
    bodies = RoomBodies("https://meet.example")
    first = bodies.encoded(row())
    again = bodies.encoded(row())
    assert again is first
    assert json.loads(first)["display_name"] == "Room"


def test_a_changed_row_of_the_same_room_gets_a_new_body() -> None:
    bodies = RoomBodies("https://meet.example")
    bodies.encoded(row())
    renamed = json.loads(bodies.encoded(row(display_name="Renamed")))
    assert renamed["display_name"] == "Renamed"
    themed = json.loads(bodies.encoded(row(display_name="Renamed", short_url="acme")))
    assert "/acme/" in themed["_links"]["guest_url"]["href"]
    assert "/acme/" not in renamed["_links"]["guest_url"]["href"]
    # and back: the first row's body again, not the last one remembered
    assert json.loads(bodies.encoded(row()))["display_name"] == "Room"


def test_rooms_of_different_serials_keep_their_own_bodies() -> None:
    bodies = RoomBodies("https://meet.example", capacity=3)
    made = {serial: json.loads(bodies.encoded(row(serial))) for serial in range(1, 8)}
    for serial in range(1, 8):
        body = json.loads(bodies.encoded(row(serial)))
        assert body == made[serial]
        assert body["id"].endswith(f"{serial:012d}")
