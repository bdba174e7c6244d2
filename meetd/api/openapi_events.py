"""The OpenAPI description of the callbacks' delivery log (beyond Vonage), built from the
constants :mod:`meetd.domain.events` and the list's checks use."""

from __future__ import annotations

import functools

from meetd.api.openapi import (
    HREF,
    TIMESTAMP_OUT,
    UUID,
    Schema,
    api_operation,
    body,
    closed,
    enum,
    error_response,
    json_response,
    nullable,
    obj,
    page_parameters,
    path_parameter,
    ref,
    tag_of,
)
from meetd.api.rooms import MAX_PAGE_SIZE
from meetd.domain.events import EVENT_TYPES, STATUSES
from meetd.domain.rooms import ROOM_TYPES

STATUS_TEXT = (
    "pending: to be sent (again); delivered: a 2xx answered; failed: every attempt of the "
    "retry schedule failed; no_url: no callback URL was configured, so nothing is sent."
)


def payload_schema() -> Schema:
    """The exact body sent. ``room:expired`` is the one meetd emits today; the others carry
    the contract's fields for their type (§9), with the same ``event_id`` and ``timestamp``."""
    room_expired = closed(
        {
            "event": enum(["room:expired"]),
            "room_id": UUID,
            "room_type": enum(ROOM_TYPES),
            "expires_at": TIMESTAMP_OUT,
            "created_at": TIMESTAMP_OUT,
            "event_id": UUID,
            "timestamp": TIMESTAMP_OUT,
        }
    )
    others = {
        "type": "object",
        "properties": {
            "event": enum([name for name in EVENT_TYPES if name != "room:expired"]),
            "event_id": UUID,
            "timestamp": TIMESTAMP_OUT,
        },
        "required": ["event", "event_id", "timestamp"],
        "description": "The contract's fields for the event's type, then event_id and timestamp.",
    }
    return {
        "oneOf": [room_expired, others],
        "description": "The JSON body sent, exactly: receivers deduplicate by event_id "
        "(delivery is at least once); timestamp is when the event happened.",
    }


def event_schema() -> Schema:
    moment = nullable(TIMESTAMP_OUT)
    return closed(
        {
            "id": UUID,
            "type": enum(EVENT_TYPES),
            "room_id": UUID,
            "status": {**enum(STATUSES), "description": STATUS_TEXT},
            "url": nullable(
                {
                    "type": "string",
                    "format": "uri",
                    "description": "Where it goes or went: the room's URL for its kind, else "
                    "the application's, as configured when it was emitted or last redelivered. "
                    "null with no_url.",
                }
            ),
            "attempts": {
                "type": "integer",
                "minimum": 0,
                "description": "Attempts of the current round; a redelivery starts over at 0.",
            },
            "created_at": TIMESTAMP_OUT,
            "last_attempt_at": moment,
            "next_attempt_at": {
                **moment,
                "description": "When a pending event is (re)tried; null once it is settled.",
            },
            "delivered_at": moment,
            "last_status_code": nullable(
                {
                    "type": "integer",
                    "description": "The receiver's last HTTP status; null when it did not "
                    "answer (refused, timed out) or was never tried.",
                }
            ),
            "last_error": nullable(
                {"type": "string", "description": "Why the last attempt failed."}
            ),
            "last_response": nullable(
                {"type": "string", "description": "The start of the receiver's last answer."}
            ),
            "payload": payload_schema(),
            "_links": closed({"self": HREF, "redeliver": HREF}),
        }
    )


def event_page_schema(embedded: Schema) -> Schema:
    return closed(
        {
            "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            "_embedded": embedded,
            "_links": obj(
                {name: HREF for name in ("first", "self", "prev", "next")},
                required=("first", "self"),
                description="Each keeps the filters. prev: only when earlier matching events "
                "exist; next: only when later ones do.",
            ),
            "total_items": {
                "type": "integer",
                "minimum": 0,
                "description": "The application's events that match the filters.",
            },
        }
    )


def schemas() -> dict[str, Schema]:
    events = {"type": "array", "items": ref("Event")}
    return {
        "Event": event_schema(),
        "EventPage": event_page_schema(events),
        "EventPageBeta": event_page_schema(closed({"events": events})),
        "RedeliverRoomEvents": obj(
            {"room_id": {**UUID, "description": "A room of the calling application."}},
            required=("room_id",),
        ),
        "RedeliveredEvents": closed(
            {
                "room_id": UUID,
                "redelivered": {
                    "type": "array",
                    "items": ref("Event"),
                    "description": "The room's events that had failed, oldest first; now "
                    "pending (or no_url when no URL is configured any more).",
                },
            }
        ),
    }


def list_parameters() -> list[Schema]:
    def choice(name: str, choices: tuple[str, ...], description: str) -> Schema:
        return {"name": name, "in": "query", "description": description, "schema": enum(choices)}

    return [
        *page_parameters("event"),
        {
            "name": "room_id",
            "in": "query",
            "description": "Only this room's events.",
            "schema": UUID,
        },
        choice("type", EVENT_TYPES, "Only events of this type."),
        choice("status", STATUSES, f"Only events in this state. {STATUS_TEXT}"),
    ]


def paths(prefix: str) -> dict[str, Schema]:
    tag = tag_of(prefix)
    operation = functools.partial(api_operation, tag)
    page = ref("EventPageBeta" if tag == "beta" else "EventPage")
    event_id = path_parameter(
        "event_id", "Anything but an event of the calling application is a 404."
    )
    return {
        f"{prefix}/events": {
            "get": operation(
                "list_events",
                "A page of the application's callback events and how their delivery went, "
                "oldest first",
                {"200": json_response("A page of events.", page), "400": "InputValidationError"},
                parameters=list_parameters(),
            )
        },
        f"{prefix}/events/redeliver": {
            "post": operation(
                "redeliver_room_events",
                "Send every failed event of a room again, now, to the URLs configured now",
                {
                    "202": json_response("The events sent again.", ref("RedeliveredEvents")),
                    "400": error_response(
                        "The body is not a JSON object or fails validation; the message "
                        "names the field.",
                        ["InputValidationError"],
                        400,
                    ),
                    "404": "NotFound",
                },
                requestBody=body("RedeliverRoomEvents"),
            )
        },
        f"{prefix}/events/{{event_id}}": {
            "parameters": [event_id],
            "get": operation(
                "get_event",
                "Read an event and how its delivery went",
                {"200": json_response("The event.", ref("Event")), "404": "NotFound"},
            ),
        },
        f"{prefix}/events/{{event_id}}/redeliver": {
            "parameters": [event_id],
            "post": operation(
                "redeliver_event",
                "Send an event again, now, to the URL configured now; its attempts start over",
                {
                    "202": json_response(
                        "The event: pending again (no_url without a URL now).", ref("Event")
                    ),
                    "404": "NotFound",
                },
            ),
        },
    }
