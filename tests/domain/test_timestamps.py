"""Timestamps (contract §1): milliseconds inside, ``2023-01-24T03:20:38.629Z`` out, any ISO
8601 form with an offset, ``Z`` or none (UTC) in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetd.domain.timestamps import format_timestamp, parse_timestamp

GUIDE_MS = 1_674_530_438_629  # 2023-01-24T03:20:38.629Z, a room's created_at in the guide
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last four-digit-year moment


def reference(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (GUIDE_MS, "2023-01-24T03:20:38.629Z"),
        (1_800_000_000_000, "2027-01-15T08:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (86_400_000, "1970-01-02T00:00:00.000Z"),
        (LAST_MS, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format(ms: int, text: str) -> None:
    assert format_timestamp(ms) == text
    assert format_timestamp(ms) == text  # a second time, from whatever it remembered


@given(st.integers(0, LAST_MS))
def test_format_matches_the_calendar(ms: int) -> None:
    assert format_timestamp(ms) == reference(ms)


@given(st.integers(0, LAST_MS))
def test_round_trip(ms: int) -> None:
    assert parse_timestamp(format_timestamp(ms)) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2023-01-24T03:20:38.629Z", GUIDE_MS),
        ("2023-01-24T03:20:38.629+00:00", GUIDE_MS),
        ("2023-01-24T03:20:38.629+0000", GUIDE_MS),  # the Python SDK's strftime %z
        ("2023-01-24T03:20:38.629", GUIDE_MS),  # no offset: UTC
        ("2023-01-24T03:20:38.629123", GUIDE_MS),  # microseconds, as the SDK sends them
        ("2023-01-24T03:20:38.629999", GUIDE_MS),  # truncated to the millisecond, not rounded
        ("2023-01-24T03:20:38.6Z", GUIDE_MS - 29),
        ("2023-01-24T03:20:38Z", GUIDE_MS - 629),
        ("2023-01-24T05:20:38.629+02:00", GUIDE_MS),
        ("2023-01-24T08:50:38.629+05:30", GUIDE_MS),
        ("2023-01-23T22:20:38.629-05:00", GUIDE_MS),
        ("2023-01-23T22:20:38.629-0500", GUIDE_MS),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", LAST_MS),
        ("9999-12-31T23:59:59.999+01:00", LAST_MS - 3_600_000),
    ],
)
def test_parse(text: str, ms: int) -> None:
    assert parse_timestamp(text) == ms


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "now",
        "2023",
        "2023-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2023-01-24T25:00:00Z",
        "2023-01-24T03:61:00Z",
        "2023-01-24T03:20:38.629+25:00",
        "24/01/2023 03:20",
        "1674530438629",
        "1969-12-31T23:59:59.999Z",  # before the epoch
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # past 9999 in UTC
        " 2023-01-24T03:20:38Z",
        "2023-01-24T03:20:38Z\n",
        "2023-01-24T03:20:38.629Z" + "0" * 60,
        "x" * 10_000,
    ],
)
def test_invalid_strings_are_none(text: str) -> None:
    assert parse_timestamp(text) is None


DAY_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z
TEN = DAY_MS + 36_000_000  # 10:00 that day


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-12-01", DAY_MS),
        ("20261201", DAY_MS),
        ("2026-12-01T10", TEN),
        ("2026-12-01t10:00z", TEN),
        ("20261201T100000Z", TEN),
        ("20261201T153000+0530", TEN),
        ("2026-W49-2T10:00Z", TEN),  # ISO week 49 of 2026, its Tuesday
        ("2026W492T10Z", TEN),
        ("2026-335T10:00Z", TEN),  # the 335th day of 2026
        ("2026335", DAY_MS),
        ("2024-366", 1_735_603_200_000),  # 2024-12-31, a leap year's last day
        ("2026-12-01T10:00:00,5Z", TEN + 500),
        ("2026-12-01T10.5Z", TEN + 1_800_000),  # a fraction of the hour: 10:30
        ("2026-12-01T10,25Z", TEN + 900_000),
        ("2026-12-01T10:30.5Z", TEN + 1_830_000),  # a fraction of the minute: 10:30:30
        ("2026-12-01T1030.5Z", TEN + 1_830_000),
        ("2026-12-01T10.0000001Z", TEN),  # 0.36 ms past ten, cut to the millisecond
        ("2026-12-01 10:00:00Z", TEN),
        ("2026-12-01T10:00:00 +0000", TEN),
        ("2026-12-01T15:30:15+05:30:15", TEN),
        ("2026-12-01T05:00:00\u221205:00", TEN),  # ISO 8601's own minus sign
        ("2026-12-01T10:00:00.123456789Z", TEN + 123),
    ],
)
def test_other_iso_8601_forms(text: str, ms: int) -> None:
    """The forms docs/api.md lists besides the usual one."""
    assert parse_timestamp(text) == ms


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T24:00:00Z",  # the end of a day: not a moment meetd takes
        "2026-12-31T23:59:60Z",  # leap seconds
        "2026-366",  # 2026 has 365 days
        "2026-000",
        "2026-W54-1",
        "2026-W49-8",
        "2026-12-01X10:00:00Z",  # only T or a space between date and time
        "2026-12-01T10:00:00XZ",
        "2026-12-01T10:00:00\x00Z",
        "2026-12-01T10:00:00.Z",  # a fraction needs a digit
        "2026-12-01T10:00:00.5.5Z",
        "2026-12-01Z",  # an offset needs a time
        "2026-12-01T10:00:00+24:00",
        "2026-12-01T10:00:00+05:60",
        "\u0662\u0660\u0662\u0666-12-01",  # Arabic-Indic digits
        "2026-12-01T10:00:00.123456789012345678901234567890123456789012345Z",  # over 64
    ],
)
def test_refused_forms(text: str) -> None:
    assert parse_timestamp(text) is None


@given(
    st.integers(0, LAST_MS - 86_400_000),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.booleans(),
)
def test_an_offset_moves_the_moment_by_itself(ms: int, minutes: int, basic: bool) -> None:
    """The same moment written in another zone, as Python's own datetime writes it."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    offset = local.strftime("%z")  # +0530 (Python 3.11 has no %:z)
    if basic:
        text = local.strftime("%Y%m%dT%H%M%S.%f") + offset
    else:
        text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset[:3] + ":" + offset[3:]
    assert parse_timestamp(text) == ms


@given(st.text(max_size=80))
def test_parse_never_raises(text: str) -> None:
    ms = parse_timestamp(text)
    assert ms is None or 0 <= ms <= LAST_MS
