"""Rooms: what a create or update request may say, and the defaults it gets (contract §4)."""

from __future__ import annotations

import dataclasses
from typing import Any

from meetd.domain import validation as check
from meetd.domain.lifetime import check_long_term_expiry
from meetd.errors import BadRequestError, InputValidationError, NotFoundError

ROOM_TYPES = ("instant", "long_term")
JOIN_APPROVAL_LEVELS = ("none", "after_owner_only", "explicit_approval")
MICROPHONE_STATES = ("default", "on", "off")
# The languages of the meeting page's locale switcher; "default" follows the browser.
LANGUAGES = ("default", "en", "es", "ca", "de", "fr", "it", "pt", "he", "ja", "zh-CN", "zh-TW")
RECORDING_DEFAULTS = {"auto_record": False, "record_only_owner": False}
FEATURE_DEFAULTS = {
    "is_recording_available": True,
    "is_chat_available": True,
    "is_whiteboard_available": True,
    "is_locale_switcher_available": False,
    "is_captions_available": False,
}
CALLBACK_KINDS = ("rooms_callback_url", "sessions_callback_url", "recordings_callback_url")

CREATE_FIELDS = (
    "display_name",
    "metadata",
    "type",
    "expires_at",
    "expire_after_use",
    "recording_options",
    "theme_id",
    "join_approval_level",
    "initial_join_options",
    "callback_urls",
    "available_features",
    "ui_settings",
)
UPDATE_FIELDS = (
    "expires_at",
    "expire_after_use",
    "theme_id",
    "join_approval_level",
    "callback_urls",
    "available_features",
    "initial_join_options",
    "ui_settings",
)
# The Node SDK (@vonage/meetings 1.12.1) wraps its changes in "update_options" (§10).
UPDATE_WRAPPERS = ("update_details", "update_options")

DEFAULT_OPTIONS: dict[str, Any] = {
    "recording_options": RECORDING_DEFAULTS,
    "join_approval_level": "none",
    "initial_join_options": {"microphone_state": "default"},
    "ui_settings": {"language": "default"},
    "available_features": FEATURE_DEFAULTS,
    "callback_urls": {},
}


@dataclasses.dataclass(frozen=True, slots=True)
class NewRoom:
    """A validated create request. ``expires_at`` is None for instant rooms."""

    display_name: str
    metadata: str | None
    type: str
    expires_at: int | None
    expire_after_use: bool
    theme_id: str | None
    theme_given: bool  # False: take the application's default theme
    options: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RoomUpdate:
    """A validated update: only the keys the request named."""

    expires_at: int | None = None
    expire_after_use: bool | None = None
    theme_id: str | None = None
    theme_given: bool = False
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_new_room(body: Any, *, now_ms: int, min_lead_seconds: int) -> NewRoom:
    """Validate a ``POST /rooms`` body; the first problem found is the error."""
    body = check.require_object(body, "value")
    if "display_name" not in body:
        raise InputValidationError('"display_name" is required')
    display_name = check.string(body["display_name"], "display_name", max_length=200)
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = check.string(metadata, "metadata", min_length=0, max_length=500)
    room_type = check.one_of(body.get("type", "instant"), "type", ROOM_TYPES)

    expires_at = None
    if room_type == "long_term":
        if "expires_at" not in body:  # null is a value, and no date: Joi said so, as below
            raise InputValidationError('"expires_at" is required')
        expires_at = check.timestamp(body["expires_at"], "expires_at")
        check_long_term_expiry(expires_at, now_ms, min_lead_seconds)
    elif "expires_at" in body:
        raise InputValidationError('"expires_at" is not allowed when "type" is "instant"')

    expire_after_use = check.boolean(body.get("expire_after_use", False), "expire_after_use")
    theme_given = "theme_id" in body
    theme_id = _theme_id(body.get("theme_id"))
    options = _options(body, DEFAULT_OPTIONS)
    check.reject_unknown(body, CREATE_FIELDS)
    return NewRoom(
        display_name=display_name,
        metadata=metadata,
        type=room_type,
        expires_at=expires_at,
        expire_after_use=expire_after_use,
        theme_id=theme_id,
        theme_given=theme_given,
        options=options,
    )


def parse_room_update(
    body: Any, current_options: dict[str, Any], *, now_ms: int, min_lead_seconds: int
) -> RoomUpdate:
    """Validate a ``PATCH /rooms/{id}`` body. Nested objects merge into the current values."""
    body = check.require_object(body, "value")
    wrapper = next((name for name in UPDATE_WRAPPERS if name in body), "update_details")
    if wrapper not in body:
        raise InputValidationError('"update_details" is required')
    check.reject_unknown(body, (wrapper,))
    details = check.require_object(body[wrapper], wrapper)
    if not details:
        raise InputValidationError(f'"{wrapper}" must have at least 1 key')
    check.reject_unknown(details, UPDATE_FIELDS, f"{wrapper}.")

    expires_at = None
    if "expires_at" in details:
        path = f"{wrapper}.expires_at"
        expires_at = check.timestamp(details["expires_at"], path)
        check_long_term_expiry(expires_at, now_ms, min_lead_seconds, path)
    expire_after_use = None
    if "expire_after_use" in details:
        expire_after_use = check.boolean(details["expire_after_use"], f"{wrapper}.expire_after_use")
    options = _options(details, current_options, prefix=f"{wrapper}.")
    changed = {key: value for key, value in options.items() if key in details}
    return RoomUpdate(
        expires_at=expires_at,
        expire_after_use=expire_after_use,
        theme_id=_theme_id(details.get("theme_id"), f"{wrapper}.theme_id"),
        theme_given="theme_id" in details,
        options=changed,
    )


def room_not_found(room_id: str) -> NotFoundError:
    """The one answer for a room that does not exist, is deleted, or is another's."""
    return NotFoundError(f"The room with id: {room_id} could not be found")


def check_updatable(room_id: str, room_type: str, is_available: bool) -> None:
    """Only available long-term rooms change after creation (contract §4, Update)."""
    if room_type == "instant":
        raise BadRequestError(
            f"The room with id: {room_id} could not be updated because of its type: temporary"
        )
    if not is_available:
        raise BadRequestError(
            f"The room with id: {room_id} could not be updated because it has expired"
        )


def _theme_id(value: Any, path: str = "theme_id") -> str | None:
    return None if value is None else check.guid(value, path)


def _options(body: dict[str, Any], base: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The room's option objects: given keys checked, the rest taken from ``base``."""
    options = {
        "recording_options": base["recording_options"],
        "join_approval_level": base["join_approval_level"],
        "initial_join_options": base["initial_join_options"],
        "ui_settings": base["ui_settings"],
        "available_features": base["available_features"],
        "callback_urls": base["callback_urls"],
    }
    if "recording_options" in body:
        options["recording_options"] = check.flags(
            body["recording_options"],
            f"{prefix}recording_options",
            RECORDING_DEFAULTS,
            base["recording_options"],
        )
    if "join_approval_level" in body:
        options["join_approval_level"] = check.one_of(
            body["join_approval_level"], f"{prefix}join_approval_level", JOIN_APPROVAL_LEVELS
        )
    if "initial_join_options" in body:
        options["initial_join_options"] = check.choice_object(
            body["initial_join_options"],
            f"{prefix}initial_join_options",
            "microphone_state",
            MICROPHONE_STATES,
            base["initial_join_options"],
        )
    if "ui_settings" in body:
        options["ui_settings"] = check.choice_object(
            body["ui_settings"], f"{prefix}ui_settings", "language", LANGUAGES, base["ui_settings"]
        )
    if "available_features" in body:
        options["available_features"] = check.flags(
            body["available_features"],
            f"{prefix}available_features",
            FEATURE_DEFAULTS,
            base["available_features"],
        )
    if "callback_urls" in body:
        path = f"{prefix}callback_urls"
        given = check.require_object(body["callback_urls"], path)
        check.reject_unknown(given, CALLBACK_KINDS, f"{path}.")
        urls = dict(base["callback_urls"])
        for kind, url in given.items():
            if url is None:
                urls.pop(kind, None)
            else:
                urls[kind] = check.http_url(url, f"{path}.{kind}")
        options["callback_urls"] = {kind: urls[kind] for kind in CALLBACK_KINDS if kind in urls}
    return options
