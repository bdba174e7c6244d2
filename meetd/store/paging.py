"""Pages by serial number (contract §4, List), for rooms and for the callback log alike.

A page is the rows of a selection from ``start_id`` on, or the last ones before ``end_id``,
walked on an index whose columns are the selection's *key* columns (an application, say)
and then the serial. Whether rows lie before and after the page is asked as the *nearest*
one each way (``ORDER BY … LIMIT 1``), never ``EXISTS``: PostgreSQL may answer an ``EXISTS``
by scanning the whole selection (97 ms for a first page of 300 000 rooms against 0.6 ms),
while the nearest row is one step along the index from the bound.

SQLite asks the page, then its neighbours and total (:func:`_page_rows`, :func:`_edges`);
it reads inline, in microseconds. Each of those statements names the index it walks
(``INDEXED BY``): with statistics from a time when one application held nearly every room,
SQLite's planner walked the primary key from the bound and filtered the rows by application,
and the last page of an application of 1 000 rooms, followed by 300 000 of another's, took
140 ms (on the event loop, which SQLite's reads run on).

PostgreSQL asks everything in one statement: the page with one row more, which tells
whether rows lie beyond it, the nearest row on its other side, and the total. :func:`page`
asks for one selection, :func:`pages` for those of several requests at once.

On PostgreSQL the bounds are row comparisons on (key columns, serial), which only the index
on those columns can answer. Written as ``application_id = $1 AND serial >= $2``, the
generic plan that reads use (:mod:`meetd.store.pg_readers`) may walk the primary key in
serial order and filter: cheap when the application's rooms come first, a walk through
every other application's rooms when they come last.

A key of several columns (the callback log of one room, or of one status) is written
otherwise: equalities for its columns but the last, and row comparisons on the last and the
serial, ``application_id = $1 AND (room_id, serial) >= ($2, $3) AND (room_id, serial) <
($2, $4)``. Written like one column's, (application, room, serial) in the row comparisons,
it read far beyond the key's rows, whatever index it walked:

- PostgreSQL 15 ends an index scan on a row comparison only where the comparison's first
  column stops matching, and only when equalities fix every index column before that one.
  A page of one room walked on through the application's other rooms to the end (or the
  start) of its log; an equality on the room beside the comparison did not stop it either,
  as the comparison is checked first and a row that fails it is skipped, not the scan ended.
- The planner estimates a row comparison by its first column alone, so the room narrowed
  nothing: the total was counted on the application's index, reading all its events (a
  bitmap scan, 95 to 220 ms for 360 000 events, with statistics or without).

The last column keeps to the row comparisons. As an equality it would let the primary key,
which holds the rows of a fixed key in serial order too, serve the page: with statistics a
status that no event has is estimated to match them all, and that walk looks cheapest. And
the row comparisons cannot go: with equalities and a serial range alone, generic plans
walked the primary key for a status (with statistics) and the application's index for a
room (without), filtering.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from meetd.store.database import Reader

Page = tuple[list[tuple[Any, ...]], bool, bool, int]  # rows, has_prev, has_next, total
Key = Sequence[tuple[str, Any]]  # the selection's key columns, each with its value
PageAsk = tuple[str, int | None, int | None, int]  # key value, start_id, end_id, page_size

_NO_LOW = 0
_NO_HIGH = 2**63 - 1  # past any serial


async def page(
    conn: Reader,
    *,
    select: str,
    source: str,
    key: Key,
    column: str,
    index: str,
    where: str,
    params: list[Any],
    start_id: int | None,
    end_id: int | None,
    page_size: int,
    total: tuple[str, list[Any]] | None = None,
) -> Page:
    """One page of ``select … WHERE where``, limited to the rows whose ``key`` columns hold
    the given values, in ``column`` order; whether rows lie before and after it; and the
    total: from the ``total`` subquery and its parameters, else counted. ``index``: the
    index on the key's columns and ``column``, which SQLite is told to walk."""
    if conn.dialect != "postgresql":
        select = _indexed(select, source, index)
        source = f"{source} INDEXED BY {index}"
    if total is None:
        total = _count(source, key, column, where, params)
    if conn.dialect == "postgresql":
        names = [name for name, _ in key]
        keys = ", ".join(f"k{n}" for n in range(len(key)))
        asks = "(SELECT {}, ?::bigint, ?::bigint, ?::int, ?::bool, 1) AS q ({}, {})".format(
            ", ".join("?::text" for _ in key), keys, "low, high, size, backwards, ord"
        )
        ask = [value for _, value in key]
        ask += [start_id, end_id, page_size, _backwards(start_id, end_id)]
        sql, order = _pg_pages(select, source, tuple(names), column, where, total[0], asks)
        answer = await conn.rows(sql, order(params, total[1], ask))
        return _split(answer, [(ask[0], start_id, end_id, page_size)])[0]
    where = " AND ".join([where, *(f"{name} = ?" for name, _ in key)])
    params = [*params, *(value for _, value in key)]
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


async def pages(
    conn: Reader,
    *,
    select: str,
    source: str,
    key: str,
    column: str,
    where: str,
    total: str,
    asks: list[PageAsk],
) -> list[Page]:
    """:func:`page` for several selections in one PostgreSQL statement, one a request: each
    ask names its selection by a value of the ``key`` column, which ``total`` reads as
    ``q.k0``. ``where`` is the same for all, without parameters."""
    sql, order = _pg_pages(
        select,
        source,
        (key,),
        column,
        where,
        total,
        "unnest(?::text[], ?::bigint[], ?::bigint[], ?::int[], ?::bool[])"
        " WITH ORDINALITY AS q (k0, low, high, size, backwards, ord)",
    )
    arrays = [
        [ask[0] for ask in asks],
        [ask[1] for ask in asks],
        [ask[2] for ask in asks],
        [ask[3] for ask in asks],
        [_backwards(ask[1], ask[2]) for ask in asks],
    ]
    return _split(await conn.rows(sql, order([], [], arrays)), asks)


def _indexed(select: str, source: str, index: str) -> str:
    """``select`` reading ``source`` by ``index`` (SQLite's ``INDEXED BY``)."""
    reads = f" FROM {source}"
    if reads not in select:
        raise ValueError(f"{select!r} does not read {source!r}")
    return select.replace(reads, f"{reads} INDEXED BY {index}", 1)


def _count(
    source: str, key: Key, column: str, where: str, params: list[Any]
) -> tuple[str, list[Any]]:
    """The subquery counting the selection. Its key is written as a range of row values too,
    which keeps a generic plan on the key's index; as ``application_id = $1`` PostgreSQL
    counted the callback log of an application with 3 events by reading the whole table."""
    names = [name for name, _ in key]
    values = [value for _, value in key]
    return (
        f"(SELECT COUNT(*) FROM {source} WHERE {where} AND"
        f" {_key_range(names, ['?'] * len(key), column, str(_NO_LOW), str(_NO_HIGH))})",
        [*params, *values[:-1], values[-1], values[-1]],
    )


def _key_range(
    names: Sequence[str], values: Sequence[str], column: str, low: str, high: str
) -> str:
    """The rows whose key columns ``names`` hold ``values`` and whose ``column`` lies from
    ``low`` to before ``high``, as the module's docstring says: equalities for the key's
    columns but the last, and row comparisons on (its last column, ``column``)."""
    fixed = "".join(
        f"{name} = {value} AND " for name, value in zip(names[:-1], values[:-1], strict=True)
    )
    row, value = f"({names[-1]}, {column})", values[-1]
    return f"{fixed}{row} >= ({value}, {low}) AND {row} < ({value}, {high})"


def _empty_range(start_id: int | None, end_id: int | None) -> bool:
    """Whether the bounds hold no serial at all (``start_id`` at or past ``end_id``). Such a
    page has no place among the rows, so nothing lies before or after it: no ``prev``, no
    ``next``. Links from its bounds would point the wrong way (``?start_id=9&end_id=5``
    would offer ``next`` at 5, ``prev`` before 9); ``first`` starts the walk again."""
    return start_id is not None and end_id is not None and start_id >= end_id


def _backwards(start_id: int | None, end_id: int | None) -> bool:
    """Whether the page is the last rows before ``end_id``, walked backwards."""
    return start_id is None and end_id is not None


# Remembered: the text is the same for every list of one kind, and building it anew cost
# 8 µs a statement, on the path of every list request.
@functools.lru_cache(maxsize=64)
def _pg_pages(
    select: str,
    source: str,
    keys: tuple[str, ...],
    column: str,
    where: str,
    total: str,
    asks: str,
) -> tuple[str, Callable[[list[Any], list[Any], list[Any]], list[Any]]]:
    """The statement answering every ask of the ``asks`` row source (columns ``k0``…,
    ``low``, ``high``, ``size``, ``backwards``, ``ord``), and a function ordering its
    parameters: ``(where's, total's, the asks')``.

    Each ask gives one row or more: its ordinal, the page's columns (NULL for an empty
    page), the nearest serial before ``low`` and at or after ``high``, and the total. The
    neighbours and the total sit in the inner SELECT, where OFFSET 0 keeps PostgreSQL from
    folding them into the outer one, which would repeat them for every row.
    """
    key_values = [f"q.k{n}" for n in range(len(keys))]

    def within(low: str, high: str) -> str:
        return _key_range(keys, key_values, column, low, high)

    ascending = ", ".join([*keys, column])
    descending = ", ".join(f"{name} DESC" for name in [*keys, column])
    bounds = within(f"coalesce(q.low, {_NO_LOW})", f"coalesce(q.high, {_NO_HIGH})")
    step = f"{select} WHERE {where} AND {bounds}"
    # The neighbours repeat their bound plainly: without a bound (NULL) that makes the index
    # search stop at once, where a row comparison with a NULL walks the key's whole range.
    before = (
        f"(SELECT {column} FROM {source} WHERE {where} AND {within(str(_NO_LOW), 'q.low')}"
        f" AND {column} < q.low"
        f" ORDER BY {descending} LIMIT 1)"
    )
    beyond = (
        f"(SELECT {column} FROM {source} WHERE {where} AND {within('q.high', str(_NO_HIGH))}"
        f" AND {column} >= q.high"
        f" ORDER BY {ascending} LIMIT 1)"
    )
    sql = (
        f"SELECT q.ord, page.*, q.before, q.beyond, q.total FROM"
        f" (SELECT q.*, {before} AS before, {beyond} AS beyond, {total} AS total"
        f" FROM {asks} OFFSET 0) AS q"
        f" LEFT JOIN LATERAL (({step} AND NOT q.backwards ORDER BY {ascending} LIMIT q.size + 1)"
        f" UNION ALL ({step} AND q.backwards ORDER BY {descending} LIMIT q.size + 1))"
        " AS page ON true"
    )

    def order(where_params: list[Any], total_params: list[Any], ask: list[Any]) -> list[Any]:
        inner = [*where_params, *where_params, *total_params, *ask]
        return [*inner, *where_params, *where_params]

    return sql, order


def _split(answer: list[tuple[Any, ...]], asks: Sequence[PageAsk]) -> list[Page]:
    """Each ask's page from the rows of :func:`_pg_pages`' statement."""
    by_ask: dict[int, list[tuple[Any, ...]]] = {}
    for row in answer:
        by_ask.setdefault(row[0], []).append(row)
    found: list[Page] = []
    for n, (_, start_id, end_id, size) in enumerate(asks, 1):
        got = by_ask[n]
        before, beyond, total = got[0][-3:]
        rows = sorted(row[1:-3] for row in got) if got[0][1] is not None else []
        more = len(rows) > size  # the row beyond the page on its walking side
        if _empty_range(start_id, end_id):
            found.append(([], False, False, int(total or 0)))
        elif _backwards(start_id, end_id):
            found.append((rows[-size:], more, beyond is not None, int(total or 0)))
        else:
            found.append(
                (rows[:size], before is not None, more or beyond is not None, int(total or 0))
            )
    return found


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
    backwards = _backwards(start_id, end_id)
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
    (``<`` walks back, ``>`` forward), and its parameters; ``NULL`` without a bound."""
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
    if _empty_range(start_id, end_id):  # no neighbours: both subqueries are NULL
        low = high = None
    else:
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
