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
    # Lists print two timestamps a room; the calendar date is the slow part, so it is
    # worked out once per day and the time of day by arithmetic.
    days, ms_of_day = divmod(ms, 86_400_000)
    date = _dates.get(days)
    if date is None:
        if len(_dates) > 4096:
            _dates.clear()
        date = _dates[days] = time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


_dates: dict[int, str] = {}


def parse_timestamp(text: str) -> int | None:
    """Milliseconds since the epoch, or None when ``text`` is not an ISO 8601 moment."""
    if not 8 <= len(text) <= 64:
        return None
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ms = (moment - _EPOCH) // _MILLISECOND
    except OverflowError:
        return None
    return ms if 0 <= ms < _YEAR_10000 else None
