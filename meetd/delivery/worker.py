"""The delivery worker inside ``meetd serve``: claims due events from the outbox, sends them,
and writes down how each attempt went.

It keeps up to ``max_in_flight`` deliveries going at once. Each loop it first records the
outcomes of the attempts that finished (one write for all of them: that is what frees the
next event of their rooms), then claims as many due events as there is room for (one
write), then waits for an attempt to finish, for an emitter in this process to say there is
something new (:meth:`notice`), or for the poll interval — events emitted by other
processes are found by polling. A delivery leases its event for ``lease_ms``; a process that
dies mid-delivery leaves the lease to run out and another worker sends the event again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from meetd.clock import Clock
from meetd.delivery.sender import Sender
from meetd.metrics import Metrics
from meetd.store import events
from meetd.store.database import Database

log = logging.getLogger("meetd.delivery")

# Three times the sender's 5 s timeout: a lease runs out only when its worker died (or hung);
# then the event is sent again, at least once.
LEASE_MS = 15_000
POLL_SECONDS = 0.5
MAX_IN_FLIGHT = 256
BATCH = 200


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        metrics: Metrics,
        sender: Sender,
        *,
        schedule: Sequence[int],
        max_in_flight: int = MAX_IN_FLIGHT,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.database = database
        self.clock = clock
        self.metrics = metrics
        self.sender = sender
        self.schedule = tuple(schedule)
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[events.Outcome]] = set()
        self._finished: list[events.Outcome] = []

    def notice(self) -> None:
        """An event was just committed in this process: look now, not at the next poll."""
        self._wake.set()

    async def deliver_once(self) -> list[events.Outcome]:
        """Claim what is due now, send it all, record how it went; return the outcomes.
        (For tests, which drive the worker with a fake clock.)"""
        claimed = await self._claim(BATCH)
        outcomes = list(await asyncio.gather(*(self._attempt(event) for event in claimed)))
        await self._record(outcomes)
        return outcomes

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("callback delivery failed; retrying shortly")
                    await asyncio.sleep(self.poll_seconds)
        finally:
            for task in self._in_flight:
                task.cancel()

    async def close(self) -> None:
        """Close the sender's connections (the app's lifespan does, whether or not the worker
        ran)."""
        await self.sender.close()

    async def _step(self) -> None:
        # Cleared before looking, so a notice() that comes while we claim is not lost.
        self._wake.clear()
        if self._finished:
            finished, self._finished = self._finished, []
            await self._record(finished)
        room = self.max_in_flight - len(self._in_flight)
        claimed = await self._claim(min(room, BATCH)) if room > 0 else []
        for event in claimed:
            task = asyncio.create_task(self._attempt(event))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        if (claimed and len(claimed) == min(room, BATCH)) or self._finished:
            return  # more may be due, or outcomes wait to be recorded: no waiting
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    def _done(self, task: asyncio.Task[events.Outcome]) -> None:
        self._in_flight.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # the sender answers every failure; this is a bug: keep it seen
            log.error("a delivery attempt raised; its lease will run out", exc_info=error)
            return
        self._finished.append(task.result())
        self._wake.set()

    async def _claim(self, limit: int) -> list[events.Claimed]:
        now = self.clock.now_ms()
        return await self.database.write(
            lambda c: events.claim_due_events(c, now_ms=now, lease_ms=LEASE_MS, limit=limit)
        )

    async def _attempt(self, event: events.Claimed) -> events.Outcome:
        outcome = await self.sender.send(event, now_s=self.clock.now_ms() // 1000)
        result = "delivered" if outcome.delivered else "failed"
        self.metrics.callback_attempts.labels(result).inc()
        return outcome

    async def _record(self, outcomes: list[events.Outcome]) -> None:
        if not outcomes:
            return
        now = self.clock.now_ms()
        schedule = self.schedule
        await self.database.write(
            lambda c: events.record_outcomes(c, outcomes, now_ms=now, schedule=schedule)
        )
