"""The server's task that deletes abandoned uploads: at start, again and again, never dying."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from meetd.clock import FakeClock
from meetd.files import UPLOAD_FORM_SECONDS
from meetd.files.cleanup import keep_deleting_stale_uploads
from meetd.files.local import LocalFileStore

TEMP = "auto-expiring-temp/logos/white/1"


class CountingStore(LocalFileStore):
    """The real store, telling the test each time a sweep has run (or failed)."""

    def __init__(self, root: Path, clock: FakeClock, *, failures: int = 0) -> None:
        super().__init__(root, public_url="https://meet.test", signing_key=b"k" * 32, clock=clock)
        self.sweeps: asyncio.Queue[float] = asyncio.Queue()
        self.failures = failures
        self.loop = asyncio.get_running_loop()

    def delete_stale_temporary(self, now: float) -> int:
        self.loop.call_soon_threadsafe(self.sweeps.put_nowait, now)
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        return super().delete_stale_temporary(now)


def test_it_deletes_at_start_and_every_interval(tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        store = CountingStore(tmp_path, clock)
        store.write(TEMP, b"abandoned", content_type="image/png")
        clock.advance(UPLOAD_FORM_SECONDS + 1)
        task = asyncio.create_task(keep_deleting_stale_uploads(store, clock, interval=0))
        assert await store.sweeps.get() == clock.now_ms() / 1000
        await store.sweeps.get()  # and again: it keeps going
        assert store.read(TEMP) is None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_failure_is_logged_and_the_task_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        store = CountingStore(tmp_path, clock, failures=1)
        store.write(TEMP, b"abandoned", content_type="image/png")
        clock.advance(UPLOAD_FORM_SECONDS + 1)
        task = asyncio.create_task(keep_deleting_stale_uploads(store, clock, interval=0))
        await store.sweeps.get()  # fails
        await store.sweeps.get()  # tried again
        await store.sweeps.get()  # the second try has finished
        assert store.read(TEMP) is None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="meetd.files"):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if "deleting stale uploads failed" in r.message]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
