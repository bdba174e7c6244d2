"""Deleting abandoned uploads: a logo uploaded with a form but never finalized.

The server runs :func:`keep_deleting_stale_uploads` for its whole life. Several processes
sharing a data dir or bucket may all run it: deleting a file twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging

from meetd.clock import Clock
from meetd.files import FileStore

log = logging.getLogger("meetd.files")

INTERVAL_SECONDS = 600.0


async def keep_deleting_stale_uploads(
    files: FileStore, clock: Clock, *, interval: float = INTERVAL_SECONDS
) -> None:
    """Delete stale temporary files now and every ``interval`` seconds until cancelled; a
    failure (a bucket briefly unreachable) is logged and tried again next time."""
    while True:
        try:
            now = clock.now_ms() / 1000
            deleted = await asyncio.to_thread(files.delete_stale_temporary, now)
            if deleted:
                log.info("stale uploads deleted", extra={"count": deleted})
        except Exception:
            log.exception("deleting stale uploads failed; trying again later")
        await asyncio.sleep(interval)
