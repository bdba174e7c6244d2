"""Real ``meetd serve`` processes for the end-to-end tests.

Each server is provisioned the way an operator would do it, through the console script:
``meetd accounts create`` twice (two tenants), then ``meetd applications create
--generate-private-key`` for each account, so the SDKs sign JWTs with keys meetd generated.
Then ``meetd serve`` runs on a free loopback port, with TLS from a trustme CA (the Python SDK
speaks only https) or plain HTTP (what the Node SDK is pointed at).

Servers live for the whole session, once on SQLite and once on PostgreSQL in a fresh schema;
the PostgreSQL run skips on a bare machine and fails under ``MEETD_REQUIRE=postgres``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import vonage

from meetd.clock import SystemClock
from meetd.files.factory import open_file_store
from meetd.settings import build_settings
from meetd.store import recordings
from meetd.store.database import Connection, open_database
from tests import support

MEETD = Path(sys.executable).with_name("meetd")
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Application:
    """An application with a key pair: what an SDK is configured with."""

    application_id: str
    private_key: Path


@dataclasses.dataclass(frozen=True)
class Account:
    """An account (Basic credentials act on its default application) and one JWT application."""

    account_id: str
    api_key: str
    api_secret: str
    default_application_id: str
    application: Application


@dataclasses.dataclass(frozen=True)
class Server:
    url: str  # scheme://127.0.0.1:port, no trailing slash
    port: int
    ca_pem: Path | None  # the CA that signed the server's certificate; None for plain HTTP
    accounts: tuple[Account, Account]  # two tenants that must not see each other's rooms
    data_dir: Path
    database_url: str

    @property
    def store_options(self) -> list[str]:
        """What a ``meetd`` command needs to act on this server's state."""
        return ["--data-dir", str(self.data_dir), "--database-url", self.database_url]

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def http(self) -> httpx.Client:
        """An HTTP client for the server's URL that trusts its certificate."""
        return httpx.Client(base_url=self.url, verify=trust(self.ca_pem), timeout=10.0)


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    ca_pem: Path
    certfile: Path
    keyfile: Path


def run_meetd(*args: str) -> dict[str, str]:
    """Run a ``meetd`` command that prints one JSON object (``--json``) and return it."""
    done = subprocess.run(
        [str(MEETD), *args, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"meetd {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    result: dict[str, str] = json.loads(done.stdout)
    return result


def provision(store: list[str], data_dir: Path, name: str) -> Account:
    created = run_meetd("accounts", "create", "--name", name, *store)
    key_file = data_dir / f"{name}-app.pem"
    app = run_meetd(
        "applications",
        "create",
        "--account",
        created["api_key"],
        "--name",
        f"{name}-sdk",
        "--generate-private-key",
        str(key_file),
        *store,
    )
    return Account(
        account_id=created["account_id"],
        api_key=created["api_key"],
        api_secret=created["api_secret"],
        default_application_id=created["application_id"],
        application=Application(app["application_id"], Path(app["private_key_file"])),
    )


def trust(ca_pem: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_pem) if ca_pem else None)


def wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, log: Path, ca: Path | None
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with httpx.Client(verify=trust(ca), timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"meetd serve exited {process.returncode}:\n{log.read_text()}")
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"meetd serve did not answer {url}/healthz in time:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def database_for(backend: str, data_dir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{data_dir / 'meetd.sqlite3'}"
    else:
        with support.postgres_schema() as url:
            yield url


@contextlib.contextmanager
def serving(
    store: list[str], log: Path, tls: TLSFiles | None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``meetd serve`` on a free loopback port: yields the process, once healthy, and its URL."""
    port = support.free_port()
    command = [str(MEETD), "serve", "--host", "127.0.0.1", "--port", str(port), *store]
    if tls:
        command += ["--tls-certfile", str(tls.certfile), "--tls-keyfile", str(tls.keyfile)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        wait_until_healthy(process, url, log, tls.ca_pem if tls else None)
        yield process, url
    finally:
        stop(process)


@contextlib.contextmanager
def running_meetd(backend: str, data_dir: Path, tls: TLSFiles | None) -> Iterator[Server]:
    """Provision two accounts, start ``meetd serve``, yield it, stop it."""
    with database_for(backend, data_dir) as url:
        store = ["--data-dir", str(data_dir), "--database-url", url]
        accounts = (provision(store, data_dir, "alice"), provision(store, data_dir, "bob"))
        with serving(store, data_dir / "serve.log", tls) as (_, base):
            port = int(base.rsplit(":", 1)[1])
            yield Server(base, port, tls.ca_pem if tls else None, accounts, data_dir, url)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throwaway CA and a certificate for 127.0.0.1 and localhost that it signed."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca_pem))
    for index, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(files.certfile), append=index > 0)
    cert.private_key_pem.write_to_path(str(files.keyfile))
    return files


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture(scope="session")
def tls_server(
    backend: str, tls_files: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``meetd serve`` over https, trusted through ``tls_server.ca_pem``."""
    with running_meetd(backend, tmp_path_factory.mktemp(f"meetd-tls-{backend}"), tls_files) as s:
        yield s


@pytest.fixture(scope="session")
def http_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``meetd serve`` over plain HTTP."""
    with running_meetd(backend, tmp_path_factory.mktemp(f"meetd-http-{backend}"), None) as s:
        yield s


# -- the official Python SDK (vonage==3.17.4) ------------------------------------------------
MeetingsFactory = Callable[..., vonage.Meetings]


def sdk_client(server: Server, application_id: str, private_key: str) -> vonage.Client:
    client = vonage.Client(application_id=application_id, private_key=private_key)
    client.meetings_api_host(f"{server.hostport}/v1/meetings")
    client.meetings = vonage.Meetings(client)
    return client


@pytest.fixture
def connect(tls_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeetingsFactory]:
    """``connect(app)`` or ``connect(app_id, key_path)``: the SDK's Meetings for that caller."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca_pem))
    clients: list[vonage.Client] = []

    def connect(application: Application | str, private_key: str | None = None) -> Any:
        if isinstance(application, Application):
            application, private_key = application.application_id, str(application.private_key)
        assert private_key is not None
        clients.append(sdk_client(tls_server, application, private_key))
        return clients[-1].meetings

    yield connect
    # Close the SDK's keep-alive connections: an idle TLS connection holds up the server's
    # shutdown by 30 s (see test_serve.py). A caught ClientError's traceback keeps its
    # response, and with it a connection, alive in a reference cycle until collected.
    gc.collect()
    for client in clients:
        client.session.close()


@pytest.fixture
def meetings(tls_server: Server, connect: MeetingsFactory) -> vonage.Meetings:
    return connect(tls_server.accounts[0].application)


@pytest.fixture
def other_meetings(tls_server: Server, connect: MeetingsFactory) -> vonage.Meetings:
    """Another account's application: its rooms must be invisible to ``meetings``."""
    return connect(tls_server.accounts[1].application)


# -- recordings, made where the realtime service will make them -------------------------------
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def add_recorded_session(server: Server, room_id: str, *statuses: str) -> tuple[str, list[str]]:
    """A session in ``room_id`` with one recording per status, put into the server's database
    through :mod:`meetd.store.recordings`; uploaded ones get a file (``VIDEO``) in the
    server's file store. Returns the session id and the recording ids."""
    session_id = f"2_MX40{uuid.uuid4().hex}-fg"
    now = int(time.time() * 1000)
    ids = [str(uuid.uuid4()) for _ in statuses]
    settings = build_settings(
        {"data_dir": server.data_dir, "database_url": server.database_url}, environ={}
    )
    store = open_file_store(settings, b"unused: no links are signed here", SystemClock())

    def record(conn: Connection) -> list[str | None]:
        recordings.insert_session(conn, session_id=session_id, room_id=room_id, started_at=now)
        keys: list[str | None] = []
        for offset, (recording_id, status) in enumerate(zip(ids, statuses, strict=True)):
            started = now + offset * 1000
            row = recordings.insert_recording(
                conn, recording_id=recording_id, session_id=session_id, started_at=started
            )
            key = None
            if status == "uploaded":
                key = recordings.recording_storage_key(row.application_id, recording_id)
            recordings.update_recording(
                conn,
                recording_id,
                status=status,
                ended_at=None if status == "started" else started + 9000,
                storage_key=key,
            )
            keys.append(key)
        return keys

    database = open_database(server.database_url)
    try:
        keys = database.write_blocking(record)
    finally:
        database.close()
    for key in keys:
        if key is not None:
            store.write(key, VIDEO, content_type="video/mp4")
    return session_id, ids
