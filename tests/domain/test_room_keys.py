"""Room ids and meeting codes derived from serials (meetd.domain.room_keys): each a valid
version 4 UUID or 9-digit code, each mapping back to its serial, and keyed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meetd.domain import room_keys
from meetd.domain.room_keys import CODES_PER_EPOCH, MAX_SERIAL, RoomKeys

KEYS = RoomKeys(bytes(range(32)))
serials = st.integers(min_value=1, max_value=MAX_SERIAL)


@given(serials)
def test_an_id_is_a_version_4_uuid_that_gives_back_its_serial(serial: int) -> None:
    room_id = KEYS.room_id(serial)
    parsed = uuid.UUID(room_id)
    assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
    assert str(parsed) == room_id  # canonical: lower case, hyphens in place
    assert KEYS.serial_of_id(room_id) == serial
    assert KEYS.ref(room_id).serial == serial


@given(st.uuids(version=4))
def test_a_random_uuid_is_nobodys_serial(drawn: uuid.UUID) -> None:
    # Decrypted, a random id is a random 122-bit number: one of 63 bits once in 2**59.
    assert KEYS.serial_of_id(str(drawn)) is None
    assert KEYS.ref(str(drawn)).serial is None


@pytest.mark.parametrize("version", [1, 3, 5, 7])
def test_an_id_of_another_uuid_version_is_nobodys_serial(version: int) -> None:
    derived = uuid.UUID(KEYS.room_id(12345))
    other = uuid.UUID(int=derived.int & ~(0xF << 76) | version << 76)
    assert KEYS.serial_of_id(str(other)) is None


@given(serials)
def test_a_code_is_nine_digits_that_give_back_their_serial(serial: int) -> None:
    code = KEYS.meeting_code(serial)
    assert len(code) == 9 and code.isdigit() and code[0] != "0"
    assert KEYS.code_serial(code, serial // CODES_PER_EPOCH) == serial


def test_consecutive_serials_get_distinct_unrelated_looking_codes_and_ids() -> None:
    codes = [KEYS.meeting_code(serial) for serial in range(1, 50_001)]
    ids = [KEYS.room_id(serial) for serial in range(1, 50_001)]
    assert len(set(codes)) == len(codes)
    assert len(set(ids)) == len(ids)
    # Not in the serials' order, and spread over the whole range of codes.
    assert codes != sorted(codes)
    assert int(min(codes)) < 110_000_000 and int(max(codes)) > 990_000_000
    first_digits = {code[0] for code in codes}
    assert first_digits == set("123456789")


def test_an_epoch_has_codes_of_its_own() -> None:
    serial = 777
    assert KEYS.meeting_code(serial) != KEYS.meeting_code(serial + CODES_PER_EPOCH)
    code = KEYS.meeting_code(serial)
    assert KEYS.code_serial(code, 0) == serial
    assert KEYS.code_serial(code, 1) != serial + CODES_PER_EPOCH


def test_another_key_derives_other_ids_and_codes() -> None:
    other = RoomKeys(bytes(range(1, 33)))
    assert other.room_id(1) != KEYS.room_id(1)
    assert other.meeting_code(1) != KEYS.meeting_code(1)
    assert other.serial_of_id(KEYS.room_id(1)) != 1


@pytest.mark.parametrize("serial", [0, -1, MAX_SERIAL + 1])
def test_no_id_for_a_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match="serial out of range"):
        KEYS.room_id(serial)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        RoomKeys(b"short")


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "",
        "not-a-uuid-but-thirty-six-characters",
        "-" * 36,
        "9d64fbb230bbd92a4aa2b410d93c4efbc8d6",  # 36 hex digits: 144 bits (found in review)
        "6b1f0d6c_1d3a-4c2b-9f1e-0123456789ab",
        " 6b1f0d6c-1d3a-4c2b-9f1e-0123456789a",
    ],
)
def test_what_is_no_uuid_is_nobodys_serial(text: str) -> None:
    assert KEYS.serial_of_id(text) is None


def test_an_id_in_upper_case_is_not_the_canonical_one() -> None:
    # Stored ids are lower case, and the API compares them as text (tests/api).
    assert KEYS.serial_of_id(KEYS.room_id(5).upper()) is None


# A database's rooms keep the ids and codes they were given, and are found by decrypting
# their ids: the derivation must never change, whatever is done to make it faster.
_DERIVED_UNDER_KEY_0_TO_31 = [
    (1, "ed6f8efd-5db0-4a05-abd1-8d87816f4b0b", "992857392"),
    (2, "65e07795-762a-4889-9fe6-db98b75c987c", "469920439"),
    (77, "8d2c07c9-5b35-4288-bb5b-2200ee1e8d0e", "711613737"),
    (899999999, "204aad38-83fc-4405-bd82-36f5abe7f46b", "923080883"),
    (900000000, "c78962bc-53fb-4517-bd42-59668809cc9c", "725121125"),
    (1099511627781, "8ba1f83f-36ae-4a09-bd2b-805fff7ffaa2", "547318461"),
    (9223372036854775807, "a6320d71-c1cd-4a19-b259-cd5f81b9ace5", "669314918"),
]


@pytest.mark.parametrize(("serial", "room_id", "code"), _DERIVED_UNDER_KEY_0_TO_31)
def test_the_derivation_never_changes(serial: int, room_id: str, code: str) -> None:
    keys = RoomKeys(bytes(range(32)))
    assert (keys.room_id(serial), keys.meeting_code(serial)) == (room_id, code)
    assert keys.serial_of_id(room_id) == serial
    assert keys.code_serial(code, serial // CODES_PER_EPOCH) == serial


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The code rounds' hashes from here on, one entry each (they still compute)."""
    hashed: list[object] = []
    real_round = room_keys._round

    def counted(*args: Any) -> int:
        hashed.append(args)
        return real_round(*args)

    monkeypatch.setattr(room_keys, "_round", counted)
    return hashed


def test_codes_stay_the_same_once_the_rounds_tables_fill() -> None:
    # A code's rounds are looked up in tables filled as codes are asked for, one set of
    # tables an epoch: the same keys, warm, over several epochs, derive what fresh keys do.
    warm = RoomKeys(bytes(range(32)))
    codes = [warm.meeting_code(serial) for serial in range(1, 30_001)]
    for serial, _, code in _DERIVED_UNDER_KEY_0_TO_31 * 2:  # epochs 0, 1, 1221, 10 248 191 …
        assert warm.meeting_code(serial) == code
        assert warm.code_serial(code, serial // CODES_PER_EPOCH) == serial
    cold = RoomKeys(bytes(range(32)))
    sample = range(1, 30_001, 331)
    assert [cold.meeting_code(serial) for serial in sample] == [codes[s - 1] for s in sample]
    assert [warm.meeting_code(serial) for serial in sample] == [codes[s - 1] for s in sample]


def test_warmed_codes_need_no_hash_and_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    warm = RoomKeys(bytes(range(32)))
    warm.warm_codes(0)
    sample = range(1, 30_001, 997)
    expected = [RoomKeys(bytes(range(32))).meeting_code(serial) for serial in sample]  # cold

    hashed = count_hashes(monkeypatch)
    for serial, _, code in _DERIVED_UNDER_KEY_0_TO_31[:4]:  # the epoch-0 serials
        assert warm.meeting_code(serial) == code
        assert warm.code_serial(code, 0) == serial
    assert [warm.meeting_code(serial) for serial in sample] == expected
    assert not hashed
    warm.meeting_code(CODES_PER_EPOCH + 1)  # another epoch's are not warm
    assert hashed


def test_warming_fills_the_epochs_below_too_as_many_as_keep_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cold = RoomKeys(bytes(range(32)))
    epochs = range(7)
    expected = {e: cold.meeting_code(e * CODES_PER_EPOCH + 777) for e in epochs}
    warm = RoomKeys(bytes(range(32)))
    warm.warm_codes(5)  # 5, 4, 3 and 2
    hashed = count_hashes(monkeypatch)
    for epoch in (5, 4, 3, 2):
        assert warm.meeting_code(epoch * CODES_PER_EPOCH + 777) == expected[epoch]
    assert not hashed
    # Epochs beyond the four are hashed each time, and right, and take no epoch's tables.
    for _ in range(2):
        for epoch in (0, 1, 6):
            code = warm.meeting_code(epoch * CODES_PER_EPOCH + 777)
            assert code == expected[epoch]
            assert warm.code_serial(code, epoch) == epoch * CODES_PER_EPOCH + 777
    assert len(hashed) >= 2 * 3 * 2 * 8
    hashed.clear()
    assert warm.meeting_code(2 * CODES_PER_EPOCH + 777) == expected[2]
    assert not hashed


@pytest.mark.parametrize("code", ["099999999", "1000000000", "-1"])
def test_a_code_out_of_range_has_no_serial(code: str) -> None:
    for keys in (RoomKeys(bytes(range(32))), KEYS):
        with pytest.raises(ValueError, match="no meeting code"):
            keys.code_serial(code, 0)
