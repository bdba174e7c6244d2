"""``MEETD_CALLBACK_BLOCK_PRIVATE_ADDRESSES``: with it, no callback reaches loopback or
private addresses, by IP literal or by a name that resolves to one; without it (the default)
a server may call its own backend on localhost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.settings import Settings, build_settings
from tests import support


@pytest.fixture
def blocking_settings(tmp_path: Any, sqlite_url: str) -> Settings:
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": sqlite_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
            "callback_block_private_addresses": True,
            "callback_retry_schedule": "1",
        },
        environ={},
    )


@pytest.fixture
def blocking_client(blocking_settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(blocking_settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url="https://meet.example.test") as client:
        yield client


def deliver(client: TestClient) -> list[Any]:
    services = client.app.state.services  # type: ignore[attr-defined]
    outcomes: list[Any] = client.portal.call(services.delivery.deliver_once)  # type: ignore[union-attr]
    return outcomes


def delete_room_with_url(client: TestClient, caller: support.Caller, url: str) -> None:
    room = support.create_room(client, caller, callback_urls={"rooms_callback_url": url})
    assert (
        client.delete(f"/v1/meetings/rooms/{room['id']}", headers=caller.basic).status_code == 204
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is not a public address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is not a public address"),
        ("http://[::1]:9/hook", "::1 is not a public address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address"),
        ("http://localhost:9/hook", "localhost is a loopback name"),
    ],
)
def test_private_addresses_are_refused(
    blocking_client: TestClient, clock: FakeClock, url: str, reason: str
) -> None:
    caller = support.create_account(blocking_client, clock)
    delete_room_with_url(blocking_client, caller, url)

    (outcome,) = deliver(blocking_client)

    assert outcome.delivered is False
    assert outcome.status_code is None
    assert outcome.error == f"refused: {reason}"


def test_a_name_resolving_to_loopback_is_refused(
    blocking_client: TestClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name is checked by what it resolves to, by the connector itself: the addresses
    checked are the addresses connected to."""

    async def resolve(self: Any, host: str, port: int = 0, family: Any = 0) -> list[Any]:
        assert host == "internal.example.com"
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    monkeypatch.setattr(aiohttp.ThreadedResolver, "resolve", resolve)
    caller = support.create_account(blocking_client, clock)
    delete_room_with_url(blocking_client, caller, "http://internal.example.com:9/hook")

    (outcome,) = deliver(blocking_client)

    assert outcome.delivered is False
    assert outcome.error is not None
    assert "internal.example.com resolves only to loopback or private addresses" in outcome.error


def test_without_the_setting_localhost_is_called(
    client: TestClient, account: support.Caller
) -> None:
    hits: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(await request.read())
        return web.Response(status=204)

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = client.portal.call(start)  # type: ignore[union-attr]
    try:
        port = runner.addresses[0][1]
        delete_room_with_url(client, account, f"http://127.0.0.1:{port}/hook")
        (outcome,) = deliver(client)
    finally:
        client.portal.call(runner.cleanup)  # type: ignore[union-attr]
    assert outcome.delivered is True
    assert outcome.status_code == 204
    assert len(hits) == 1
    assert b'"event":"room:expired"' in hits[0]
