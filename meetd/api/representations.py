"""Rooms, room pages and themes as the API shows them (contract §4, §5), field by field, in
the order Vonage sent them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from meetd.domain import links
from meetd.domain.timestamps import format_timestamp
from meetd.store.rooms import RoomPage, RoomRecord, RoomRow, room_record
from meetd.store.themes import ThemeRecord

_encode = msgspec.json.encode


class RoomBodies:
    """Encoded room bodies, remembered by the row they were made from.

    A room's body is a pure function of its row (every column the store selects, the theme's
    short URL included) and of the public URL, which is fixed for the app. So a row equal to
    one seen before gets the same bytes back, whichever process changed the room in between:
    nothing needs invalidating. Reads of rooms and list pages skip decoding the options and
    building and encoding the body, which is most of their Python work.

    Bodies are filed by the row's serial (its first column) beside the row they were made
    from, and a row is compared with that one: equal strings of the same length compare in a
    memcmp, where a dict keyed by whole rows hashed every string afresh (each read gives new
    string objects), 0.5 µs a row.
    """

    def __init__(self, public_url: str, capacity: int = 10_000) -> None:
        self.public_url = public_url
        self.capacity = capacity
        self._bodies: dict[int, tuple[RoomRow, bytes]] = {}

    def encoded(self, row: RoomRow) -> bytes:
        known = self._bodies.get(row[0])
        if known is not None and known[0] == row:
            return known[1]
        if known is None and len(self._bodies) >= self.capacity:
            self._bodies.clear()
        body = _encode(room_body(room_record(row), self.public_url))
        self._bodies[row[0]] = (row, body)
        return body


def room_body(room: RoomRecord, public_url: str) -> dict[str, Any]:
    options = room.options
    short_url = room.short_company_url
    body: dict[str, Any] = {
        "id": room.id,
        "display_name": room.display_name,
        "metadata": room.metadata,
        "type": room.type,
        "expires_at": format_timestamp(room.expires_at),
        "recording_options": options["recording_options"],
        "meeting_code": room.meeting_code,
        "_links": {
            "host_url": {
                "href": links.host_url(public_url, room.meeting_code, room.host_token, short_url)
            },
            "guest_url": {"href": links.guest_url(public_url, room.meeting_code, short_url)},
        },
        "created_at": format_timestamp(room.created_at),
        "is_available": room.is_available,
        "expire_after_use": room.expire_after_use,
        "theme_id": room.theme_id,
        "initial_join_options": options["initial_join_options"],
        "join_approval_level": options["join_approval_level"],
        "ui_settings": options["ui_settings"],
        "available_features": options["available_features"],
    }
    if options["callback_urls"]:
        body["callback_urls"] = options["callback_urls"]
    return body


def page_body(
    page: RoomPage,
    *,
    bodies: RoomBodies,
    list_url: str,
    page_size: int,
    query: dict[str, int],
    embed_as_object: bool,
) -> dict[str, Any]:
    """A page of rooms with HAL links; ``list_url`` is the list's full URL without query.

    ``/beta`` wraps the rooms as ``{"rooms": [...]}``, ``/v1`` sends the bare array (§1).
    """
    rooms = [msgspec.Raw(bodies.encoded(row)) for row in page.rows]

    def link(**params: int) -> dict[str, str]:
        query = "".join(f"&{name}={value}" for name, value in params.items())
        return {"href": f"{list_url}?page_size={page_size}{query}"}

    link_map = {"first": link(), "self": link(**query)}
    if page.has_prev:
        first = page.rows[0][0] if page.rows else query["start_id"]
        link_map["prev"] = link(end_id=first)
    if page.has_next:
        after = page.rows[-1][0] + 1 if page.rows else query["end_id"]
        link_map["next"] = link(start_id=after)
    return {
        "page_size": page_size,
        "_embedded": {"rooms": rooms} if embed_as_object else rooms,
        "_links": link_map,
        "total_items": page.total,
    }


def theme_body(
    theme: ThemeRecord, account_id: str, logo_url: Callable[[str], str]
) -> dict[str, Any]:
    """A theme (contract §5), in the order Vonage sent it; ``logo_url`` links a logo's key."""

    def link(key: str | None) -> str | None:
        return None if key is None else logo_url(key)

    return {
        "theme_id": theme.id,
        "theme_name": theme.theme_name,
        "domain": "VCP",
        "account_id": account_id,
        "application_id": theme.application_id,
        "main_color": theme.main_color,
        "short_company_url": theme.short_company_url,
        "brand_text": theme.brand_text,
        "brand_image_colored": theme.brand_image_colored,
        "brand_image_white": theme.brand_image_white,
        "branded_favicon": theme.branded_favicon,
        "brand_image_white_url": link(theme.brand_image_white),
        "brand_image_colored_url": link(theme.brand_image_colored),
        "branded_favicon_url": link(theme.branded_favicon),
    }
