"""Helpers for tests: accounts with keys, auth headers, PostgreSQL schemas, real servers."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.store import accounts, events

# A room's fields in the order Vonage sent them (contract §4, The Room object); callback_urls
# follows only when one is set.
ROOM_FIELDS = (
    "id",
    "display_name",
    "metadata",
    "type",
    "expires_at",
    "recording_options",
    "meeting_code",
    "_links",
    "created_at",
    "is_available",
    "expire_after_use",
    "theme_id",
    "initial_join_options",
    "join_approval_level",
    "ui_settings",
    "available_features",
)

POSTGRES_URL = os.environ.get("MEETD_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REQUIRED = {part.strip() for part in os.environ.get("MEETD_REQUIRE", "").split(",") if part}

_PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY_PEM = _PRIVATE_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PUBLIC_KEY_PEM = (
    _PRIVATE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def unavailable(service: str, reason: str) -> None:
    """Skip on a bare machine; fail when MEETD_REQUIRE names the service."""
    if service in REQUIRED:
        pytest.fail(f"{service} is required (MEETD_REQUIRE) but {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose search_path is a fresh schema, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        unavailable("postgres", f"cannot connect to {POSTGRES_URL}: {error}".splitlines()[0])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick), for a server to take."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Caller:
    account_id: str
    api_key: str
    api_secret: str
    application_id: str
    clock: FakeClock

    @property
    def basic(self) -> dict[str, str]:
        return basic_header(self.api_key, self.api_secret)

    def bearer(self, **claims: Any) -> dict[str, str]:
        """A JWT as the SDKs send it, issued now by the app's clock."""
        claims.setdefault("iat", self.clock.now_ms() // 1000)
        return bearer_header(self.application_id, **claims)


def basic_header(api_key: str, api_secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def sign_jwt(application_id: str, *, key: str = PRIVATE_KEY_PEM, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"application_id": application_id, "iat": now, "jti": str(uuid.uuid4())}
    body.update(claims)
    algorithm = body.pop("_alg", "RS256")
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def bearer_header(application_id: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_jwt(application_id, **claims)}"}


def create_room(client: TestClient, caller: Caller, **body: Any) -> dict[str, Any]:
    """A room made through the API (named "room" unless ``display_name`` says otherwise)."""
    response = client.post(
        "/v1/meetings/rooms", headers=caller.basic, json={"display_name": "room", **body}
    )
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


def assert_error(response: Any, status: int, name: str, message: str) -> None:
    """The contract's error body (§3), exactly."""
    assert response.status_code == status, response.text
    assert response.json() == {"message": message, "name": name, "status": status}


def assert_invalid(response: Any, message: str) -> None:
    assert_error(response, 400, "InputValidationError", message)


def create_account(client: TestClient, clock: FakeClock, name: str = "test") -> Caller:
    """An account whose default application verifies JWTs signed with PRIVATE_KEY_PEM."""
    database = client.app.state.services.database  # type: ignore[attr-defined]
    api_key = f"key{uuid.uuid4().hex[:8]}"
    api_secret = f"secret-{uuid.uuid4().hex}"

    def create(conn: Any) -> accounts.Account:
        account = accounts.create_account(
            conn, name=name, api_key=api_key, api_secret=api_secret, now_ms=clock.now_ms()
        )
        conn.execute(
            "UPDATE applications SET public_key_pem = ? WHERE id = ?",
            (PUBLIC_KEY_PEM, account.default_application_id),
        )
        return account

    account = database.write_blocking(create)
    return Caller(account.id, api_key, api_secret, account.default_application_id, clock)


def emit_event(services: Any, caller: Caller, room_id: str, event: dict[str, Any]) -> str:
    """An event through ``store.events.emit_event``, the call later features emit with
    (sessions, recordings), at the app's clock; its id."""
    now = services.clock.now_ms()
    record = services.database.write_blocking(
        lambda c: events.emit_event(
            c,
            application_id=caller.application_id,
            room_id=room_id,
            event=event,
            metadata=None,
            now_ms=now,
        )
    )
    event_id: str = record.id
    return event_id
