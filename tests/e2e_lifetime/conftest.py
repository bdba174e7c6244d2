"""Fixtures for the real-process lifetime tests: servers that are always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_lifetime.servers import ServerPool, server_pool


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerPool]:
    """``servers.start(data_dir, database_url=..., env=...)``; all stopped after the test."""
    with server_pool(tmp_path / "logs") as pool:
        yield pool
