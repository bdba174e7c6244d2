"""``meetd serve`` as a real process: the first account's credentials, printed once."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meetd.store.accounts import get_application
from meetd.store.database import open_database
from tests import support
from tests.cli.runner import ACCOUNT_KEYS, meetd, one_json_object
from tests.e2e_lifetime.servers import (
    STARTUP_SECONDS,
    ServerPool,
    server_pool,
    wait_healthy,
)

CREDENTIALS = re.compile(r"API key:\s+(\S+)\s+API secret:\s+(\S+)")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerPool]:
    with server_pool(tmp_path / "logs") as pool:
        yield pool


@pytest.mark.e2e
def test_serve_prints_the_first_account_once_and_it_works(
    servers: ServerPool, data_dir: Path, database_url: str
) -> None:
    server = servers.start(data_dir, database_url=database_url)
    printed = CREDENTIALS.findall(server.stdout)
    assert len(printed) == 1, server.stdout
    api_key, api_secret = printed[0]
    assert "only this once" in server.stdout

    def create(url: str) -> httpx.Response:
        return httpx.post(
            f"{url}/v1/meetings/rooms",
            auth=(api_key, api_secret),
            json={"display_name": "first"},
            timeout=10,
        )

    response = create(server.url)
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == "first"
    server.stop()
    # uvicorn ends by re-raising the SIGTERM it handled, after a graceful shutdown.
    assert server.process.returncode in (0, -signal.SIGTERM), server.stderr[-2000:]
    assert "Application shutdown complete" in server.stderr
    assert "startup heap frozen for the garbage collector" in server.stderr

    again = servers.start(data_dir, database_url=database_url)
    assert "API secret" not in again.stdout
    assert api_secret not in again.stdout + again.stderr
    assert create(again.url).status_code == 201


def _signature_secret(database_url: str, application_id: str) -> str:
    database = open_database(database_url)
    try:
        application = database.read_blocking(lambda c: get_application(c, application_id))
    finally:
        database.close()
    return application.signature_secret


@pytest.mark.e2e
def test_serve_shows_the_default_applications_signature_secret(
    servers: ServerPool, data_dir: Path, database_url: str
) -> None:
    """What callbacks to the default application are signed with (docs/callbacks.md)."""
    server = servers.start(data_dir, database_url=database_url)
    application_id = re.findall(r"Application ID:\s+(\S+)", server.stdout)[0]
    shown = re.findall(r"Signature secret:\s+(\S+)", server.stdout)
    assert shown == [_signature_secret(database_url, application_id)], server.stdout


@pytest.mark.e2e
def test_serve_json_prints_the_first_account_whole(
    servers: ServerPool, data_dir: Path, database_url: str
) -> None:
    server = servers.start(data_dir, database_url=database_url, args=("--json",))
    printed = json.loads(server.stdout)
    assert printed["url"] == server.url
    first = printed["first_account"]
    assert set(first) == ACCOUNT_KEYS
    assert first["signature_secret"] == _signature_secret(database_url, first["application_id"])


@pytest.mark.e2e
def test_serve_json_is_printed_once_connections_are_taken(
    servers: ServerPool, data_dir: Path, database_url: str
) -> None:
    """A script that reads the line and connects at once is not refused: the port listens
    before the line is printed (it was refused for 0.4 to 2 s before)."""
    server = servers.launch(data_dir, database_url=database_url, args=("--json",))
    deadline = time.monotonic() + STARTUP_SECONDS
    while "\n" not in server.stdout and server.process.poll() is None:
        assert time.monotonic() < deadline, server.stderr
        time.sleep(0.005)
    url = json.loads(server.stdout.splitlines()[0])["url"]
    assert url == server.url
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5):
        pass
    assert httpx.get(f"{url}/healthz", timeout=STARTUP_SECONDS).status_code == 200


def test_serve_writes_only_json_log_lines_on_stderr(servers: ServerPool, data_dir: Path) -> None:
    """The progress lines were plain text among the JSON records."""
    server = servers.start(data_dir)
    server.stop()
    records = [json.loads(line) for line in server.stderr.splitlines()]
    messages = [record["message"] for record in records]
    assert any(m.startswith("database migrated to version") for m in messages), messages
    assert "first account created" in messages
    serving = next(r for r in records if "serving on" in r["message"])
    assert serving["url"] == server.url and serving["logger"] == "meetd.serve"
    assert "API secret" in server.stdout  # the credentials stay on stdout, not in the log
    assert all(secret not in server.stderr for _, secret in CREDENTIALS.findall(server.stdout))


@pytest.mark.e2e
def test_serve_names_the_bound_address_and_the_links_address(
    servers: ServerPool, data_dir: Path
) -> None:
    """With --public-url, "serving on" showed only the public URL."""
    server = servers.start(data_dir, args=("--public-url", "https://meet.example.com/"))
    records = [json.loads(line) for line in server.stderr.splitlines()]
    serving = next(r for r in records if "serving on" in r["message"])
    assert (serving["listening"], serving["url"]) == (server.url, "https://meet.example.com")
    assert f"serving on {server.url}, links use https://meet.example.com" in serving["message"]
    assert not [r for r in records if r["level"] == "warning"]


@pytest.mark.e2e
def test_serve_on_every_interface_warns_that_links_name_no_reachable_host(
    servers: ServerPool, data_dir: Path
) -> None:
    server = servers.start(data_dir, args=("--host", "0.0.0.0"))
    records = [json.loads(line) for line in server.stderr.splitlines()]
    warnings = [r for r in records if r["level"] == "warning" and r["logger"] == "meetd.serve"]
    assert len(warnings) == 1, records
    assert "--public-url" in warnings[0]["message"]
    assert warnings[0]["url"].startswith("http://0.0.0.0:")


@pytest.mark.e2e
def test_serve_prints_nothing_when_an_account_exists(
    servers: ServerPool, data_dir: Path, store: list[str], database_url: str
) -> None:
    one_json_object(meetd("accounts", "create", "--json", *store))
    server = servers.start(data_dir, database_url=database_url)
    assert "API secret" not in server.stdout


@pytest.mark.e2e
def test_servers_starting_together_on_an_empty_database_make_one_account(
    servers: ServerPool, tmp_path: Path
) -> None:
    """ "With an empty database it creates an account and prints its API key and secret
    once" — also when several processes start on one PostgreSQL database at the same moment.
    A race shows only sometimes, so the start is tried a few times on fresh databases."""
    for attempt in range(3):
        with support.postgres_schema() as url:
            try:
                group = [
                    servers.launch(tmp_path / f"{attempt}-{i}", database_url=url) for i in range(3)
                ]
                for server in group:
                    wait_healthy(server)
                printed = [CREDENTIALS.findall(server.stdout) for server in group]
                assert sum(len(found) for found in printed) == 1, f"printed: {printed}"
                accounts = [
                    meetd("applications", "create", "--account", key, "--database-url", url)
                    for found in printed
                    for key, _ in found
                ]
                assert all(result.exit_code == 0 for result in accounts)
            finally:
                servers.stop_all()
