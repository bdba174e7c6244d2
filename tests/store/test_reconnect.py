"""A PostgreSQL restart or a dropped connection costs no request: reads and writes retry once
on a fresh connection."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from meetd.store import migrations
from meetd.store.database import open_database
from tests import support


def test_reads_and_writes_survive_their_connections_being_killed() -> None:
    with support.postgres_schema() as url:
        name = f"meetd-test-{uuid.uuid4().hex[:8]}"
        database = open_database(f"{url}&application_name={name}")
        try:
            database.write_blocking(migrations.upgrade)
            database.write_blocking(lambda c: c.execute("CREATE TABLE notes (body TEXT)"))

            async def round_trip(body: str) -> list[str]:
                await database.write(
                    lambda c: c.execute("INSERT INTO notes (body) VALUES (?)", (body,))
                )
                rows = await database.read(lambda c: c.rows("SELECT body FROM notes"))
                return sorted(row[0] for row in rows)

            def kill_connections() -> int:
                with psycopg.connect(support.POSTGRES_URL, autocommit=True) as admin:
                    return len(
                        admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = %s",
                            (name,),
                        ).fetchall()
                    )

            async def main() -> tuple[list[str], int, list[str]]:
                # One loop throughout: the reader connections killed are the ones read on next.
                before = await round_trip("before")
                killed = kill_connections()
                after = await round_trip("after")
                await database.close_reads()
                return before, killed, after

            before, killed, after = asyncio.run(main())
            assert before == ["before"]
            assert killed >= 2  # the writer's and the reader's
            assert after == ["after", "before"]
        finally:
            database.close()
