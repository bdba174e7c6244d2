"""Request checks and their messages, in the style Vonage's API used (contract §3: the
message names the field by its dotted path)."""

from __future__ import annotations

from typing import Any

import pytest

from meetd.domain import validation as check
from meetd.domain.lifetime import check_long_term_expiry, describe_seconds
from meetd.domain.rooms import DEFAULT_OPTIONS, FEATURE_DEFAULTS, parse_room_update
from meetd.errors import InputValidationError

NOW = 1_800_000_000_000


def message(call: Any) -> str:
    with pytest.raises(InputValidationError) as caught:
        call()
    return caught.value.message


def test_require_object() -> None:
    assert check.require_object({"a": 1}, "x") == {"a": 1}
    for value in ([], "s", 1, None, True):
        assert message(lambda v=value: check.require_object(v, "x.y")) == (
            '"x.y" must be of type object'
        )


def test_reject_unknown_names_the_first_stranger() -> None:
    check.reject_unknown({"a": 1}, ("a", "b"))
    assert message(lambda: check.reject_unknown({"a": 1, "c": 2}, ("a",))) == '"c" is not allowed'
    assert message(lambda: check.reject_unknown({"z": 1}, ("a",), "outer.")) == (
        '"outer.z" is not allowed'
    )


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (5, {"max_length": 10}, '"f" must be a string'),
        (None, {"max_length": 10}, '"f" must be a string'),
        ("", {"max_length": 10}, '"f" is not allowed to be empty'),
        (
            "ab",
            {"min_length": 3, "max_length": 10},
            '"f" length must be at least 3 characters long',
        ),
        (
            "x" * 11,
            {"max_length": 10},
            '"f" length must be less than or equal to 10 characters long',
        ),
        ("a\x00b", {"max_length": 10}, '"f" must not contain NUL characters'),
    ],
)
def test_string_messages(value: Any, kwargs: dict[str, int], expected: str) -> None:
    assert message(lambda: check.string(value, "f", **kwargs)) == expected


def test_string_accepts_its_limits() -> None:
    assert check.string("x" * 10, "f", max_length=10) == "x" * 10
    assert check.string("é" * 10, "f", max_length=10) == "é" * 10  # characters, not bytes
    assert check.string("", "f", min_length=0, max_length=10) == ""


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("abc", 3),
        ("é", 1),  # in the Basic Multilingual Plane: one UTF-16 unit
        ("日本", 2),
        ("😀", 2),  # U+1F600: a surrogate pair, as JavaScript's "😀".length === 2
        ("a😀é", 4),
        ("\ud83d", 1),  # a lone surrogate counts one, and does not raise
    ],
)
def test_text_length_counts_utf16_code_units(text: str, length: int) -> None:
    assert check.text_length(text) == length


def test_string_limits_count_emoji_twice_as_joi_did() -> None:
    assert check.string("😀" * 5, "f", max_length=10) == "😀" * 5
    assert message(lambda: check.string("😀" * 5 + "x", "f", max_length=10)) == (
        '"f" length must be less than or equal to 10 characters long'
    )
    assert check.string("😀", "f", min_length=2, max_length=10) == "😀"


@pytest.mark.parametrize("value", [0, 1, "true", None, [], "false"])
def test_boolean_refuses_lookalikes(value: Any) -> None:
    assert message(lambda: check.boolean(value, "b")) == '"b" must be a boolean'


def test_boolean_accepts_booleans() -> None:
    assert check.boolean(True, "b") is True
    assert check.boolean(False, "b") is False


@pytest.mark.parametrize("value", ["c", "A", "", None, 1, ["a"]])
def test_one_of_lists_the_choices(value: Any) -> None:
    assert message(lambda: check.one_of(value, "level", ("a", "b"))) == (
        '"level" must be one of [a, b]'
    )
    assert check.one_of("b", "level", ("a", "b")) == "b"


@pytest.mark.parametrize(
    "value",
    [
        "nope",
        "12345678123456781234567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "urn:uuid:12345678-1234-5678-1234-567812345678",
        "12345678-1234-5678-1234-56781234567g",
    ],
)
def test_guid_messages(value: str) -> None:
    assert message(lambda: check.guid(value, "theme_id")) == '"theme_id" must be a valid GUID'


def test_guid_accepts_and_normalises() -> None:
    upper = "A1B2C3D4-0000-4000-8000-00000000000F"
    assert check.guid(upper, "g") == upper.lower()
    assert message(lambda: check.guid(5, "g")) == '"g" must be a string'


@pytest.mark.parametrize("value", ["tomorrow", "", 1_700_000_000, None, "2023-02-30T00:00:00Z"])
def test_timestamp_messages(value: Any) -> None:
    assert message(lambda: check.timestamp(value, "x.expires_at")) == (
        '"x.expires_at" must be a valid date'
    )


def test_timestamp_accepts_iso_8601() -> None:
    assert check.timestamp("2027-01-15T08:00:00Z", "t") == NOW


@pytest.mark.parametrize(
    "value",
    [
        "ftp://x",
        "example.com",
        "https://",
        "http://has space",
        "javascript:alert(1)",
        "//x",
        # What urlsplit refuses with ValueError: a broken IP literal or port.
        "http://[::1",
        "http://]",
        "http://[zz]/",
        "http://127.0.0.1:abc/",
        "http://example.com:-1",
        "http://example.com:99999/",
        "https://example.com:0/",  # a port no server listens on
        "http://127.0.0.1:00",
        # Not a host name by RFC 3986.
        "http://%zz",
        "http://ex%ample.com/",
        "http://user@/x",
        "http://example.com/\n",  # "$" alone would let a trailing newline through
    ],
)
def test_http_url_messages(value: str) -> None:
    assert message(lambda: check.http_url(value, "u")) == (
        '"u" must be a valid uri with a scheme matching the http|https pattern'
    )


def test_http_url_accepts_http_and_https() -> None:
    for url in (
        "http://a.example",
        "https://hooks.example/path?x=1",
        "http://[::1]:8080/hook",
        "http://user:pw@127.0.0.1:65535/",
        "http://127.0.0.1:1/",
        "https://example.com:/",  # an empty port is the scheme's (RFC 3986, 3.2.3)
        "https://xn--bcher-kva.example/%20x",
        "http://my_host.local/",
    ):
        assert check.http_url(url, "u") == url
    too_long = "https://x.example/" + "a" * 2048
    assert message(lambda: check.http_url(too_long, "u")) == (
        '"u" length must be less than or equal to 2048 characters long'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", '"n" must be a number'),
        ("", '"n" must be a number'),
        (" ", '"n" must be a number'),
        (".", '"n" must be a number'),
        ("-", '"n" must be a number'),
        ("e5", '"n" must be a number'),
        ("0x10", '"n" must be a number'),  # Number() takes hex; Joi's conversion does not
        ("Infinity", '"n" must be a number'),
        ("1_0", '"n" must be a number'),
        ("5abc", '"n" must be a number'),
        ("1e", '"n" must be a number'),
        ("++5", '"n" must be a number'),
        ("٣", '"n" must be a number'),  # JavaScript's \d is ASCII only
        ("1.5", '"n" must be an integer'),
        (".5", '"n" must be an integer'),
        ("25e-1", '"n" must be an integer'),
        ("1.0000000000000000000000000000000000001", '"n" must be an integer'),
        ("1e-" + "9" * 5000, '"n" must be an integer'),
        ("-2.5", '"n" must be an integer'),  # Joi checks integer() before min()
        ("0", '"n" must be greater than or equal to 1'),
        ("-7", '"n" must be greater than or equal to 1'),
        ("0.0", '"n" must be greater than or equal to 1'),
        ("-0", '"n" must be greater than or equal to 1'),
        ("101", '"n" must be less than or equal to 100'),
        ("1.01e2", '"n" must be less than or equal to 100'),
        ("1e" + "9" * 5000, '"n" must be less than or equal to 100'),
        ("1e" + "0" * 5000 + "3", '"n" must be less than or equal to 100'),
        ("0" * 5000 + "101", '"n" must be less than or equal to 100'),
        ("9" * 5000, '"n" must be less than or equal to 100'),
        ("-" + "9" * 5000, '"n" must be greater than or equal to 1'),
    ],
)
def test_integer_messages(text: str, expected: str) -> None:
    assert message(lambda: check.integer(text, "n", minimum=1, maximum=100)) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2),
        ("2.0", 2),
        ("2.", 2),
        ("2.000", 2),
        ("+5", 5),
        (" 5", 5),
        ("5\t\n ", 5),
        ("\u00a05\ufeff", 5),  # JavaScript's white space, which Joi trims
        ("007", 7),
        ("1e2", 100),
        ("1E2", 100),
        ("1e+2", 100),
        ("0.5e1", 5),
        ("250e-1", 25),
        ("10000e-2", 100),
        ("0" * 5000 + "42", 42),
        ("42." + "0" * 5000, 42),
    ],
)
def test_integer_takes_what_joi_converts_when_whole(text: str, value: int) -> None:
    """Joi's number() converted any decimal string (sign, fraction, exponent, white space);
    integer() then asked only that the value be whole."""
    assert check.integer(text, "n", minimum=1, maximum=100) == value


def test_integer_limits() -> None:
    assert check.integer("1", "n", minimum=1, maximum=100) == 1
    assert check.integer("100", "n", minimum=1, maximum=100) == 100
    top = check.MAX_SAFE_INTEGER
    assert top == 2**53 - 1
    assert check.integer(str(top), "n", minimum=0) == top
    assert message(lambda: check.integer(str(top + 1), "n", minimum=0)) == (
        f'"n" must be less than or equal to {top}'
    )


def test_flags_merge_onto_the_base() -> None:
    base = {**FEATURE_DEFAULTS, "is_captions_available": True}
    merged = check.flags({"is_chat_available": False}, "f", FEATURE_DEFAULTS, base)
    assert merged == {**base, "is_chat_available": False}
    assert message(lambda: check.flags({"is_chat_available": 1}, "f", FEATURE_DEFAULTS, base)) == (
        '"f.is_chat_available" must be a boolean'
    )
    assert message(lambda: check.flags({"other": True}, "f", FEATURE_DEFAULTS, base)) == (
        '"f.other" is not allowed'
    )
    assert message(lambda: check.flags([], "f", FEATURE_DEFAULTS, base)) == (
        '"f" must be of type object'
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (30, "30 seconds"),
        (60, "1 minute"),
        (90, "90 seconds"),
        (600, "10 minutes"),
        (3600, "60 minutes"),
    ],
)
def test_describe_seconds(seconds: int, text: str) -> None:
    assert describe_seconds(seconds) == text


def test_long_term_lead_is_strict() -> None:
    assert check_long_term_expiry(NOW + 600_001, NOW, 600) == NOW + 600_001
    assert message(lambda: check_long_term_expiry(NOW + 600_000, NOW, 600)) == (
        '"expires_at" must be more than 10 minutes in the future'
    )
    assert message(lambda: check_long_term_expiry(NOW + 60_000, NOW, 60)) == (
        '"expires_at" must be more than 1 minute in the future'
    )
    assert check_long_term_expiry(NOW + 1, NOW, 0) == NOW + 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, '"update_details" is required'),
        ({"update_details": {}}, '"update_details" must have at least 1 key'),
        ({"update_options": {}}, '"update_options" must have at least 1 key'),
        ({"update_details": {"nope": 1}}, '"update_details.nope" is not allowed'),
        ({"update_options": {"nope": 1}}, '"update_options.nope" is not allowed'),
        (
            {"update_details": {"ui_settings": {"language": "fr"}}, "x": 1},
            '"x" is not allowed',
        ),
    ],
)
def test_room_update_messages(body: dict[str, Any], expected: str) -> None:
    assert (
        message(lambda: parse_room_update(body, DEFAULT_OPTIONS, now_ms=NOW, min_lead_seconds=600))
        == expected
    )


def test_room_update_keeps_only_the_keys_named() -> None:
    update = parse_room_update(
        {"update_options": {"ui_settings": {"language": "fr"}, "theme_id": None}},
        DEFAULT_OPTIONS,
        now_ms=NOW,
        min_lead_seconds=600,
    )
    assert update.options == {"ui_settings": {"language": "fr"}}
    assert (update.theme_given, update.theme_id) == (True, None)
    assert (update.expires_at, update.expire_after_use) == (None, None)
