"""The expiry sweeper: turns rooms unavailable the moment their ``expires_at`` passes.

It sleeps until the next room is due, but never more than a second, so rooms created by
other processes sharing the database are caught within the second too; a room created here
with an earlier deadline wakes it at once. The state change itself is one UPDATE in the
store (:func:`meetd.store.rooms.expire_due_rooms`), which expires each room exactly once even
when several processes sweep the same PostgreSQL database, and survives restarts because
the deadline lives in the database, not in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from meetd.clock import Clock
from meetd.metrics import Metrics
from meetd.store import events, rooms
from meetd.store.database import Connection, Database

log = logging.getLogger("meetd.sweeper")

MAX_SLEEP_SECONDS = 1.0
# After a sweep that found a due room but expired nothing: on PostgreSQL another transaction
# holds its row (expire_due_rooms skips locked rows), or another process expired it first.
# Without a pause the loop read the same due time and swept again at once: about 4 000
# transactions a second and half a CPU for as long as the row stayed locked.
NOTHING_EXPIRED_PAUSE_SECONDS = 0.1
# Rooms expired per transaction. On SQLite a batch runs on the event loop, so its length is
# how long requests wait: 500 rooms (with their events) took about 11 ms alone, and while
# 40 000 rooms expired at once GET's p99 rose to 18 to 25 ms; with 100 (3.3 ms a batch) it
# stayed at 8 to 9 ms. The sweep itself still expires some 30 000 rooms a second.
BATCH = 100


def expire_due(conn: Connection, now_ms: int, limit: int = BATCH) -> list[rooms.ExpiredRoom]:
    """Expire the rooms due now and record their ``room:expired`` events, in one
    transaction: a room never expires without its event."""
    expired = rooms.expire_due_rooms(conn, now_ms, limit)
    events.emit_rooms_expired(conn, expired, now_ms=now_ms)
    return expired


class ExpirySweeper:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        metrics: Metrics,
        on_expired: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.metrics = metrics
        self.on_expired = on_expired  # the delivery worker's notice: events are waiting
        self._wake = asyncio.Event()
        self._next_wake_ms: int | None = None

    def notice(self, expires_at_ms: int) -> None:
        """A room with this deadline was created or changed here: wake up earlier if needed."""
        if self._next_wake_ms is None or expires_at_ms < self._next_wake_ms:
            self._wake.set()

    async def sweep_once(self) -> list[rooms.ExpiredRoom]:
        """Expire everything due now; return the rooms this call expired."""
        now = self.clock.now_ms()
        expired: list[rooms.ExpiredRoom] = []
        while True:
            batch = await self.database.write(lambda c: expire_due(c, now))
            expired += batch
            if batch and self.on_expired is not None:
                self.on_expired()  # each batch's events are committed: send them now
            if len(batch) < BATCH:
                break
        if expired:
            self.metrics.rooms_expired.inc(len(expired))
            self.metrics.callback_events.labels("room:expired").inc(len(expired))
            log.info("rooms expired", extra={"count": len(expired)})
        return expired

    async def run(self) -> None:
        last_failure: str | None = None
        while True:
            try:
                due = await self.database.read(rooms.next_expiry)
                last_failure = None
                now = self.clock.now_ms()
                if due is not None and due <= now:
                    if not await self.sweep_once():
                        await asyncio.sleep(NOTHING_EXPIRED_PAUSE_SECONDS)
                    continue
                delay = (
                    MAX_SLEEP_SECONDS if due is None else min(MAX_SLEEP_SECONDS, (due - now) / 1000)
                )
                self._next_wake_ms = now + int(delay * 1000)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.001))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # While the database is down this repeats every second: the traceback once,
                # then one line a failure until a sweep works again.
                if repr(error) != last_failure:
                    log.exception("expiry sweep failed; retrying every second")
                else:
                    log.warning("expiry sweep failed again", extra={"error": repr(error)})
                last_failure = repr(error)
                await asyncio.sleep(MAX_SLEEP_SECONDS)
