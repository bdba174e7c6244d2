"""The OpenAPI 3.0.3 document served at ``/openapi.json``: every route meetd serves, with the
request rules of :mod:`meetd.domain.rooms` and the bodies of :mod:`meetd.api.representations`.

It is built once, from the same constants the validators use, so an enum or a default cannot
drift from the code; only ``servers`` follows the configured public URL. Every body meetd
reads or writes is closed (``additionalProperties: false``): the server refuses unknown
fields, and the tests check that it sends none. ``tests/api/test_openapi.py`` keeps the
document honest: it must list exactly the app's routes, and a schemathesis run checks the
server's answers against it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from meetd import __version__
from meetd.api.rooms import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from meetd.domain import rooms
from meetd.domain.validation import MAX_SAFE_INTEGER

Schema = dict[str, Any]

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL, so meetd refuses it everywhere


def openapi_document(public_url: str) -> dict[str, Any]:
    """The document with ``servers`` naming ``public_url``. Read-only: all but the top level
    is shared between calls."""
    return {**_document(), "servers": [{"url": public_url}]}


# -- building blocks ------------------------------------------------------------------------


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def obj(properties: Mapping[str, Schema], *, required: Iterable[str] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return {**schema, "additionalProperties": False, **extra}


def closed(properties: Mapping[str, Schema]) -> Schema:
    """An object that always carries every one of ``properties``."""
    return obj(properties, required=properties)


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def enum(choices: Iterable[str], default: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "enum": list(choices)}
    return schema if default is None else {**schema, "default": default}


def booleans(defaults: Mapping[str, bool], *, with_defaults: bool) -> Schema:
    """Flags a request may set. On create a key left out takes its default; on update it
    keeps the room's current value."""
    return obj(
        {
            key: {"type": "boolean", "default": value} if with_defaults else {"type": "boolean"}
            for key, value in defaults.items()
        }
    )


def json_response(description: str, schema: Schema, **extra: Any) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def error_response(description: str, names: Iterable[str], status: int, **extra: Any) -> Schema:
    """Contract §3: ``{message, name, status}``, and ``errors`` when there are several causes."""
    body = obj(
        {
            "message": {"type": "string"},
            "name": enum(names),
            "status": {"type": "integer", "enum": [status]},
            "errors": {"type": "array", "items": {}},
        },
        required=("message", "name", "status"),
    )
    return json_response(description, body, **extra)


UUID: Schema = {"type": "string", "format": "uuid"}
HREF = closed({"href": {"type": "string", "format": "uri"}})
TIMESTAMP_IN: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601, from 1970 to 9999 UTC; one without an offset is read as UTC.",
}
TIMESTAMP_OUT: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "UTC with milliseconds: 2023-01-24T03:20:38.629Z.",
}
CALLBACK_URL: Schema = {
    "type": "string",
    "format": "uri",
    "maxLength": 2048,
    "pattern": r"^https?://[^\s\x00]+$",
}


# -- rooms (contract §4) --------------------------------------------------------------------


def room_options(*, with_defaults: bool) -> dict[str, Schema]:
    """The option fields that create and update requests share."""
    options = rooms.DEFAULT_OPTIONS

    def default(value: str) -> str | None:
        return value if with_defaults else None

    microphone = options["initial_join_options"]["microphone_state"]
    return {
        "join_approval_level": enum(
            rooms.JOIN_APPROVAL_LEVELS, default(options["join_approval_level"])
        ),
        "initial_join_options": obj(
            {"microphone_state": enum(rooms.MICROPHONE_STATES, default(microphone))}
        ),
        "callback_urls": obj(
            {kind: nullable(CALLBACK_URL) for kind in rooms.CALLBACK_KINDS},
            description="Overrides the application's URL for that kind of event; null drops it.",
        ),
        "available_features": booleans(rooms.FEATURE_DEFAULTS, with_defaults=with_defaults),
        "ui_settings": obj(
            {"language": enum(rooms.LANGUAGES, default(options["ui_settings"]["language"]))}
        ),
    }


def create_room_schema() -> Schema:
    expires_at = (
        "long_term: required, further ahead than the server's minimum lead "
        "(MEETD_LONG_TERM_MIN_LEAD_SECONDS, 10 minutes by default). instant: refused; an "
        "instant room expires MEETD_INSTANT_ROOM_TTL_SECONDS (10 minutes by default) after "
        "it empties. "
    )
    return obj(
        {
            "display_name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL},
            "metadata": nullable({"type": "string", "maxLength": 500, "pattern": NO_NUL}),
            "type": enum(rooms.ROOM_TYPES, "instant"),
            "expires_at": {**TIMESTAMP_IN, "description": expires_at + TIMESTAMP_IN["description"]},
            "expire_after_use": {"type": "boolean", "default": False},
            "recording_options": booleans(rooms.RECORDING_DEFAULTS, with_defaults=True),
            "theme_id": nullable(
                {
                    **UUID,
                    "description": "A theme of this application (else 400); when left "
                    "out, the application's default theme.",
                }
            ),
            **room_options(with_defaults=True),
        },
        required=("display_name",),
    )


def update_room_schema() -> Schema:
    details = obj(
        {
            "expires_at": {
                **TIMESTAMP_IN,
                "description": "Further ahead than the server's minimum lead "
                "(MEETD_LONG_TERM_MIN_LEAD_SECONDS, 10 minutes by default).",
            },
            "expire_after_use": {"type": "boolean"},
            "theme_id": nullable(UUID),
            **room_options(with_defaults=False),
        },
        minProperties=1,
        description="Only an available long-term room changes; nested objects merge into "
        "its current values.",
    )
    # The Node SDK spells the wrapper "update_options" (contract §10); one of the two, not both.
    return {"oneOf": [obj({name: details}, required=(name,)) for name in rooms.UPDATE_WRAPPERS]}


def room_schema() -> Schema:
    fields: dict[str, Schema] = {
        "id": UUID,
        "display_name": {"type": "string"},
        "metadata": nullable({"type": "string"}),
        "type": enum(rooms.ROOM_TYPES),
        "expires_at": TIMESTAMP_OUT,
        "recording_options": closed({key: {"type": "boolean"} for key in rooms.RECORDING_DEFAULTS}),
        "meeting_code": {"type": "string", "pattern": "^[1-9][0-9]{8}$"},
        "_links": closed({"host_url": HREF, "guest_url": HREF}),
        "created_at": TIMESTAMP_OUT,
        "is_available": {"type": "boolean"},
        "expire_after_use": {"type": "boolean"},
        "theme_id": nullable(UUID),
        "initial_join_options": closed({"microphone_state": enum(rooms.MICROPHONE_STATES)}),
        "join_approval_level": enum(rooms.JOIN_APPROVAL_LEVELS),
        "ui_settings": closed({"language": enum(rooms.LANGUAGES)}),
        "available_features": closed({key: {"type": "boolean"} for key in rooms.FEATURE_DEFAULTS}),
        # Present only when the room overrides at least one URL.
        "callback_urls": obj(
            {kind: {"type": "string", "format": "uri"} for kind in rooms.CALLBACK_KINDS},
            minProperties=1,
        ),
    }
    return obj(fields, required=[name for name in fields if name != "callback_urls"])


def room_page_schema(embedded: Schema) -> Schema:
    return closed(
        {
            "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            "_embedded": embedded,
            "_links": obj(
                {name: HREF for name in ("first", "self", "prev", "next")},
                required=("first", "self"),
                description="prev: only when earlier rooms exist; next: only when later ones do.",
            ),
            "total_items": {"type": "integer", "minimum": 0},
        }
    )


def tag_of(prefix: str) -> str:
    return prefix.strip("/").split("/")[0]  # "v1" or "beta"


def api_operation(
    tag: str, name: str, summary: str, responses: Mapping[str, Schema | str], **extra: Any
) -> Schema:
    """An authenticated API operation. ``responses`` values are inline responses or names of
    shared ones (``components/responses``)."""
    answers = {**responses, "401": "Unauthorized", "503": "Unavailable"}
    return {
        "tags": [tag],
        "operationId": f"{name}_{tag}",
        "summary": summary,
        **extra,
        "responses": {
            status: ref(answer, "responses") if isinstance(answer, str) else answer
            for status, answer in answers.items()
        },
    }


def body(name: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def path_parameter(name: str, description: str, schema: Schema = UUID) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query_integer(
    name: str, description: str, *, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER, **extra: int
) -> Schema:
    schema = {"type": "integer", "format": "int64", "minimum": minimum, "maximum": maximum}
    schema |= extra
    # Joi's conversion, as docs/api.md tells: a decimal of whole value counts as an integer.
    description += " Any decimal with a whole value is taken: 2.0, +5, 1e2."
    return {"name": name, "in": "query", "description": description, "schema": schema}


def page_parameters(noun: str = "room") -> list[Schema]:
    """The query of a serial-number page (rooms, events): ``noun`` names what is listed."""
    return [
        query_integer(
            "page_size",
            f"{noun.capitalize()}s per page.",
            minimum=1,
            maximum=MAX_PAGE_SIZE,
            default=DEFAULT_PAGE_SIZE,
        ),
        query_integer("start_id", f"The lowest {noun} serial to include."),
        query_integer("end_id", f"The serial to stop before; alone, the last {noun}s before it."),
    ]


def rooms_paths(prefix: str) -> dict[str, Schema]:
    """The rooms resource under one prefix; only the list's ``_embedded`` differs (§1)."""
    tag = tag_of(prefix)
    operation = functools.partial(api_operation, tag)

    page = ref("RoomPageBeta" if tag == "beta" else "RoomPage")
    room = json_response("The room.", ref("Room"))
    return {
        f"{prefix}/rooms": {
            "get": operation(
                "list_rooms",
                "A page of the application's rooms, in creation order",
                {"200": json_response("A page of rooms.", page), "400": "InputValidationError"},
                parameters=page_parameters(),
            ),
            "post": operation(
                "create_room",
                "Create a room",
                {"201": json_response("The new room.", ref("Room")), "400": "BadRequest"},
                requestBody=body("CreateRoom"),
            ),
        },
        f"{prefix}/rooms/{{room_id}}": {
            "parameters": [
                path_parameter(
                    "room_id", "Anything but a room of the calling application is a 404."
                )
            ],
            "get": operation("get_room", "Read a room", {"200": room, "404": "NotFound"}),
            "patch": operation(
                "update_room",
                "Change a long-term room",
                {"200": room, "400": "BadRequest", "404": "NotFound"},
                requestBody=body("UpdateRoom"),
            ),
            "delete": operation(
                "delete_room",
                "Delete a room, ending any meeting in it",
                {"204": {"description": "Deleted."}, "404": "NotFound"},
            ),
        },
    }


# -- the service endpoints and the whole document -------------------------------------------


def service_paths() -> dict[str, Schema]:
    def public(name: str, summary: str, ok: Schema, **responses: Schema) -> Schema:
        operation = {"tags": ["service"], "operationId": name, "summary": summary}
        return {"get": {**operation, "security": [], "responses": {"200": ok, **responses}}}

    metrics = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/healthz": public(
            "healthz",
            "Whether the server and its database answer",
            json_response("Healthy.", closed({"status": enum(["ok"])})),
            **{"503": error_response("No database.", ["ServiceUnavailableError"], 503)},
        ),
        "/metrics": public(
            "metrics",
            "Prometheus metrics",
            {"description": "Prometheus text format 0.0.4.", "content": metrics},
        ),
        "/openapi.json": public(
            "openapi", "This document", json_response("OpenAPI 3.0.3.", {"type": "object"})
        ),
    }


def components() -> Schema:
    from meetd.api import openapi_events, openapi_recordings, openapi_themes

    problem = closed(
        {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "instance": UUID,
        }
    )
    header = {"required": True, "schema": {"type": "string"}}
    rooms_array = {"type": "array", "items": ref("Room")}
    return {
        "securitySchemes": {
            "basic": {
                "type": "http",
                "scheme": "basic",
                "description": "API key and secret; acts on the account's default application.",
            },
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "RS256 with the application's private key. Claims: "
                "application_id and iat (required), exp (default: iat + 15 min), nbf, jti.",
            },
        },
        "schemas": {
            "CreateRoom": create_room_schema(),
            "UpdateRoom": update_room_schema(),
            "Room": room_schema(),
            "RoomPage": room_page_schema(rooms_array),
            "RoomPageBeta": room_page_schema(closed({"rooms": rooms_array})),
            **openapi_themes.schemas(),
            **openapi_recordings.schemas(),
            **openapi_events.schemas(),
        },
        "responses": {
            "InputValidationError": error_response(
                "The query fails validation; the message names the parameter.",
                ["InputValidationError"],
                400,
            ),
            "BadRequest": error_response(
                "InputValidationError: the body is not a JSON object or fails validation (the "
                "message names the field). BadRequestError: the state forbids it (an unknown "
                "theme; an instant or expired room cannot change).",
                ["InputValidationError", "BadRequestError"],
                400,
            ),
            "Unauthorized": json_response(
                "Missing or wrong credentials.", problem, headers={"WWW-Authenticate": header}
            ),
            "NotFound": error_response(
                "Not found in the calling application.", ["NotFoundError"], 404
            ),
            "Unavailable": error_response(
                "The database cannot be used now (down, unreachable, locked or read-only): "
                "try again.",
                ["ServiceUnavailableError"],
                503,
                headers={"Retry-After": {"schema": {"type": "integer"}}},
            ),
            "Conflict": error_response("A uniqueness rule forbids it.", ["ConflictError"], 409),
            "Forbidden": error_response(
                "Not allowed: a limit is reached, or the state forbids it.", ["ForbiddenError"], 403
            ),
            "MethodNotAllowed": error_response(
                "The path exists, the method does not.",
                ["MethodNotAllowedError"],
                405,
                headers={"Allow": header},
            ),
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    # Imported here: routes imports the service endpoints, which import this module.
    from meetd.api import files, openapi_events, openapi_recordings, openapi_themes
    from meetd.api.routes import API_PREFIXES

    paths = service_paths()
    paths.update(openapi_recordings.file_paths(files.UPLOAD_PATH, files.DOWNLOAD_PREFIX))
    for prefix in API_PREFIXES:
        paths.update(rooms_paths(prefix))
        paths.update(openapi_themes.paths(prefix))
        paths.update(openapi_recordings.paths(prefix))
        paths.update(openapi_events.paths(prefix))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "meetd",
            "version": __version__,
            "description": "A self-hosted server for the Meetings API, under /v1/meetings and "
            "/beta/meetings with one behaviour; only a list's _embedded differs (an array "
            "under /v1, {rooms: [...]} or {events: [...]} under /beta). An unknown path "
            "answers 404 (NotFound) and a wrong method 405 (MethodNotAllowed), in the error "
            "body of every other failure; a path with one trailing slash is the same path "
            "without it (as Express routed). A string's minLength and maxLength count UTF-16 "
            "code units, as Vonage's service (JavaScript) did: a character beyond U+FFFF, "
            "such as most emoji, counts two.",
        },
        "tags": [{"name": "v1"}, {"name": "beta"}, {"name": "service"}, {"name": "files"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": components(),
    }
