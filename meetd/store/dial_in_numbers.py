"""The dial-in numbers table: the server's list, the same for every application (contract §8).

Functions take a :class:`~meetd.store.database.Connection` inside the right transaction.
"""

from __future__ import annotations

from meetd.domain.dial_in_numbers import DialInNumber
from meetd.errors import ConflictError, NotFoundError
from meetd.store.database import Connection, Reader


async def list_dial_in_numbers(conn: Reader) -> list[DialInNumber]:
    """Every number, in the order they were added."""
    rows = await conn.rows(
        "SELECT number, locale, display_name FROM dial_in_numbers ORDER BY created_at, number"
    )
    return [DialInNumber(*row) for row in rows]


def add_dial_in_number(conn: Connection, entry: DialInNumber, *, now_ms: int) -> DialInNumber:
    """Add a number; ConflictError when it is there already."""
    # created_at orders the list: a number added within the same millisecond as the last one
    # (or after the clock stepped back) still comes after it.
    latest = conn.fetchone("SELECT MAX(created_at) FROM dial_in_numbers")[0]
    created_at = now_ms if latest is None else max(now_ms, int(latest) + 1)
    row = conn.fetchone(
        "INSERT INTO dial_in_numbers (number, locale, display_name, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING number",
        (entry.number, entry.locale, entry.display_name, created_at),
    )
    if row is None:
        raise ConflictError(f"dial-in number {entry.number} already exists")
    return entry


def remove_dial_in_number(conn: Connection, number: str) -> DialInNumber:
    """Remove a number; return what it was. NotFoundError when there is no such number."""
    row = conn.fetchone(
        "DELETE FROM dial_in_numbers WHERE number = ? RETURNING number, locale, display_name",
        (number,),
    )
    if row is None:
        raise NotFoundError(f"no dial-in number {number}")
    return DialInNumber(*row)
