"""The delivery log (beyond Vonage): an application's callback events, how each delivery went,
and sending them again.

Events page like rooms (serial numbers, ``start_id``/``end_id``, HAL links), filtered by
room, type and status; every link keeps the filters, so following ``next`` walks the same
selection. Another application's event answers exactly like a missing one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import Services, authenticate
from meetd.api.requests import api_prefix, json_body, path_uuid, query_int
from meetd.api.responses import JSONResponse
from meetd.api.rooms import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from meetd.domain import validation as check
from meetd.domain.events import EVENT_TYPES, STATUSES
from meetd.domain.timestamps import format_timestamp
from meetd.store import events
from meetd.store.database import Connection
from meetd.store.events import EventPage, EventRecord

# The filters in the order the links carry them.
_FILTERS = ("room_id", "type", "status")


def _moment(ms: int | None) -> str | None:
    return None if ms is None else format_timestamp(ms)


def event_entry(event: EventRecord, api_url: str) -> dict[str, Any]:
    """An event as the log shows it; ``api_url`` is the public URL and the request's prefix.
    ``payload`` is the exact body sent (and signed), not a re-encoding of it."""
    href = f"{api_url}/events/{event.id}"
    return {
        "id": event.id,
        "type": event.type,
        "room_id": event.room_id,
        "status": event.status,
        "url": event.url,
        "attempts": event.attempts,
        "created_at": format_timestamp(event.created_at),
        "last_attempt_at": _moment(event.last_attempt_at),
        "next_attempt_at": _moment(event.next_attempt_at),
        "delivered_at": _moment(event.delivered_at),
        "last_status_code": event.last_status_code,
        "last_error": event.last_error,
        "last_response": event.last_response,
        "payload": msgspec.Raw(event.body.encode()),
        "_links": {"self": {"href": href}, "redeliver": {"href": f"{href}/redeliver"}},
    }


def event_page_body(
    page: EventPage,
    *,
    api_url: str,
    page_size: int,
    filters: dict[str, str],
    bounds: dict[str, int],
    embed_as_object: bool,
) -> dict[str, Any]:
    """A page of events with HAL links, in the shape of a page of rooms: ``/beta`` embeds
    ``{"events": [...]}``, ``/v1`` the bare array."""
    entries = [event_entry(event, api_url) for event in page.events]

    def link(**bound: int) -> dict[str, str]:
        query = urlencode({"page_size": page_size, **filters, **bound}, safe=":")
        return {"href": f"{api_url}/events?{query}"}

    links = {"first": link(), "self": link(**bounds)}
    if page.has_prev:  # an empty page has earlier events only below its start_id
        first = page.events[0].serial if page.events else bounds["start_id"]
        links["prev"] = link(end_id=first)
    if page.has_next:  # ... and later ones only from its end_id on
        after = page.events[-1].serial + 1 if page.events else bounds["end_id"]
        links["next"] = link(start_id=after)
    return {
        "page_size": page_size,
        "_embedded": {"events": entries} if embed_as_object else entries,
        "_links": links,
        "total_items": page.total,
    }


def _api_url(services: Services, request: Request) -> str:
    return f"{services.settings.public_url}{api_prefix(request)}"


def _event_id(request: Request) -> str:
    return path_uuid(request, "event_id", events.event_not_found)


def _filters(request: Request) -> dict[str, str]:
    query = request.query_params
    filters = {name: query[name] for name in _FILTERS if name in query}
    if "room_id" in filters:
        filters["room_id"] = check.guid(filters["room_id"], "room_id")
    if "type" in filters:
        check.one_of(filters["type"], "type", EVENT_TYPES)
    if "status" in filters:
        check.one_of(filters["status"], "status", STATUSES)
    return filters


def _room_to_redeliver(body: Any) -> str:
    """``{"room_id": uuid}``, nothing else."""
    body = check.require_object(body, "value")
    if "room_id" not in body:
        raise check.fail('"room_id" is required')
    room_id = check.guid(body["room_id"], "room_id")
    check.reject_unknown(body, ("room_id",))
    return room_id


async def list_events(request: Request) -> Response:
    services, principal = await authenticate(request)
    page_size = query_int(request, "page_size", minimum=1, maximum=MAX_PAGE_SIZE)
    page_size = page_size or DEFAULT_PAGE_SIZE
    bounds = {
        name: value
        for name in ("start_id", "end_id")
        if (value := query_int(request, name, minimum=0)) is not None
    }
    filters = _filters(request)
    page = await services.db.read(
        lambda c: events.list_events(
            c,
            principal.application_id,
            page_size=page_size,
            start_id=bounds.get("start_id"),
            end_id=bounds.get("end_id"),
            room_id=filters.get("room_id"),
            event_type=filters.get("type"),
            status=filters.get("status"),
        )
    )
    body = event_page_body(
        page,
        api_url=_api_url(services, request),
        page_size=page_size,
        filters=filters,
        bounds=bounds,
        embed_as_object=api_prefix(request).startswith("/beta"),
    )
    return JSONResponse(body)


async def get_event(request: Request) -> Response:
    services, principal = await authenticate(request)
    event_id = _event_id(request)
    event = await services.db.read(
        lambda c: events.get_event(c, principal.application_id, event_id)
    )
    return JSONResponse(event_entry(event, _api_url(services, request)))


async def redeliver_event(request: Request) -> Response:
    """Send one event again now, to the URL configured now; its attempts start over."""
    services, principal = await authenticate(request)
    event_id = _event_id(request)
    now = services.clock.now_ms()
    event = await services.db.write(
        lambda c: events.redeliver_event(c, principal.application_id, event_id, now_ms=now)
    )
    services.notice_events()
    return JSONResponse(event_entry(event, _api_url(services, request)), status_code=202)


async def redeliver_room_events(request: Request) -> Response:
    """Send every failed event of a room again, oldest first (possibly none)."""
    services, principal = await authenticate(request)
    room_id = _room_to_redeliver(await json_body(request))
    application_id = principal.application_id
    now = services.clock.now_ms()

    def redeliver(conn: Connection) -> list[EventRecord]:
        events.check_room(conn, application_id, room_id)
        return events.redeliver_failed_events(conn, application_id, room_id, now_ms=now)

    redelivered = await services.db.write(redeliver)
    if redelivered:
        services.notice_events()
    api_url = _api_url(services, request)
    body = {
        "room_id": room_id,
        "redelivered": [event_entry(event, api_url) for event in redelivered],
    }
    return JSONResponse(body, status_code=202)
