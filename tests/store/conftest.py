"""Fixtures of the store's tests: a migrated database on each backend, an application, and a
bare SQLite database with a table of notes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from meetd.store import accounts, migrations
from meetd.store.database import Database, open_database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    try:
        database.write_blocking(migrations.upgrade)
        yield database
    finally:
        database.close()


def new_application(db: Database) -> str:
    """The default application of a new account."""
    account = db.write_blocking(
        lambda c: accounts.create_account(
            c, name="a", api_key=f"k{uuid.uuid4().hex[:8]}", api_secret="s", now_ms=0
        )
    )
    found: str = account.default_application_id
    return found


@pytest.fixture
def application_id(db: Database) -> str:
    return new_application(db)


@pytest.fixture
def notes_path(tmp_path: Path) -> Path:
    return tmp_path / "meetd.sqlite3"


@pytest.fixture
def notes(notes_path: Path) -> Iterator[Database]:
    """A SQLite database with a table of notes to write to."""
    database = open_database(f"sqlite:///{notes_path}")
    try:
        database.write_blocking(lambda c: c.execute("CREATE TABLE notes (body TEXT)"))
        yield database
    finally:
        database.close()
