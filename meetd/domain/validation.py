"""Checks of request values, with messages in the style the Vonage API used (Joi's).

Each check returns the clean value or raises InputValidationError naming the field by its
dotted path, e.g. ``"recording_options.auto_record" must be a boolean``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from meetd.domain.timestamps import parse_timestamp
from meetd.errors import InputValidationError

# An absolute http(s) URL of printable characters that need no escaping (RFC 3986).
_HTTP_URL = re.compile(r"^https?://[^\s<>\"{}|\\^`\x00-\x1f\x7f]+$", re.IGNORECASE)
# What Joi's number() converts from a string (joi/lib/types/number.js, numberRx, v16 on; the
# "must have at least 1 key" message dates Vonage's Joi to v16 or later): optional white
# space and sign, digits with an optional fraction or a fraction alone, an optional exponent.
# Not JavaScript's Number(): "0x10", "Infinity" and "" are not numbers to Joi. The white
# space is JavaScript's \s, spelled out (Python's differs at the edges).
_JS_SPACE = "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*"
_NUMBER = re.compile(f"{_JS_SPACE}([+-]?)([0-9]*)(?:\\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?{_JS_SPACE}")
# A host name as RFC 3986 spells a reg-name: unreserved and sub-delim characters, or
# percent-escapes. IP literals in brackets are checked by urlsplit itself.
_HOST_NAME = re.compile(r"(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})+", re.IGNORECASE)


def fail(message: str) -> InputValidationError:
    return InputValidationError(message)


def require_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f'"{path}" must be of type object')
    return value


def reject_unknown(value: Mapping[str, Any], allowed: Collection[str], prefix: str = "") -> None:
    for key in value:
        if key not in allowed:
            raise fail(f'"{prefix}{key}" is not allowed')


def update_details(body: Any, allowed: Collection[str]) -> dict[str, Any]:
    """The details of a ``{"update_details": {...}}`` body: at least one key, each allowed."""
    body = require_object(body, "value")
    if "update_details" not in body:
        raise fail('"update_details" is required')
    reject_unknown(body, ("update_details",))
    details = require_object(body["update_details"], "update_details")
    if not details:
        raise fail('"update_details" must have at least 1 key')
    reject_unknown(details, allowed, "update_details.")
    return details


def text_length(text: str) -> int:
    """The length of ``text`` as JavaScript counts it, in UTF-16 code units: Vonage's limits
    were Joi's, so a character beyond U+FFFF (most emoji) counts two, and 101 emoji are too
    many for a limit of 200."""
    if text.isascii():  # nearly every request: no encoding on the hot path
        return len(text)
    # surrogatepass: a lone surrogate is one unit, as in JavaScript (msgspec refuses them in
    # JSON today, but a count must not raise).
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def string(value: Any, path: str, *, min_length: int = 1, max_length: int) -> str:
    """A string whose length, counted as :func:`text_length` counts, lies within the limits."""
    if not isinstance(value, str):
        raise fail(f'"{path}" must be a string')
    if "\x00" in value:  # PostgreSQL's text cannot hold NUL, so neither does meetd
        raise fail(f'"{path}" must not contain NUL characters')
    length = text_length(value)
    if length < min_length:
        if value == "":
            raise fail(f'"{path}" is not allowed to be empty')
        raise fail(f'"{path}" length must be at least {min_length} characters long')
    if length > max_length:
        raise fail(f'"{path}" length must be less than or equal to {max_length} characters long')
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise fail(f'"{path}" must be a boolean')
    return value


def one_of(value: Any, path: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(f'"{path}" must be one of [{", ".join(choices)}]')
    return value


def canonical_uuid(text: str) -> str | None:
    """``text`` as a lower-case hyphenated UUID, or None when it is not one in that form."""
    if len(text) != 36:
        return None
    if is_canonical_uuid(text):  # what every client sends back: ours, unchanged (no parsing)
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


# Whether text is a UUID already in its canonical form: lower-case hex, hyphenated.
is_canonical_uuid = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
).fullmatch


def guid(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise fail(f'"{path}" must be a string')
    found = canonical_uuid(value)
    if found is None:
        raise fail(f'"{path}" must be a valid GUID')
    return found


def choice_object(
    value: Any, path: str, key: str, choices: Collection[str], base: Mapping[str, str]
) -> dict[str, str]:
    """An object of one enumerated key, e.g. ``{"language": "es"}``; left out keeps ``base``."""
    given = require_object(value, path)
    reject_unknown(given, (key,), f"{path}.")
    return {key: one_of(given.get(key, base[key]), f"{path}.{key}", choices)}


def timestamp(value: Any, path: str) -> int:
    ms = parse_timestamp(value) if isinstance(value, str) else None
    if ms is None:
        raise fail(f'"{path}" must be a valid date')
    return ms


def http_url(value: Any, path: str) -> str:
    url = string(value, path, max_length=2048)
    if not _is_http_url(url):
        raise fail(f'"{path}" must be a valid uri with a scheme matching the http|https pattern')
    return url


def _is_http_url(url: str) -> bool:
    """An http(s) URL that a callback could be sent to: a host, and a port if any from 1 to
    65535. urlsplit raises ValueError for a broken IP literal (``http://[::1``) or port
    (``:abc``, ``:-1``, ``:99999``), which is the caller's mistake, not the server's."""
    if not _HTTP_URL.fullmatch(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return False
    if not host or port == 0:  # no server listens on port 0: no callback could arrive
        return False
    return parts.netloc.rpartition("@")[2].startswith("[") or bool(_HOST_NAME.fullmatch(host))


# The largest integer JSON clients handle exactly (2**53 - 1); also fits every BIGINT.
MAX_SAFE_INTEGER = 9_007_199_254_740_991


# Past this many digits a number is beyond any limit here; int() refuses a few thousand.
_MAX_DIGITS = 30


def integer(text: str, path: str, *, minimum: int, maximum: int = MAX_SAFE_INTEGER) -> int:
    """An integer from a query string, read as Vonage's Joi ``number().integer()`` read one:
    any decimal number Joi converts (``2.0``, ``+5``, ``1e2``, `` 5 ``) whose value is whole;
    ``2.5`` must be an integer, ``abc`` must be a number. The value is read exactly, not as
    a JavaScript double."""
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        number = int(text)  # nearly every request: plain digits
    else:
        number = _decimal_integer(text, path)
    if number < minimum:
        raise fail(f'"{path}" must be greater than or equal to {minimum}')
    if number > maximum:
        raise fail(f'"{path}" must be less than or equal to {maximum}')
    return number


def _decimal_integer(text: str, path: str) -> int:
    """The whole number a decimal string names, capped at ±10**30 (beyond every limit), or
    the error Joi gave: not a number, or not an integer. Digits are counted before any
    int(), so a long string costs no more than its length."""
    found = _NUMBER.fullmatch(text)
    if found is None or not (found.group(2) or found.group(3)):  # Joi's pattern needs a digit
        raise fail(f'"{path}" must be a number')
    sign, whole, fraction, exponent = found.group(1, 2, 3, 4)
    fraction = fraction or ""
    digits = (whole + fraction).lstrip("0")
    significant = digits.rstrip("0")
    if not significant:
        return 0
    # The value is significant * 10**scale.
    scale = len(digits) - len(significant) - len(fraction)
    if exponent:
        power = exponent.lstrip("+-").lstrip("0") or "0"
        if len(power) > _MAX_DIGITS:
            power = str(10**_MAX_DIGITS)
        scale += -int(power) if exponent.startswith("-") else int(power)
    if scale < 0:
        raise fail(f'"{path}" must be an integer')
    magnitude: int = 10**_MAX_DIGITS
    if len(significant) + scale <= _MAX_DIGITS:
        magnitude = int(significant) * 10**scale
    return -magnitude if sign == "-" else magnitude


def flags(
    value: Any, path: str, defaults: Mapping[str, bool], base: Mapping[str, bool]
) -> dict[str, bool]:
    """A nested object of booleans; keys left out keep ``base`` (defaults on create)."""
    given = require_object(value, path)
    reject_unknown(given, defaults, f"{path}.")
    result = {key: base.get(key, default) for key, default in defaults.items()}
    for key, item in given.items():
        result[key] = boolean(item, f"{path}.{key}")
    return result
