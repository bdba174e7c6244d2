"""GET /dial-in-numbers (contract §8): the operator's list, the same for every application,
``[]`` by default."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.domain.dial_in_numbers import DialInNumber
from meetd.store import dial_in_numbers
from meetd.store.database import Database
from tests.support import Caller

PREFIXES = ["/v1/meetings", "/beta/meetings"]


def add(client: TestClient, clock: FakeClock, *entry: str) -> None:
    database: Database = client.app.state.services.database  # type: ignore[attr-defined]
    number = DialInNumber(*entry)
    database.write_blocking(
        lambda c: dial_in_numbers.add_dial_in_number(c, number, now_ms=clock.now_ms())
    )


@pytest.mark.parametrize("prefix", PREFIXES)
def test_none_by_default(client: TestClient, account: Caller, prefix: str) -> None:
    response = client.get(f"{prefix}/dial-in-numbers", headers=account.basic)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"[]"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_application_sees_the_list_in_the_order_added(
    client: TestClient, account: Caller, other_account: Caller, clock: FakeClock, prefix: str
) -> None:
    # Added within one millisecond (the fake clock stands still), and not in number order.
    add(client, clock, "541139862166", "es-AR", "Argentina")
    add(client, clock, "442381924626", "en-GB", "United Kingdom")
    add(client, clock, "4930123456", "de-DE", "Deutschland")
    expected = [
        {"number": "541139862166", "locale": "es-AR", "display_name": "Argentina"},
        {"number": "442381924626", "locale": "en-GB", "display_name": "United Kingdom"},
        {"number": "4930123456", "locale": "de-DE", "display_name": "Deutschland"},
    ]
    for headers in (account.basic, account.bearer(), other_account.basic):
        response = client.get(f"{prefix}/dial-in-numbers", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == expected
        assert all(list(entry) == ["number", "locale", "display_name"] for entry in body)


def test_a_clock_that_steps_back_keeps_the_order(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    add(client, clock, "442381924626", "en-GB", "United Kingdom")
    clock.advance(-3600)
    add(client, clock, "541139862166", "es-AR", "Argentina")
    body = client.get("/v1/meetings/dial-in-numbers", headers=account.basic).json()
    assert [entry["number"] for entry in body] == ["442381924626", "541139862166"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_credentials_are_needed(client: TestClient, prefix: str) -> None:
    for headers in ({}, {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}):
        response = client.get(f"{prefix}/dial-in-numbers", headers=headers)
        assert response.status_code == 401
        assert response.json()["title"] == "Unauthorized"
