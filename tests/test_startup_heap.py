"""``meetd serve`` freezes the objects that exist once it has started
(meetd.app.freeze_startup_heap), so that the garbage collector's full passes stop walking
them."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.settings import build_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # give the suite's objects back to the collector


def frozen_after_startup(tmp_path: Path, *, freeze_heap: bool) -> int:
    settings = build_settings(
        {"data_dir": tmp_path / "data", "database_url": f"sqlite:///{tmp_path / 'm.sqlite3'}"},
        environ={"MEETD_SECRET_KEY": "test-secret-key-of-32-characters"},
    )
    app = create_app(
        settings,
        clock=FakeClock(),
        run_sweeper=False,
        freeze_heap=freeze_heap,
    )
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        return gc.get_freeze_count()


def test_the_served_app_freezes_its_startup_heap(tmp_path: Path, unfrozen: None) -> None:
    frozen = frozen_after_startup(tmp_path, freeze_heap=True)
    # meetd's modules, its libraries' and the app: tens of thousands of objects
    assert frozen > 10_000


def test_apps_built_by_tests_freeze_nothing(tmp_path: Path, unfrozen: None) -> None:
    assert frozen_after_startup(tmp_path, freeze_heap=False) == 0
