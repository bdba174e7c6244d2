"""A PostgreSQL server that stops answering (packets dropped, not refused) ends reads,
connections and /healthz after a bounded wait, instead of holding them for as long as the
network is gone. A "black hole" stands in for it when connecting: a loopback port that
accepts connections and never says a word."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from meetd.store import backends, pg_readers
from tests import support


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A PostgreSQL URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/meetd"
    finally:
        listener.close()


def test_a_read_connection_gives_up_connecting(
    black_hole: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_readers, "CONNECT_TIMEOUT_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(pg_readers._connect(black_hole))
    assert time.monotonic() - started < 3


def test_the_writer_gives_up_connecting(black_hole: str, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {**backends.WRITER_CONNECTION_LIMITS, "connect_timeout": 2}  # libpq's least
    monkeypatch.setattr(backends, "WRITER_CONNECTION_LIMITS", limits)
    outcome: list[BaseException | None] = []

    def connect() -> None:  # on a thread: without a limit libpq waits forever
        try:
            backends.PostgresBackend(black_hole).connect_writer().raw.close()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(8)
    assert outcome, "connecting to a server that never answers did not give up"
    assert isinstance(outcome[0], psycopg.OperationalError)


def test_a_query_that_gets_no_answer_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A query the server does not answer in time, as on a network gone silent: here the
    server is busy sleeping, which looks the same from the client's side."""
    monkeypatch.setattr(pg_readers, "QUERY_TIMEOUT_SECONDS", 0.5)

    async def query_without_answer(url: str) -> None:
        connection = await pg_readers._connect(url)
        try:
            query = asyncio.ensure_future(connection.fetchval("SELECT pg_sleep(30)"))
            done, _ = await asyncio.wait({query}, timeout=5)  # without a limit: 30 s
            query.cancel()
            assert query in done
            assert isinstance(query.exception(), TimeoutError)
        finally:
            await connection.close(timeout=5)

    with support.postgres_schema() as url:
        asyncio.run(query_without_answer(url))
