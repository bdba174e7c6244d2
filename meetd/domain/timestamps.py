"""Timestamps: integer milliseconds inside meetd, ISO 8601 on the wire.

Responses always read ``2023-01-24T03:20:38.629Z`` (UTC, milliseconds, ``Z``). Requests may
send ISO 8601 in its calendar, week and ordinal dates, basic or extended, with an offset,
``Z``, ``+0000``, or none (then UTC) — the official SDKs send ``2026-12-01T10:00:00.123456``.
"""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

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


# ISO 8601's date and time of day, each in its basic or extended form. Only ASCII digits:
# ``\d`` would take other scripts' digits, which int() reads. A decimal fraction belongs to
# the last component given (``T10.5`` is half past ten, not half a second past ten).
_TIMESTAMP = re.compile(
    r"""
    (?P<year>[0-9]{4})
    (?:
        -(?P<month>[0-9]{2})-(?P<day>[0-9]{2})      # 2026-12-01
      | (?P<basic_month>[0-9]{2})(?P<basic_day>[0-9]{2})  # 20261201
      | -?W(?P<week>[0-9]{2})-?(?P<weekday>[1-7])    # 2026-W49-2, 2026W492
      | -?(?P<day_of_year>[0-9]{3})                  # 2026-335, 2026335
    )
    (?:
        [T\x20]
        (?P<hour>[0-9]{2})
        (?::?(?P<minute>[0-9]{2})(?::?(?P<second>[0-9]{2}))?)?
        (?:[.,](?P<fraction>[0-9]+))?
        \x20?
        (?P<offset>Z|(?P<sign>[-+\u2212])(?P<offset_hours>[0-9]{2})
            (?::?(?P<offset_minutes>[0-9]{2})(?::?(?P<offset_seconds>[0-9]{2}))?)?)?
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def parse_timestamp(text: str) -> int | None:
    """Milliseconds since the epoch, or None when ``text`` is not an ISO 8601 moment from 1970
    to 9999 UTC. Fractions finer than a millisecond are cut, not rounded."""
    if not 4 <= len(text) <= 64:
        return None
    parts = _TIMESTAMP.fullmatch(text)
    if parts is None:
        return None
    day = _day(parts)
    if day is None:
        return None
    hour, minute, second = (int(parts[name] or 0) for name in ("hour", "minute", "second"))
    if hour > 23 or minute > 59 or second > 59:  # no 24:00, no leap seconds
        return None
    ms = (day - _UNIX_EPOCH_ORDINAL) * 86_400_000 + hour * 3_600_000 + minute * 60_000
    ms += second * 1000 + _fraction_ms(parts)
    offset = _offset_ms(parts)
    if offset is None:
        return None
    ms -= offset
    return ms if 0 <= ms < _YEAR_10000 else None


def _day(parts: re.Match[str]) -> int | None:
    """The proleptic ordinal of the date, or None when there is no such day."""
    year = int(parts["year"])
    try:
        if parts["week"]:
            return date.fromisocalendar(year, int(parts["week"]), int(parts["weekday"])).toordinal()
        if parts["day_of_year"]:
            day = date(year, 1, 1) + timedelta(days=int(parts["day_of_year"]) - 1)
            return day.toordinal() if day.year == year and parts["day_of_year"] != "000" else None
        month = parts["month"] or parts["basic_month"]
        return date(year, int(month), int(parts["day"] or parts["basic_day"])).toordinal()
    except (ValueError, OverflowError):
        return None


def _fraction_ms(parts: re.Match[str]) -> int:
    digits = parts["fraction"]
    if not digits:
        return 0
    unit = 1000 if parts["second"] else 60_000 if parts["minute"] else 3_600_000
    scale: int = 10 ** len(digits)
    return int(digits) * unit // scale


def _offset_ms(parts: re.Match[str]) -> int | None:
    """The offset from UTC (0 for ``Z`` or none), or None when it is out of range."""
    if not parts["sign"]:
        return 0
    hours, minutes, seconds = (
        int(parts[name] or 0) for name in ("offset_hours", "offset_minutes", "offset_seconds")
    )
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    ms = hours * 3_600_000 + minutes * 60_000 + seconds * 1000
    return ms if parts["sign"] == "+" else -ms
