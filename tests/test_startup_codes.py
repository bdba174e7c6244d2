"""``meetd serve`` fills the meeting codes' tables at startup, in a thread of its own
(meetd.app.warm_meeting_codes); apps built by tests do not."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from meetd.app import create_app, warm_meeting_codes
from meetd.clock import FakeClock
from meetd.domain import room_keys
from meetd.settings import build_settings
from tests.domain.test_room_keys import count_hashes


def warm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "meetd-warm-codes"]


@pytest.mark.parametrize("warm_codes", [True, False])
def test_the_served_app_warms_the_codes_of_its_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm_codes: bool
) -> None:
    settings = build_settings(
        {"data_dir": tmp_path / "data", "database_url": f"sqlite:///{tmp_path / 'm.sqlite3'}"},
        environ={"MEETD_SECRET_KEY": "test-secret-key-of-32-characters"},
    )
    app = create_app(settings, clock=FakeClock(), run_sweeper=False, warm_codes=warm_codes)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        for thread in warm_threads():  # (it may be done already)
            thread.join(timeout=60)
        hashed = count_hashes(monkeypatch)
        keys = app.state.services.keys
        codes = {keys.meeting_code(serial) for serial in range(1, 2_001)}
        assert len(codes) == 2_000
        assert (not hashed) is warm_codes


def test_the_warmed_epochs_are_the_highest_serials_and_the_one_below(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = room_keys.RoomKeys(bytes(range(32)))
    warm_meeting_codes(keys, room_keys.CODES_PER_EPOCH + 5)  # in epoch 1
    for thread in warm_threads():
        thread.join(timeout=60)
    hashed = count_hashes(monkeypatch)
    for epoch in (0, 1):
        keys.meeting_code(epoch * room_keys.CODES_PER_EPOCH + 77)
    assert not hashed
    keys.meeting_code(2 * room_keys.CODES_PER_EPOCH + 77)
    assert hashed
