"""Timestamps: integer milliseconds inside meetd, ISO 8601 on the wire.

Responses always read ``2023-01-24T03:20:38.629Z`` (UTC, milliseconds, ``Z``). Requests may
send any ISO 8601 form, with an offset, ``Z``, ``+0000``, or none (then UTC), and any number
of fractional digits — the official SDKs send ``2026-12-01T10:00:00.123456``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
# Responses print four-digit years; a moment past 9999 UTC has no such form.
_YEAR_10000 = 253_402_300_800_000


def format_timestamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def parse_timestamp(text: str) -> int | None:
    """Milliseconds since the epoch, or None when ``text`` is not an ISO 8601 moment."""
    if not 8 <= len(text) <= 64:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ms = (moment - _EPOCH) // _MILLISECOND
    except OverflowError:
        return None
    return ms if 0 <= ms < _YEAR_10000 else None
