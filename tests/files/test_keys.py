"""File keys: one narrow shape, so no key ever names a path outside the store."""

from __future__ import annotations

import pytest

from meetd.files.keys import MAX_KEY_LENGTH, MAX_SEGMENT_LENGTH, check_key, is_valid_key

# Two segments as long as a segment may be, then what the key's length leaves.
LONGEST_KEY = "/".join(
    ["a" * MAX_SEGMENT_LENGTH] * 2 + ["b" * (MAX_KEY_LENGTH - 2 * MAX_SEGMENT_LENGTH - 2)]
)


@pytest.mark.parametrize(
    "key",
    [
        "auto-expiring-temp/logos/white/d92b31ae-fbf1-4709-a729-c0fa75368c25",
        "logos/favicon/0f3c.png",
        "recordings/r_1~2.mp4",
        "a",
        LONGEST_KEY,
    ],
)
def test_valid_keys(key: str) -> None:
    assert is_valid_key(key)
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/logos/a",
        "logos/a/",
        "logos//a",
        "..",
        "logos/../../secret_key",
        "logos/./a",
        ".hidden",
        "logos/.a.tmp",
        "logos\\a",
        "logos/a b",
        "logos/%2e%2e",
        "logos/é",
        "logos/a\x00",
        "logos/a\n",
        LONGEST_KEY + "c",
        "a" * (MAX_SEGMENT_LENGTH + 1),
        "logos/" + "a" * 300,
    ],
)
def test_invalid_keys(key: str) -> None:
    assert not is_valid_key(key)
    with pytest.raises(ValueError, match="not a valid file key"):
        check_key(key)
