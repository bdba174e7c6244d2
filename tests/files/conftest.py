"""File tests run on SQLite only: the store and the endpoints do not touch the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from meetd.files.local import LocalFileStore
from meetd.settings import Settings, build_settings


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": sqlite_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
        },
        environ={},
    )


@pytest.fixture
def store(client: TestClient) -> LocalFileStore:
    """The app's own store (a LocalFileStore on the app's FakeClock)."""
    found = client.app.state.services.files  # type: ignore[attr-defined]
    assert isinstance(found, LocalFileStore)
    return found
