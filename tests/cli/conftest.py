"""Fixtures of the command-line tests: a clean environment, and where the state lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from meetd.settings import ENVIRONMENT_VARIABLES


@pytest.fixture(autouse=True)
def no_meetd_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MEETD_* setting leaks in from the shell, and the default data dir is a temp one."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path, database_url: str) -> list[str]:
    """``--data-dir`` and ``--database-url`` after the subcommand, SQLite or PostgreSQL."""
    return ["--data-dir", str(data_dir), "--database-url", database_url]
