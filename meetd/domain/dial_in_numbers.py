"""Rules for the dial-in numbers an operator configures (contract §8).

A number is kept the way Vonage showed them, bare digits of the E.164 form (``541139862166``);
the operator may type it as people write it, ``+54 11 3986-2166``. A locale is a BCP 47 tag
(RFC 5646) such as ``en-GB``, kept in its conventional case.
"""

from __future__ import annotations

import dataclasses
import re

from meetd.errors import InputValidationError

# E.164 (ITU-T): at most 15 digits; a country code and the shortest national numbers need 4.
MIN_DIGITS = 4
MAX_DIGITS = 15
MAX_DISPLAY_NAME = 100

# Digits in groups split by one space or dash, after an optional "+".
_WRITTEN_NUMBER = re.compile(r"\+?[0-9]+(?:[ -][0-9]+)*")
# RFC 5646's language-script-region-variant tags: the part of BCP 47 that names where and what
# people speak. Languages are ISO 639's two or three letters: the syntax's 5-8 letter ones are
# reserved and unassigned, and allowing them would let "English" pass. Extensions and private
# use ("-u-…", "-x-…") say nothing a caller needs here.
_LANGUAGE_TAG = re.compile(
    r"(?P<language>[a-z]{2,3})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)",
    re.IGNORECASE | re.ASCII,  # else [a-z] also matches the long s, Kelvin sign
)


@dataclasses.dataclass(frozen=True, slots=True)
class DialInNumber:
    number: str
    locale: str
    display_name: str


def parse_number(text: str) -> str:
    """The number as bare digits; raises InputValidationError naming what is wrong."""
    written = text.strip()
    if not _WRITTEN_NUMBER.fullmatch(written):
        raise InputValidationError(
            f"not a phone number: {text!r} (digits, optionally a leading + and spaces or dashes)"
        )
    digits = re.sub(r"[^0-9]", "", written)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InputValidationError(
            f"{text!r} has {len(digits)} digits; an E.164 number has {MIN_DIGITS} to {MAX_DIGITS}"
        )
    if digits.startswith("0"):
        raise InputValidationError(
            f"{text!r} starts with 0; write the number in international form, country code first"
        )
    return digits


def parse_locale(text: str) -> str:
    """A BCP 47 tag in its conventional case: ``EN-gb`` becomes ``en-GB``."""
    found = _LANGUAGE_TAG.fullmatch(text.strip())
    if found is None:
        raise InputValidationError(f"not a BCP 47 language tag: {text!r} (e.g. en-GB, es-AR)")
    parts = [found["language"].lower()]
    if found["script"]:
        parts.append(found["script"].title())
    if found["region"]:
        parts.append(found["region"].upper())
    variants = found["variants"].lower()
    return "-".join(parts) + variants


def parse_display_name(text: str) -> str:
    name = text.strip()
    if not 1 <= len(name) <= MAX_DISPLAY_NAME:
        raise InputValidationError(
            f"the display name must be 1 to {MAX_DISPLAY_NAME} characters long"
        )
    if any(ord(character) < 32 or ord(character) == 127 for character in name):
        raise InputValidationError("the display name must not contain control characters")
    return name


def parse_dial_in_number(number: str, locale: str, display_name: str) -> DialInNumber:
    return DialInNumber(
        parse_number(number), parse_locale(locale), parse_display_name(display_name)
    )
