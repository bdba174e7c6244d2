"""When rooms stop being available (contract §4, Lifetime).

- An *instant* room lives ``instant_room_ttl`` (10 minutes) from creation. While people are in
  it, it does not expire; when the last one leaves, its clock restarts from that moment. The
  room row carries ``participant_count`` for this: the realtime service raises it on join and,
  on the last leave, lowers it to 0 and sets ``expires_at = now + ttl`` in the same
  transaction (see :func:`expires_after_last_leave`). The sweeper never expires an instant
  room whose count is above 0.
- A *long-term* room lives until its ``expires_at``, whoever is inside; with
  ``expire_after_use`` it also ends when its first session ends.
- Expiry is a state change made once, by the sweeper (``meetd.lifetime``), never a lazy check
  on read: ``is_available`` turns false exactly when ``expires_at`` passes.
"""

from __future__ import annotations

from meetd.errors import InputValidationError


def instant_expires_at(now_ms: int, ttl_seconds: int) -> int:
    return now_ms + ttl_seconds * 1000


def expires_after_last_leave(left_at_ms: int, ttl_seconds: int) -> int:
    """An instant room's new ``expires_at`` once the last participant has left."""
    return left_at_ms + ttl_seconds * 1000


def check_long_term_expiry(
    expires_at_ms: int, now_ms: int, min_lead_seconds: int, path: str = "expires_at"
) -> int:
    """A long-term room's ``expires_at`` must lie more than the minimum lead ahead."""
    if expires_at_ms <= now_ms + min_lead_seconds * 1000:
        raise InputValidationError(
            f'"{path}" must be more than {describe_seconds(min_lead_seconds)} in the future'
        )
    return expires_at_ms


def describe_seconds(seconds: int) -> str:
    if seconds and seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"
