"""Pages by serial number (contract §4, List), for rooms and for the callback log alike.

A page is the rows of a selection from ``start_id`` on, or the last ones before ``end_id``,
walked on an index that ends in the serial. Whether rows lie before and after the page is
asked as the *nearest* one each way (``ORDER BY … LIMIT 1``), never ``EXISTS``: PostgreSQL
may answer an ``EXISTS`` by scanning the whole selection (97 ms for a first page of 300 000
rooms against 0.6 ms), while the nearest row is one step along the index from the bound.

:func:`page` answers all of it. SQLite asks the page, then its neighbours and total
(:func:`_page_rows`, :func:`_edges`); PostgreSQL asks everything in one statement, the page
with one row more telling whether a page follows.
"""

from __future__ import annotations

from typing import Any

from meetd.store.database import Reader

Page = tuple[list[tuple[Any, ...]], bool, bool, int]  # rows, has_prev, has_next, total


async def page(
    conn: Reader,
    *,
    select: str,
    source: str,
    column: str,
    where: str,
    params: list[Any],
    start_id: int | None,
    end_id: int | None,
    page_size: int,
    total: tuple[str, list[Any]],
) -> Page:
    """A page (:func:`_page_rows`), whether rows lie before and after it, and the total
    (:func:`_edges`). SQLite asks the two; it reads inline, in microseconds.

    PostgreSQL asks everything in one statement: each query costs the event loop as much in
    asyncpg as the rest of the list's work. The page is asked for one row more, which tells
    whether rows lie beyond it on its walking side; the other side is a bound known before
    the page: rows before ``start_id``, or at or after ``end_id``. An empty page still
    answers one row (the LEFT JOIN), its page columns NULL.
    """
    if conn.dialect != "postgresql":
        rows = await _page_rows(
            conn,
            select=select,
            column=column,
            where=where,
            params=params,
            start_id=start_id,
            end_id=end_id,
            page_size=page_size,
        )
        has_prev, has_next, count = await _edges(
            conn,
            source=source,
            column=column,
            where=where,
            params=params,
            page=[row[0] for row in rows],
            start_id=start_id,
            end_id=end_id,
            total=total,
        )
        return rows, has_prev, has_next, count
    condition, values = _within(column, where, params, start_id, end_id)
    backwards = start_id is None and end_id is not None

    selection = (source, column, where, params)
    before = ("NULL", []) if backwards else _nearest(*selection, "<", start_id)
    beyond = _nearest(*selection, ">=", end_id)
    total_sql, total_params = total
    answer = await conn.rows(
        f"SELECT page.*, {before[0]}, {beyond[0]}, {total_sql}"
        f" FROM (SELECT 1) AS one LEFT JOIN LATERAL ({select} WHERE {condition}"
        f" ORDER BY {column} {'DESC' if backwards else 'ASC'} LIMIT ?) AS page ON true",
        [*before[1], *beyond[1], *total_params, *values, page_size + 1],
    )
    first = answer[0]
    rows = [row[:-3] for row in answer] if first[0] is not None else []
    more = len(rows) > page_size
    rows = rows[:page_size]
    count = int(first[-1] or 0)
    if backwards:
        rows.reverse()
        return rows, more, first[-2] is not None, count
    return rows, first[-3] is not None, more or first[-2] is not None, count


async def _page_rows(
    conn: Reader,
    *,
    select: str,
    column: str,
    where: str,
    params: list[Any],
    start_id: int | None,
    end_id: int | None,
    page_size: int,
) -> list[tuple[Any, ...]]:
    """The page's rows of ``select … WHERE where``, in ``column`` order: from ``start_id`` on,
    or, with only ``end_id``, the last ones before it (walked backwards, then reversed)."""
    condition, values = _within(column, where, params, start_id, end_id)
    backwards = start_id is None and end_id is not None
    rows = await conn.rows(
        f"{select} WHERE {condition} ORDER BY {column} {'DESC' if backwards else 'ASC'} LIMIT ?",
        [*values, page_size],
    )
    if backwards:
        rows.reverse()
    return rows


def _nearest(
    source: str, column: str, where: str, params: list[Any], operator: str, bound: int | None
) -> tuple[str, list[Any]]:
    """The subquery for the selection's row nearest ``bound`` on the side ``operator`` says
    (``<`` walks back, ``>`` and ``>=`` forward), and its parameters; ``NULL`` without a bound."""
    if bound is None:
        return "NULL", []
    order = "DESC" if operator.startswith("<") else "ASC"
    return (
        f"(SELECT {column} FROM {source} WHERE {where} AND {column} {operator} ?"
        f" ORDER BY {column} {order} LIMIT 1)",
        [*params, bound],
    )


def _within(
    column: str, where: str, params: list[Any], start_id: int | None, end_id: int | None
) -> tuple[str, list[Any]]:
    """``where`` narrowed to ``start_id`` ≤ column < ``end_id``, and its parameters."""
    condition, values = where, list(params)
    if start_id is not None:
        condition += f" AND {column} >= ?"
        values.append(start_id)
    if end_id is not None:
        condition += f" AND {column} < ?"
        values.append(end_id)
    return condition, values


async def _edges(
    conn: Reader,
    *,
    source: str,
    column: str,
    where: str,
    params: list[Any],
    page: list[int],
    start_id: int | None,
    end_id: int | None,
    total: tuple[str, list[Any]],
) -> tuple[bool, bool, int]:
    """Whether the selection has rows before and after the page (``page``: its serials, in
    order), and the total from the ``total`` query: one round trip."""
    low = page[0] if page else start_id
    high = page[-1] if page else (end_id - 1 if end_id is not None else None)
    before_sql, before_params = _nearest(source, column, where, params, "<", low)
    after_sql, after_params = _nearest(source, column, where, params, ">", high)
    total_sql, total_params = total
    row = await conn.row(
        f"SELECT {before_sql}, {after_sql}, {total_sql}",
        [*before_params, *after_params, *total_params],
    )
    assert row is not None  # a SELECT without FROM has one row
    before, after, count = row
    return before is not None, after is not None, int(count or 0)
