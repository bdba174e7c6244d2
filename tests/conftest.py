"""Fixtures shared by the suite.

The database is real: a temporary SQLite file per test, and the same tests again on
PostgreSQL in a schema of their own when it answers. On a bare machine the PostgreSQL runs
skip with a reason; with ``MEETD_REQUIRE=postgres`` (CI) they fail instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.settings import Settings, build_settings
from tests import support


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meetd.sqlite3'}"
        return
    with support.postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meetd.sqlite3'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
        },
        environ={},
    )


@pytest.fixture
def client(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url="https://meet.example.test") as test_client:
        yield test_client


@pytest.fixture
def account(client: TestClient, clock: FakeClock) -> support.Caller:
    return support.create_account(client, clock)


@pytest.fixture
def other_account(client: TestClient, clock: FakeClock) -> support.Caller:
    return support.create_account(client, clock, name=f"other-{uuid.uuid4().hex[:6]}")
