"""Meeting codes: the 9 digits people type or see in a guest link (contract §4).

A code has no leading zero and is unique among *available* rooms; the store enforces the
uniqueness (a partial unique index) and asks for another code on a clash. An expired room's
code may be handed out again.
"""

from __future__ import annotations

import random

LOWEST = 100_000_000
HIGHEST = 999_999_999


def new_meeting_code(rng: random.Random) -> str:
    return str(rng.randint(LOWEST, HIGHEST))
