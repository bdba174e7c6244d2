"""PostgreSQL reads on the event loop: placeholders, a bounded number of connections, and
connections handed to waiting reads strictly in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from meetd.store.pg_readers import AsyncpgReader, ReaderPool, numbered
from tests import support
from tests.support import free_port


def test_placeholders_are_numbered_in_order() -> None:
    assert numbered("SELECT ? WHERE a = ? AND b IN (?, ?)") == (
        "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"
    )
    assert numbered("SELECT 1") == "SELECT 1"


@pytest.fixture
def url() -> Iterator[str]:
    with support.postgres_schema() as found:
        yield found


def test_reads_never_open_more_than_the_pool_size(url: str) -> None:
    async def main() -> tuple[list[int], int]:
        pool = ReaderPool(url, asyncio.get_running_loop(), size=2)

        async def backend_pid(reader: AsyncpgReader) -> int:
            row = await reader.row("SELECT pg_backend_pid() FROM pg_sleep(0.02)")
            assert row is not None
            return int(row[0])

        try:
            pids = await asyncio.gather(*(pool.run(backend_pid) for _ in range(12)))
            return list(pids), len(pool._all)
        finally:
            await pool.aclose()

    pids, opened = asyncio.run(main())
    assert len(pids) == 12
    assert len(set(pids)) == 2
    assert opened == 2


def test_a_returned_connection_goes_to_the_longest_waiter(url: str) -> None:
    """A read arriving just as a connection comes back queues behind those already waiting,
    and a waiter that gave up is passed over."""

    async def main() -> list[str]:
        pool = ReaderPool(url, asyncio.get_running_loop(), size=1)
        served: list[str] = []
        release = asyncio.Event()

        def read(name: str, hold: asyncio.Event | None = None) -> Coroutine[Any, Any, None]:
            async def run(reader: AsyncpgReader) -> None:
                await reader.row("SELECT 1")
                served.append(name)
                if hold is not None:
                    await hold.wait()

            return pool.run(run)

        try:
            first = asyncio.create_task(read("first", release))
            await asyncio.sleep(0.05)  # "first" holds the only connection
            waiting = [asyncio.create_task(read(name)) for name in ("a", "b", "c")]
            gave_up = asyncio.create_task(read("gave up"))
            later = asyncio.create_task(read("d"))
            await asyncio.sleep(0.05)
            gave_up.cancel()
            release.set()
            newcomer = asyncio.create_task(read("newcomer"))
            await asyncio.gather(first, *waiting, later, newcomer)
            return served
        finally:
            await pool.aclose()

    assert asyncio.run(main()) == ["first", "a", "b", "c", "d", "newcomer"]


def test_reads_fail_rather_than_wait_when_no_connection_opens() -> None:
    """With the server unreachable, every read gets the connection error, those queued
    behind the failed attempts included; none waits for a connection that never comes."""
    unreachable = f"postgresql://127.0.0.1:{free_port()}/meetd"

    async def main() -> list[BaseException | None]:
        pool = ReaderPool(unreachable, asyncio.get_running_loop(), size=2)

        async def one(reader: AsyncpgReader) -> None:
            await reader.row("SELECT 1")

        results = await asyncio.wait_for(
            asyncio.gather(*(pool.run(one) for _ in range(6)), return_exceptions=True), 10
        )
        return list(results)

    results = asyncio.run(main())
    assert len(results) == 6
    assert all(isinstance(result, OSError) for result in results), results


def test_a_read_cancelled_as_it_is_handed_a_connection_passes_it_on(url: str) -> None:
    async def main() -> str:
        pool = ReaderPool(url, asyncio.get_running_loop(), size=1)

        async def answer(reader: AsyncpgReader) -> str:
            row = await reader.row("SELECT 'served'")
            assert row is not None
            return str(row[0])

        try:
            only = await pool._acquire()
            cancelled = asyncio.create_task(pool.run(answer))
            await asyncio.sleep(0.05)  # it waits for the only connection
            pool._release(only)  # handed to it, and in the same step, before it runs:
            cancelled.cancel()
            return await asyncio.wait_for(pool.run(answer), 5)
        finally:
            await pool.aclose()

    assert asyncio.run(main()) == "served"


def test_sessions_plan_as_the_reads_are_written_for(url: str) -> None:
    """Reads use generic plans, and no session compiles queries (JIT): store.paging and
    tests/store/test_paging_plans.py say why. The writer's session too, across its commits."""
    from meetd.store.database import open_database

    db = open_database(url)
    try:

        async def read() -> tuple[Any, ...] | None:
            row = await db.read(
                lambda c: c.row("SELECT current_setting('plan_cache_mode'), current_setting('jit')")
            )
            await db.close_reads()
            return row

        assert asyncio.run(read()) == ("force_generic_plan", "off")
        for _ in range(2):  # a setting made in a transaction would not outlive a rollback
            assert db.write_blocking(lambda c: c.fetchone("SELECT current_setting('jit')")) == (
                "off",
            )
    finally:
        db.close()


def test_rows_act_as_the_tuples_of_their_values(url: str) -> None:
    """Rows come back as asyncpg's Records, uncopied: callers index, slice, unpack, hash and
    compare them as tuples, and a room body cached from a tuple row must match a Record."""

    async def main() -> list[Any]:
        pool = ReaderPool(url, asyncio.get_running_loop(), size=1)
        try:
            return await pool.run(
                lambda reader: reader.rows(
                    "SELECT 7 AS n, 'seven' AS s, NULL AS z UNION ALL SELECT 8, 'eight', NULL"
                )
            )
        finally:
            await pool.aclose()

    first, second = asyncio.run(main())
    assert first == (7, "seven", None)
    assert (7, "seven", None) == first  # noqa: SIM300 - a cached tuple row is compared so
    assert first != (7, "seven") and second != (7, "seven", None)
    assert hash(first) == hash((7, "seven", None))
    assert first[1:] == ("seven", None) and isinstance(first[1:], tuple)
    n, s, z = second
    assert (n, s, z) == (8, "eight", None)
    assert {(7, "seven", None): "found"}[first] == "found"
