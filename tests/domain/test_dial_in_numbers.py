"""What an operator may type as a dial-in number, locale and display name
(meetd.domain.dial_in_numbers)."""

from __future__ import annotations

import pytest

from meetd.domain.dial_in_numbers import (
    DialInNumber,
    parse_dial_in_number,
    parse_display_name,
    parse_locale,
    parse_number,
)
from meetd.errors import InputValidationError


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("541139862166", "541139862166"),
        ("+54 11 3986-2166", "541139862166"),
        ("+44 23 8192 4626", "442381924626"),
        ("  +1-800-555-0199 ", "18005550199"),
        ("1234", "1234"),
        ("123456789012345", "123456789012345"),
    ],
)
def test_numbers_are_kept_as_bare_digits(written: str, digits: str) -> None:
    assert parse_number(written) == digits


@pytest.mark.parametrize(
    ("written", "phrase"),
    [
        ("", "not a phone number"),
        ("+", "not a phone number"),
        ("++44 1234", "not a phone number"),
        ("44+1234", "not a phone number"),
        ("(020) 7946 0000", "not a phone number"),
        ("44  1234 5678", "not a phone number"),
        ("44 1234-", "not a phone number"),
        ("44.1234.5678", "not a phone number"),
        ("tel:+441234", "not a phone number"),
        ("\uff14\uff14\uff11\uff12\uff13\uff14", "not a phone number"),  # full-width digits
        ("123", "has 3 digits"),
        ("1234567890123456", "has 16 digits"),
        ("+1 234 567 890 123 456", "has 16 digits"),
        ("02079460000", "starts with 0"),
    ],
)
def test_what_is_not_a_number(written: str, phrase: str) -> None:
    with pytest.raises(InputValidationError, match=phrase):
        parse_number(written)


@pytest.mark.parametrize(
    ("tag", "canonical"),
    [
        ("en-GB", "en-GB"),
        ("es-AR", "es-AR"),
        ("EN-gb", "en-GB"),
        ("fr", "fr"),
        ("es-419", "es-419"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("sr-Latn", "sr-Latn"),
        ("de-CH-1996", "de-CH-1996"),
        ("yue-HK", "yue-HK"),
    ],
)
def test_locales_are_bcp_47_tags(tag: str, canonical: str) -> None:
    assert parse_locale(tag) == canonical


@pytest.mark.parametrize(
    "tag", ["", "e", "en_GB", "en-", "english-GB", "en-GBR", "en GB", "12-GB", "en-GB-x", "en-Ü"]
)
def test_what_is_not_a_locale(tag: str) -> None:
    with pytest.raises(InputValidationError, match="not a BCP 47 language tag"):
        parse_locale(tag)


def test_display_names() -> None:
    assert parse_display_name(" United Kingdom ") == "United Kingdom"
    assert parse_display_name("x" * 100) == "x" * 100
    assert parse_display_name("Côte d\u2019Ivoire") == "Côte d\u2019Ivoire"
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(InputValidationError, match="1 to 100 characters"):
            parse_display_name(bad)
    for bad in ("a\nb", "a\x00b", "a\tb"):
        with pytest.raises(InputValidationError, match="control characters"):
            parse_display_name(bad)


def test_an_entry_is_checked_whole() -> None:
    assert parse_dial_in_number("+54 11 3986-2166", "es-ar", "Argentina") == DialInNumber(
        "541139862166", "es-AR", "Argentina"
    )
    with pytest.raises(InputValidationError, match="BCP 47"):
        parse_dial_in_number("541139862166", "Argentina", "es-AR")
