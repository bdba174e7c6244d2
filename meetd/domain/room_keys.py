"""A room's id and meeting code, derived from its serial by keyed permutations.

A room's id is a version 4 UUID and its meeting code 9 digits, and both must look random
(contract §1, §4): nobody should learn from one room's id or code anything about another's.
Drawn at random, each needed a unique index, and each new room landed on a random page of
both: with a million rooms, most of a create's store work (docs/performance.md, the twelfth
session). Here both are *encryptions of the serial* under a key of the database's own:

- the id is the serial's 122-bit block through a Feistel network (4 rounds, keyed BLAKE2b as
  the round function), written into a UUID's 122 free bits. Decrypting an id gives back the
  serial, so a room is found by its primary key, and no index on ids is needed. A block that
  decrypts to a number of more than 63 bits is no id of this scheme (a room from before it,
  or nobody's);
- the meeting code is the serial's place in its *epoch* of 900 000 000 serials through a
  permutation of the 900 000 000 codes (a Feistel network on 30 bits, 8 rounds, walking the
  cycle until the result is in range), tweaked by the epoch. A round's function takes one of
  only 2**15 halves, so each round's values are kept in a table as they are computed: a warm
  code costs lookups, not hashes (1.5 µs against 9.6). Within an epoch two rooms never
  share a code; across epochs they may, and the writer skips a serial whose code a live room
  of another epoch holds (:mod:`meetd.store.rooms`).

Without the key, ids and codes are indistinguishable from random ones; with it (it lives in
the database, so every process sharing it agrees), each maps back to its serial.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
from typing import TypeAlias

from meetd.domain.meeting_codes import HIGHEST, LOWEST
from meetd.domain.randomness import uuid_text
from meetd.domain.validation import is_canonical_uuid

CODES_PER_EPOCH = HIGHEST - LOWEST + 1  # 900 000 000
MAX_SERIAL = 2**63 - 1

_ID_HALF_BITS = 61  # a UUID has 122 free bits: two halves of 61
_ID_HALF_MASK = (1 << _ID_HALF_BITS) - 1
_ID_ROUNDS = 4
_CODE_HALF_BITS = 15  # 2**30 >= 900 000 000
_CODE_HALF_MASK = (1 << _CODE_HALF_BITS) - 1
_CODE_ROUNDS = 8
# Each code round's values, as computed: 2**15 of 2 bytes a round, 512 KiB an epoch; -1 for
# a value not computed yet.
_UNKNOWN = -1
_CODE_TABLE_EPOCHS = 4  # epochs with tables: a database holds rooms of one or two


@dataclasses.dataclass(frozen=True, slots=True)
class RoomRef:
    """A room as a request names it: its id, and its serial when the id is one of ours."""

    id: str
    serial: int | None  # None: drawn at random before derived ids (schema version 4)


class RoomKeys:
    """The permutations of one database, keyed by its ``room_keys`` secret."""

    __slots__ = ("_code_keys", "_code_tables", "_id_keys")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a room key needs at least 16 bytes")

        def round_keys(purpose: bytes, rounds: int) -> list[hashlib.blake2b]:
            return [
                hashlib.blake2b(key=secret[:64], person=purpose, salt=bytes([n]), digest_size=8)
                for n in range(rounds)
            ]

        self._id_keys = round_keys(b"meetd-room-id", _ID_ROUNDS)
        self._code_keys = round_keys(b"meetd-code", _CODE_ROUNDS)
        self._code_tables: dict[int, list[tuple[hashlib.blake2b, _Table]]] = {}

    # -- ids ---------------------------------------------------------------------------------
    def room_id(self, serial: int) -> str:
        """The id of the room with this serial: a version 4 UUID, lower case."""
        if not 0 < serial <= MAX_SERIAL:
            raise ValueError(f"serial out of range: {serial}")
        left, right = serial >> _ID_HALF_BITS, serial & _ID_HALF_MASK
        for keyed in self._id_keys:
            left, right = right, left ^ _round(keyed, right, _ID_HALF_MASK)
        bits = (left << _ID_HALF_BITS) | right
        # 122 bits around the version (4 bits, after 48) and the variant (2, after 64).
        value = (
            (bits >> 74) << 80
            | 0x4 << 76
            | ((bits >> 62) & 0xFFF) << 64
            | 0b10 << 62
            | (bits & ((1 << 62) - 1))
        )
        return uuid_text(f"{value:032x}")

    def serial_of_id(self, room_id: str) -> int | None:
        """The serial whose id this is, or None when no serial's id is this (a room's from
        before derived ids, or nobody's, or no UUID at all)."""
        if not is_canonical_uuid(room_id):
            return None
        value = int(room_id.replace("-", ""), 16)
        if (value >> 76) & 0xF != 4 or (value >> 62) & 0b11 != 0b10:
            return None
        bits = (value >> 80) << 74 | ((value >> 64) & 0xFFF) << 62 | (value & ((1 << 62) - 1))
        left, right = bits >> _ID_HALF_BITS, bits & _ID_HALF_MASK
        for keyed in reversed(self._id_keys):
            left, right = right ^ _round(keyed, left, _ID_HALF_MASK), left
        serial = (left << _ID_HALF_BITS) | right
        return serial if 0 < serial <= MAX_SERIAL else None

    def ref(self, room_id: str) -> RoomRef:
        return RoomRef(room_id, self.serial_of_id(room_id))

    # -- meeting codes -------------------------------------------------------------------------
    def meeting_code(self, serial: int) -> str:
        """The meeting code of the room with this serial: 9 digits, no leading zero."""
        epoch, place = divmod(serial, CODES_PER_EPOCH)
        return str(LOWEST + self._code_step(place, epoch, encrypt=True))

    def code_serial(self, code: str, epoch: int) -> int:
        """The serial of ``epoch`` whose meeting code is ``code`` (the inverse of
        :meth:`meeting_code` within an epoch)."""
        value = int(code) - LOWEST
        if not 0 <= value < CODES_PER_EPOCH:
            raise ValueError(f"no meeting code: {code!r}")
        return epoch * CODES_PER_EPOCH + self._code_step(value, epoch, encrypt=False)

    def _code_step(self, value: int, epoch: int, *, encrypt: bool) -> int:
        # Walking the cycle: the permutation of 2**30 values, applied again while the result
        # is out of range, is a permutation of the range.
        tweak = epoch.to_bytes(8, "big")
        rounds = self._code_rounds(epoch)
        while True:
            left, right = value >> _CODE_HALF_BITS, value & _CODE_HALF_MASK
            if encrypt:
                for keyed, table in rounds:
                    if (mixed := table[right]) == _UNKNOWN:
                        mixed = table[right] = _round(keyed, right, _CODE_HALF_MASK, tweak)
                    left, right = right, left ^ mixed
            else:
                for keyed, table in reversed(rounds):
                    if (mixed := table[left]) == _UNKNOWN:
                        mixed = table[left] = _round(keyed, left, _CODE_HALF_MASK, tweak)
                    left, right = right ^ mixed, left
            value = (left << _CODE_HALF_BITS) | right
            if value < CODES_PER_EPOCH:
                return value

    def warm_codes(self, top_epoch: int) -> None:
        """Fill the tables of ``top_epoch`` and of the epochs just below it (as many as keep
        tables) whole, 0.2 to 0.5 s of CPU each: left to fill as codes are asked for, they
        take some hundred thousand codes to fill, each missing value a hash on a create's
        path. The epochs below count when a new room's code is checked against rooms of
        other epochs. ``meetd serve`` runs this in a thread of its own at startup."""
        for epoch in range(top_epoch, max(top_epoch - _CODE_TABLE_EPOCHS, -1), -1):
            tweak = epoch.to_bytes(8, "big")
            for keyed, table in self._code_rounds(epoch):
                if table is _NO_TABLE:  # other epochs took the tables first
                    return
                for half in range(_CODE_HALF_MASK + 1):
                    if table[half] == _UNKNOWN:
                        table[half] = _round(keyed, half, _CODE_HALF_MASK, tweak)

    def _code_rounds(self, epoch: int) -> list[tuple[hashlib.blake2b, _Table]]:
        """Each code round's key beside its table for ``epoch``. The first epochs asked for
        keep their tables for good; another one's codes are hashed every time, as a table
        made and dropped each time would cost more. Threads may fill the same entry at
        once, with the same value."""
        rounds = self._code_tables.get(epoch)
        if rounds is None:
            if len(self._code_tables) >= _CODE_TABLE_EPOCHS:
                return [(keyed, _NO_TABLE) for keyed in self._code_keys]
            unknown = array.array("h", [_UNKNOWN]) * (_CODE_HALF_MASK + 1)
            made: list[tuple[hashlib.blake2b, _Table]] = [
                (keyed, array.array("h", unknown)) for keyed in self._code_keys
            ]
            rounds = self._code_tables.setdefault(epoch, made)
        return rounds


class _NoTable:
    """A code round's table that keeps nothing: every value is computed."""

    def __getitem__(self, half: int) -> int:
        return _UNKNOWN

    def __setitem__(self, half: int, value: int) -> None:
        pass


_NO_TABLE = _NoTable()
_Table: TypeAlias = "array.array[int] | _NoTable"


def _round(keyed: hashlib.blake2b, half: int, mask: int, tweak: bytes = b"") -> int:
    h = keyed.copy()
    h.update(tweak + half.to_bytes(8, "big"))
    return int.from_bytes(h.digest(), "big") & mask
