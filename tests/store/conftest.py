"""Fixtures of the store's tests: a migrated database on each backend, and an application."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
