"""Meeting codes: the 9 digits people type or see in a guest link (contract §4).

A code has no leading zero and is unique among *available* rooms. Codes are not drawn: each
is the room's serial through a keyed permutation of this range (:mod:`meetd.domain.room_keys`).
"""

from __future__ import annotations

LOWEST = 100_000_000
HIGHEST = 999_999_999
