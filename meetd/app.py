"""``create_app``: the one place meetd's parts are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator

from meetd.api.asgi import MeetdASGI, Router
from meetd.api.auth import Authenticator
from meetd.api.context import Services
from meetd.api.representations import RoomBodies
from meetd.api.routes import all_resources
from meetd.clock import Clock, SystemClock
from meetd.delivery.sender import Sender
from meetd.delivery.worker import DeliveryWorker
from meetd.domain.room_keys import CODES_PER_EPOCH, RoomKeys
from meetd.files.cleanup import keep_deleting_stale_uploads
from meetd.files.factory import open_file_store
from meetd.metrics import Metrics
from meetd.secret_key import derive_key, key_id, load_or_create_secret_key
from meetd.settings import Settings
from meetd.store import migrations
from meetd.store.database import open_database
from meetd.store.rooms import highest_serial, keys_of
from meetd.sweeper import ExpirySweeper

log = logging.getLogger("meetd")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_sweeper: bool = True,
    freeze_heap: bool = False,
    warm_codes: bool = False,
) -> MeetdASGI:
    """The ASGI app. Tests pass a FakeClock and ``run_sweeper=False``: no
    background tasks then (the sweeper, the callback delivery worker, the upload cleanup);
    they call ``services.sweeper.sweep_once()`` and ``services.delivery.deliver_once()``
    themselves. ``meetd serve`` passes ``freeze_heap`` (:func:`freeze_startup_heap`) and
    ``warm_codes`` (:func:`warm_meeting_codes`)."""
    secret = load_or_create_secret_key(settings.data_dir, settings.secret_key)
    metrics = Metrics()
    clock = clock or SystemClock()
    services = Services(
        settings=settings,
        clock=clock,
        metrics=metrics,
        signing_key=derive_key(secret, "host-token"),
        key_id=key_id(secret),
        room_bodies=RoomBodies(settings.public_url),
        files=open_file_store(settings, derive_key(secret, "files"), clock),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: MeetdASGI) -> AsyncIterator[None]:
        database = await asyncio.to_thread(open_database, settings.database_url)
        try:
            await database.write(migrations.upgrade)
            services.room_keys = await database.write(keys_of)
            if warm_codes:
                warm_meeting_codes(services.room_keys, await database.write(highest_serial))
            services.database = database
            services.auth = Authenticator(database, services.clock)
            services.delivery = DeliveryWorker(
                database,
                clock,
                metrics,
                Sender(block_private_addresses=settings.callback_block_private_addresses),
                schedule=settings.callback_retry_schedule,
            )
            services.sweeper = ExpirySweeper(
                database, clock, metrics, on_expired=services.delivery.notice
            )
            background = []
            if run_sweeper:
                background = [
                    asyncio.create_task(services.sweeper.run()),
                    asyncio.create_task(services.delivery.run()),
                    asyncio.create_task(keep_deleting_stale_uploads(services.files, clock)),
                ]
            if freeze_heap:
                freeze_startup_heap()
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await services.delivery.close()
        finally:
            await database.close_reads()
            await asyncio.to_thread(database.close)

    app = MeetdASGI(Router(all_resources()), metrics, lifespan)
    app.state.services = services
    return app


def warm_meeting_codes(keys: RoomKeys, highest_serial: int) -> None:
    """Fills the tables of the meeting codes' current epoch and of those below it
    (``RoomKeys.warm_codes``) in a thread of its own, while the server starts serving.
    Filled only as codes are asked for, they missed four lookups in five over a fresh
    server's first 13 000 creates, and the hashes took a fifth of the create handler's time
    (cProfile). Tests skip it: it is CPU time, not behaviour."""
    threading.Thread(
        target=keys.warm_codes,
        args=(highest_serial // CODES_PER_EPOCH,),
        name="meetd-warm-codes",
        daemon=True,
    ).start()


def freeze_startup_heap() -> None:
    """Takes every object that exists once the server has started out of the cyclic garbage
    collector's sight (``gc.freeze``).

    A full collection walks every tracked object, and with meetd's modules and libraries
    loaded there are some 50 000: under load, each full collection held the event loop for
    16 to 25 ms, every few seconds (measured with ``gc.callbacks``; docs/performance.md). Those
    objects live as long as the process, so the collector has nothing to find among them.
    Garbage is collected first, so none is kept for good. Not in tests, which build many apps
    in one process and would keep each one's cycles."""
    gc.collect()
    gc.freeze()
    log.info(
        "startup heap frozen for the garbage collector", extra={"objects": gc.get_freeze_count()}
    )
