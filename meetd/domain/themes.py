"""Themes: what a create or update request may say (contract §5), and the logo keys.

A theme brands an application's rooms: a colour, a text, up to three logos, and an optional
``short_company_url`` that the rooms' links carry (``{public_url}/{short_company_url}/...``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from meetd.domain import validation as check
from meetd.domain.logos import LOGO_TYPES
from meetd.domain.randomness import new_uuid
from meetd.errors import InputValidationError, NotFoundError

THEME_FIELDS = ("theme_name", "main_color", "brand_text", "short_company_url")
MAIN_COLOR = re.compile(r"^#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$")
# Letters, digits, "_", "~" and "-", with at least one that is not a digit — so a short URL
# never looks like a meeting code in ``{public_url}/{short_company_url}/{meeting_code}``.
SHORT_COMPANY_URL = re.compile(r"^(?=.*[a-zA-Z_~-])([a-zA-Z0-9_~-]+)$")
# First path segments meetd serves itself (or will): a room link must never land on them.
RESERVED_SHORT_URLS = frozenset(
    ("api", "assets", "beta", "files", "healthz", "metrics", "static", "uploads", "v1", "ws")
)
MAX_NAME = 200
MAX_BRAND_TEXT = 200
MAX_SHORT_URL = 128

# The theme column each kind of logo fills.
LOGO_COLUMNS = {
    "white": "brand_image_white",
    "colored": "brand_image_colored",
    "favicon": "branded_favicon",
}
# Where an upload form puts a logo until it is finalized, and where it goes then.
_TEMPORARY_LOGO_KEY = re.compile(
    r"^auto-expiring-temp/logos/(white|colored|favicon)/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$"
)


@dataclasses.dataclass(frozen=True, slots=True)
class ThemeChange:
    """A validated create or update: the keys given, by column name."""

    values: dict[str, str | None]


def parse_new_theme(body: Any) -> ThemeChange:
    """Validate a ``POST /themes`` body; the first problem found is the error."""
    body = check.require_object(body, "value")
    for required in ("main_color", "brand_text"):
        if required not in body:
            raise InputValidationError(f'"{required}" is required')
    check.reject_unknown(body, THEME_FIELDS)
    return ThemeChange(_fields(body, ""))


def parse_theme_update(body: Any) -> ThemeChange:
    """Validate a ``PATCH /themes/{id}`` body: ``{"update_details": {...}}``, ≥ 1 key."""
    details = check.update_details(body, THEME_FIELDS)
    return ThemeChange(_fields(details, "update_details."))


def _fields(body: dict[str, Any], prefix: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    if "theme_name" in body:
        values["theme_name"] = check.string(
            body["theme_name"], f"{prefix}theme_name", max_length=MAX_NAME
        )
    if "main_color" in body:
        values["main_color"] = _pattern(body["main_color"], f"{prefix}main_color", MAIN_COLOR, 7)
    if "brand_text" in body:
        values["brand_text"] = check.string(
            body["brand_text"], f"{prefix}brand_text", max_length=MAX_BRAND_TEXT
        )
    if "short_company_url" in body:
        values["short_company_url"] = _short_company_url(
            body["short_company_url"], f"{prefix}short_company_url"
        )
    return values


def _pattern(value: Any, path: str, pattern: re.Pattern[str], max_length: int) -> str:
    text = check.string(value, path, max_length=max_length)
    if not pattern.fullmatch(text):
        raise InputValidationError(
            f'"{path}" with value "{text}" fails to match the required pattern: /{pattern.pattern}/'
        )
    return text


def _short_company_url(value: Any, path: str) -> str | None:
    """A short URL, or None to have none (null is accepted on create and on update)."""
    if value is None:
        return None
    text = _pattern(value, path, SHORT_COMPANY_URL, MAX_SHORT_URL)
    if text.lower() in RESERVED_SHORT_URLS:
        raise InputValidationError(f'"{path}" must not be one of meetd\'s own paths: "{text}"')
    return text


def parse_force(text: str | None) -> bool:
    """``?force=``: ``true``/``false`` in any case (the Python SDK sends ``True``/``False``)."""
    if text is None:
        return False
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise InputValidationError('"force" must be a boolean')
    return lowered == "true"


def parse_logo_keys(body: Any) -> list[str]:
    """``{"keys": [...]}`` of ``PUT /themes/{id}/finalizeLogos``: 1 to 3 keys, each a string
    (or ``{"key": ...}``, the shape Vonage's OpenAPI also describes)."""
    body = check.require_object(body, "value")
    if "keys" not in body:
        raise InputValidationError('"keys" is required')
    check.reject_unknown(body, ("keys",))
    items = body["keys"]
    if not isinstance(items, list):
        raise InputValidationError('"keys" must be an array')
    if not items:
        raise InputValidationError('"keys" must contain at least 1 items')
    if len(items) > len(LOGO_TYPES):
        raise InputValidationError(
            f'"keys" must contain less than or equal to {len(LOGO_TYPES)} items'
        )
    keys = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and set(item) == {"key"}:
            item = item["key"]
        keys.append(check.string(item, f"keys[{index}]", max_length=1024))
    if len(set(keys)) != len(keys):
        raise InputValidationError('"keys" must not contain the same key twice')
    return keys


def logo_type_of(key: str) -> str | None:
    """The logo type a temporary upload key names, or None when it names no upload."""
    found = _TEMPORARY_LOGO_KEY.fullmatch(key)
    return found.group(1) if found else None


def permanent_logo_key(temporary_key: str) -> str:
    """Where a finalized logo lives: out of the temporary area, under a fresh name."""
    logo_type = logo_type_of(temporary_key)
    assert logo_type is not None
    return f"logos/{logo_type}/{new_uuid()}.png"


def theme_not_found(theme_id: str) -> NotFoundError:
    return NotFoundError(f"could not find theme {theme_id}")
