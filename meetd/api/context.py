"""What handlers need, gathered once by ``create_app`` and kept on ``app.state.services``."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request

from meetd.api.auth import Authenticator, Principal
from meetd.api.requests import header
from meetd.clock import Clock
from meetd.settings import Settings
from meetd.store.database import Database

if TYPE_CHECKING:
    from meetd.api.representations import RoomBodies
    from meetd.delivery.worker import DeliveryWorker
    from meetd.domain.room_keys import RoomKeys
    from meetd.files import FileStore
    from meetd.metrics import Metrics
    from meetd.sweeper import ExpirySweeper


@dataclasses.dataclass(slots=True)
class Services:
    settings: Settings
    clock: Clock
    metrics: Metrics
    signing_key: bytes
    key_id: str
    room_bodies: RoomBodies
    files: FileStore
    database: Database | None = None
    auth: Authenticator | None = None
    sweeper: ExpirySweeper | None = None
    delivery: DeliveryWorker | None = None
    room_keys: RoomKeys | None = None

    @property
    def db(self) -> Database:
        """The database, once the app's lifespan has opened it."""
        assert self.database is not None, "the app's lifespan has not started"
        return self.database

    @property
    def keys(self) -> RoomKeys:
        """The database's room keys, once the app's lifespan has read them."""
        assert self.room_keys is not None, "the app's lifespan has not started"
        return self.room_keys

    def notice_events(self) -> None:
        """Events were committed here: the delivery worker (when one runs) looks at once."""
        if self.delivery is not None:
            self.delivery.notice()


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def authenticate(request: Request) -> tuple[Services, Principal]:
    """The services and the calling application; raises AuthenticationError (401)."""
    found = services(request)
    assert found.auth is not None, "the app's lifespan has not started"
    principal = await found.auth.authenticate(header(request, b"authorization"))
    return found, principal
