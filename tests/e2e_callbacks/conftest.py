"""Real ``meetd serve`` processes that send callbacks to a loopback :class:`Receiver`.

A tenant is provisioned the way an operator does it, through the console script: ``meetd
accounts create``, then ``meetd applications create --generate-private-key
--rooms-callback-url ...``, which prints the application's signature secret (the default
application's is never printed, so the tests use a second application and call the API with
RS256 JWTs signed by its generated key, as the SDKs do).

The servers run with a short retry schedule (``1,1,1``: four attempts a second apart) and
one-second instant rooms, so retries, give-ups and expiries happen within a test. The
shared ``deployment`` runs once on SQLite and once on PostgreSQL (skipped on a bare machine,
required under ``MEETD_REQUIRE=postgres``); tests that kill or double servers start their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meetd.store.database import Connection, open_database
from tests import support
from tests.e2e_callbacks.receiver import Receiver, running_receiver
from tests.e2e_lifetime.servers import Server, ServerPool, meetd_command, server_pool

API = "/v1/meetings"
SCHEDULE = "1,1,1"
SERVER_ENV = {"MEETD_CALLBACK_RETRY_SCHEDULE": SCHEDULE, "MEETD_INSTANT_ROOM_TTL_SECONDS": "1"}
APPLICATION_PATH = "/app"  # where the tenant's application sends rooms events


def run_meetd(*args: str) -> dict[str, Any]:
    """``meetd ARGS --json`` through the console script; its one JSON object."""
    done = subprocess.run(
        [*meetd_command(), *args, "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"meetd {' '.join(args)}: {done.stderr.strip()}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclasses.dataclass(frozen=True)
class Tenant:
    """An application with a signature secret (for verifying) and a key (for calling)."""

    application_id: str
    signature_secret: str
    private_key: str

    def api(self, server: Server) -> httpx.Client:
        return httpx.Client(base_url=f"{server.url}{API}", auth=JWTAuth(self), timeout=10)


class JWTAuth(httpx.Auth):
    """A fresh RS256 JWT per request, as the SDKs send. The key is loaded once: loading a PEM
    checks the RSA key, which takes longer than the request."""

    def __init__(self, tenant: Tenant) -> None:
        self.application_id = tenant.application_id
        key = serialization.load_pem_private_key(tenant.private_key.encode(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        claims = {"application_id": self.application_id, "iat": int(time.time())}
        token = jwt.encode({**claims, "jti": str(uuid.uuid4())}, self.key, algorithm="RS256")
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def store_options(data_dir: Path, database_url: str) -> list[str]:
    return ["--data-dir", str(data_dir), "--database-url", database_url]


def provision(data_dir: Path, database_url: str, rooms_callback_url: str | None) -> Tenant:
    """An account and a JWT application whose rooms events go to ``rooms_callback_url``."""
    store = store_options(data_dir, database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    account = run_meetd("accounts", "create", *store)
    key_file = data_dir / f"app-{account['api_key']}.pem"
    urls = ["--rooms-callback-url", rooms_callback_url] if rooms_callback_url else []
    application = run_meetd(
        "applications",
        "create",
        "--account",
        account["api_key"],
        "--generate-private-key",
        str(key_file),
        *urls,
        *store,
    )
    return Tenant(
        application["application_id"], application["signature_secret"], key_file.read_text()
    )


@contextlib.contextmanager
def database_url_for(backend: str, data_dir: Path) -> Iterator[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'meetd.sqlite3'}"
    else:
        with support.postgres_schema() as url:
            yield url


def write(database_url: str, fn: Callable[[Connection], Any]) -> Any:
    """Run ``fn`` in one committed transaction on a server's database, from the test."""
    database = open_database(database_url)
    try:
        return database.write_blocking(fn)
    finally:
        database.close()


def read(database_url: str, fn: Callable[[Connection], Any]) -> Any:
    database = open_database(database_url)
    try:
        return database.read_blocking(fn)
    finally:
        database.close()


@dataclasses.dataclass
class Deployment:
    """A running server, its database, one tenant, and the receiver its callbacks go to."""

    server: Server
    receiver: Receiver
    tenant: Tenant
    data_dir: Path
    database_url: str

    def api(self) -> httpx.Client:
        return self.tenant.api(self.server)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture(scope="module")
def deployment(
    backend: str, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One server per module and database, shared by its tests (each uses paths of its own)."""
    root = tmp_path_factory.mktemp(f"callbacks-{backend}")
    with database_url_for(backend, root / "data") as url, server_pool(root / "logs") as pool:
        tenant = provision(root / "data", url, receiver.url(APPLICATION_PATH))
        server = pool.start(root / "data", database_url=url, env=SERVER_ENV)
        # The pool stops the server before the PostgreSQL schema is dropped under it.
        yield Deployment(server, receiver, tenant, root / "data", url)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerPool]:
    """``servers.start(data_dir, database_url=..., env=...)``; all stopped after the test."""
    with server_pool(tmp_path / "logs") as pool:
        yield pool
