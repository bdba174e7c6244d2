"""The rooms endpoints (contract §4): create, read, list, update, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import Services, authenticate
from meetd.api.representations import page_body, room_body
from meetd.api.requests import api_prefix, json_body, path_uuid, query_int
from meetd.api.responses import EncodedJSONResponse, JSONResponse, no_content
from meetd.domain.lifetime import instant_expires_at
from meetd.domain.links import sign_host_token
from meetd.domain.randomness import new_uuid
from meetd.domain.rooms import (
    DEFAULT_OPTIONS,
    check_updatable,
    parse_new_room,
    parse_room_update,
    room_not_found,
)
from meetd.store import events, rooms
from meetd.store.database import Connection

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _room_id(request: Request) -> str:
    return path_uuid(request, "room_id", room_not_found)


async def create_room(request: Request) -> Response:
    services, principal = await authenticate(request)
    settings = services.settings
    body = await json_body(request)
    now = services.clock.now_ms()
    new = parse_new_room(body, now_ms=now, min_lead_seconds=settings.long_term_min_lead_seconds)
    expires_at = new.expires_at or instant_expires_at(now, settings.instant_room_ttl_seconds)
    host_id = new_uuid()
    token = sign_host_token(host_id, now, key=services.signing_key, key_id=services.key_id)
    insert = rooms.RoomInsert(
        application_id=principal.application_id,
        new=new,
        expires_at=expires_at,
        created_at=now,
        host_participant_id=host_id,
        host_token=token,
    )
    record = await rooms.create_room(services.db, insert)
    services.metrics.rooms_created.inc()
    if services.sweeper is not None:
        services.sweeper.notice(expires_at)
    return JSONResponse(room_body(record, settings.public_url), status_code=201)


async def get_room(request: Request) -> Response:
    services, principal = await authenticate(request)
    ref = services.keys.ref(_room_id(request))
    row = await services.db.read_together(rooms.get_room_rows, (principal.application_id, ref))
    return EncodedJSONResponse(services.room_bodies.encoded(row))


async def list_rooms(request: Request) -> Response:
    services, principal = await authenticate(request)
    return await room_page(request, services, principal.application_id, "/rooms")


async def room_page(
    request: Request,
    services: Services,
    application_id: str,
    list_path: str,
    theme_id: str | None = None,
) -> Response:
    """A page of the application's rooms (or of one theme's), as ``GET {prefix}{list_path}``
    shows it: the query read and checked, the rooms and the HAL links."""
    page_size = query_int(request, "page_size", minimum=1, maximum=MAX_PAGE_SIZE)
    page_size = page_size or DEFAULT_PAGE_SIZE
    start_id = query_int(request, "start_id", minimum=0)
    end_id = query_int(request, "end_id", minimum=0)
    if theme_id is None:
        page = await services.db.read_together(
            rooms.list_room_pages, (application_id, start_id, end_id, page_size)
        )
    else:
        page = await services.db.read(
            lambda c: rooms.list_rooms(
                c,
                application_id,
                page_size=page_size,
                start_id=start_id,
                end_id=end_id,
                theme_id=theme_id,
            )
        )
    query = {
        name: value
        for name, value in (("start_id", start_id), ("end_id", end_id))
        if value is not None
    }
    prefix = api_prefix(request)
    body = page_body(
        page,
        bodies=services.room_bodies,
        list_url=f"{services.settings.public_url}{prefix}{list_path}",
        page_size=page_size,
        query=query,
        embed_as_object=prefix.startswith("/beta"),
    )
    return JSONResponse(body)


async def update_room(request: Request) -> Response:
    services, principal = await authenticate(request)
    room_id = _room_id(request)
    body = await json_body(request)
    lead = services.settings.long_term_min_lead_seconds
    now = services.clock.now_ms()
    # Validate before touching the store; merge nested objects against the stored room below.
    parse_room_update(body, DEFAULT_OPTIONS, now_ms=now, min_lead_seconds=lead)

    def update(conn: Connection) -> rooms.RoomRecord:
        room = rooms.lock_room(conn, principal.application_id, room_id)
        check_updatable(room.id, room.type, room.is_available)
        change = parse_room_update(body, room.options, now_ms=now, min_lead_seconds=lead)
        return rooms.update_room(conn, room, change)

    record = await services.db.write(update)
    if services.sweeper is not None:
        services.sweeper.notice(record.expires_at)
    return JSONResponse(room_body(record, services.settings.public_url))


async def delete_room(request: Request) -> Response:
    services, principal = await authenticate(request)
    room_id = _room_id(request)
    now = services.clock.now_ms()

    def delete(conn: Connection) -> bool:
        expired = rooms.delete_room(conn, principal.application_id, room_id, now)
        if expired is not None:  # it was live: room:expired goes out with the deletion
            events.emit_room_expired(conn, expired, now_ms=now)
        return expired is not None

    was_available = await services.db.write(delete)
    services.metrics.rooms_deleted.inc()
    if was_available:
        services.metrics.callback_events.labels("room:expired").inc()
        services.notice_events()
    return no_content()
