"""The OpenAPI description of recordings, sessions and dial-in numbers (§7, §8), and of the
file endpoints behind upload forms and download links."""

from __future__ import annotations

import functools

from meetd.api.openapi import (
    TIMESTAMP_OUT,
    UUID,
    Schema,
    api_operation,
    closed,
    enum,
    error_response,
    json_response,
    nullable,
    obj,
    path_parameter,
    ref,
    tag_of,
)
from meetd.store.recordings import MAX_SESSION_ID_LENGTH, STATUSES


def schemas() -> dict[str, Schema]:
    href = closed({"href": {"type": "string", "format": "uri"}})
    return {
        "Recording": closed(
            {
                "id": UUID,
                "session_id": {"type": "string"},
                "started_at": TIMESTAMP_OUT,
                "ended_at": nullable(TIMESTAMP_OUT),
                "status": enum(STATUSES),
                "_links": obj(
                    {"url": href},
                    description="url: a signed download link that works for an hour; only "
                    "once the recording is uploaded.",
                ),
            }
        ),
        "SessionRecordings": closed(
            {"_embedded": closed({"recordings": {"type": "array", "items": ref("Recording")}})}
        ),
        "DialInNumber": closed(
            {
                "number": {"type": "string", "pattern": "^[0-9]+$"},
                "locale": {"type": "string"},
                "display_name": {"type": "string"},
            }
        ),
    }


def paths(prefix: str) -> dict[str, Schema]:
    operation = functools.partial(api_operation, tag_of(prefix))
    recording_id = path_parameter(
        "recording_id", "Anything but a recording of the calling application is a 404."
    )
    session_id = path_parameter(
        "session_id",
        "A session of the calling application (else 404).",
        {"type": "string", "minLength": 1, "maxLength": MAX_SESSION_ID_LENGTH},
    )
    session_recordings = operation(
        "list_session_recordings",
        "The session's recordings, in the order they started",
        {
            "200": json_response("The recordings.", ref("SessionRecordings")),
            "404": "NotFound",
        },
    )
    return {
        f"{prefix}/recordings/{{recording_id}}": {
            "parameters": [recording_id],
            "get": operation(
                "get_recording",
                "Read a recording",
                {"200": json_response("The recording.", ref("Recording")), "404": "NotFound"},
            ),
            "delete": operation(
                "delete_recording",
                "Delete an uploaded recording and its file",
                {
                    "204": {"description": "Deleted."},
                    "403": "Forbidden",
                    "404": "NotFound",
                },
            ),
        },
        f"{prefix}/sessions/{{session_id}}/recordings": {
            "parameters": [session_id],
            "get": session_recordings,
        },
        # The Node SDK's getSessionRecordings reads this path (§10).
        f"{prefix}/sessions/{{session_id}}": {
            "parameters": [session_id],
            "get": {
                **session_recordings,
                "operationId": session_recordings["operationId"].replace(
                    "list_session_recordings", "get_session"
                ),
                "summary": "The same as /sessions/{session_id}/recordings",
            },
        },
        f"{prefix}/dial-in-numbers": {
            "get": operation(
                "list_dial_in_numbers",
                "The numbers that dial into meetings, as the operator set them",
                {
                    "200": json_response(
                        "The numbers, in the order they were added.",
                        {"type": "array", "items": ref("DialInNumber")},
                    )
                },
            )
        },
    }


def file_paths(upload_path: str, download_prefix: str) -> dict[str, Schema]:
    """The local file store's endpoints: public, guarded by their signatures instead."""
    refused = ["InputValidationError", "BadRequestError", "ForbiddenError", "NotFoundError"]
    return {
        upload_path: {
            "post": {
                "tags": ["files"],
                "operationId": "upload",
                "summary": "Receive a file sent with an upload form (local file store only)",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                                "required": ["file"],
                                "additionalProperties": {"type": "string"},
                            }
                        }
                    },
                },
                "responses": {
                    "204": {"description": "Stored."},
                    "400": error_response(
                        "No file, a malformed form, or a file over the form's limit.", refused, 400
                    ),
                    "403": error_response(
                        "The form's signature or policy does not hold, or it has expired.",
                        refused,
                        403,
                    ),
                    "404": error_response("Files live in S3: upload there.", refused, 404),
                },
            }
        },
        f"{download_prefix}/{{key}}": {
            "get": {
                "tags": ["files"],
                "operationId": "download",
                "summary": "Download a file: logos are public, other files need a signed link",
                "security": [],
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "description": "The file's key; it may contain slashes.",
                        "schema": {"type": "string"},
                    },
                    {"name": "expires", "in": "query", "schema": {"type": "string"}},
                    {"name": "signature", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "307": {"description": "Stored in S3: a presigned link to it."},
                    "403": error_response("A missing, wrong or expired signature.", refused, 403),
                    "404": error_response("No such file.", refused, 404),
                },
            }
        },
    }
