"""GET /rooms: pages by serial, HAL links as full URLs, totals and tenancy (contract §1, §4
List), with a property test that walking the links visits every room once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock
from meetd.settings import build_settings
from tests import support
from tests.support import Caller, assert_invalid, create_room

BASE = "https://meet.example.test"
ROOMS = "/v1/meetings/rooms"


def create_many(client: TestClient, caller: Caller, count: int) -> list[dict[str, Any]]:
    return [create_room(client, caller, display_name=f"room {i}") for i in range(count)]


def serial_of(client: TestClient, room_id: str) -> int:
    database = client.app.state.services.database  # type: ignore[attr-defined]
    row = database.read_blocking(
        lambda c: c.fetchone("SELECT serial FROM rooms WHERE id = ?", (room_id,))
    )
    return int(row[0])


def list_rooms(
    client: TestClient, caller: Caller, query: str = "", prefix: str = "/v1"
) -> dict[str, Any]:
    url = f"{prefix}/meetings/rooms" + (f"?{query}" if query else "")
    response = client.get(url, headers=caller.basic)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    embedded = page["_embedded"]
    rooms = embedded["rooms"] if isinstance(embedded, dict) else embedded
    return [room["id"] for room in rooms]


def href(query: str, prefix: str = "/v1") -> dict[str, str]:
    return {"href": f"{BASE}{prefix}/meetings/rooms?{query}"}


# -- shape ------------------------------------------------------------------------------------


def test_empty_list(client: TestClient, account: Caller) -> None:
    assert list_rooms(client, account) == {
        "page_size": 20,
        "_embedded": [],
        "_links": {"first": href("page_size=20"), "self": href("page_size=20")},
        "total_items": 0,
    }


def test_beta_embeds_an_object_with_rooms(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 2)
    beta = list_rooms(client, account, prefix="/beta")
    v1 = list_rooms(client, account)
    assert beta["_embedded"] == {"rooms": rooms}
    assert v1["_embedded"] == rooms
    assert beta["_links"] == {
        "first": href("page_size=20", "/beta"),
        "self": href("page_size=20", "/beta"),
    }
    assert beta["total_items"] == v1["total_items"] == 2


def test_listed_rooms_are_the_bodies_read_returns(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 3)
    listed = list_rooms(client, account)["_embedded"]
    assert listed == rooms
    for room in listed:
        assert client.get(f"{ROOMS}/{room['id']}", headers=account.basic).json() == room


def test_default_page_is_the_first_twenty_rooms(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 23)
    page = list_rooms(client, account)
    assert page["page_size"] == 20
    assert ids(page) == [room["id"] for room in rooms[:20]]
    assert page["total_items"] == 23
    after = serial_of(client, rooms[19]["id"]) + 1
    assert page["_links"] == {
        "first": href("page_size=20"),
        "self": href("page_size=20"),
        "next": href(f"page_size=20&start_id={after}"),
    }


@pytest.mark.parametrize("size", [1, 2, 7, 100])
def test_page_size_limits_the_page(client: TestClient, account: Caller, size: int) -> None:
    rooms = create_many(client, account, 8)
    page = list_rooms(client, account, f"page_size={size}")
    assert page["page_size"] == size
    assert ids(page) == [room["id"] for room in rooms[:size]]
    assert page["total_items"] == 8
    assert page["_links"]["first"] == href(f"page_size={size}")
    assert ("next" in page["_links"]) == (size < 8)


def test_whole_decimals_are_taken_as_joi_converted_them(
    client: TestClient, account: Caller
) -> None:
    rooms = create_many(client, account, 3)
    first = serial_of(client, rooms[0]["id"])
    page = list_rooms(client, account, f"page_size=2.0&start_id=%2B{first}&end_id=1e15")
    assert page["page_size"] == 2
    assert ids(page) == [room["id"] for room in rooms[:2]]
    # The links carry the numbers read, in plain digits.
    assert page["_links"]["self"] == href(f"page_size=2&start_id={first}&end_id={10**15}")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page_size=0", '"page_size" must be greater than or equal to 1'),
        ("page_size=101", '"page_size" must be less than or equal to 100'),
        ("page_size=-3", '"page_size" must be greater than or equal to 1'),
        ("page_size=abc", '"page_size" must be a number'),
        ("page_size=", '"page_size" must be a number'),
        ("page_size=2.5", '"page_size" must be an integer'),
        ("page_size=0x10", '"page_size" must be a number'),
        ("start_id=1.5", '"start_id" must be an integer'),
        ("start_id=abc", '"start_id" must be a number'),
        ("start_id=-1", '"start_id" must be greater than or equal to 0'),
        ("end_id=x1", '"end_id" must be a number'),
        ("end_id=-5", '"end_id" must be greater than or equal to 0'),
    ],
)
def test_bad_query_values_are_named(
    client: TestClient, account: Caller, query: str, message: str
) -> None:
    assert_invalid(client.get(f"{ROOMS}?{query}", headers=account.basic), message)


# The largest serial a client may send: 2**53 - 1, the largest integer JSON clients (the
# Node SDK) read exactly, which every store's integer also holds.
MAX_SERIAL = 2**53 - 1


@pytest.mark.parametrize("name", ["start_id", "end_id"])
@pytest.mark.parametrize("value", [MAX_SERIAL + 1, 2**63, 2**64, 10**40])
def test_serials_beyond_the_limit_are_a_400_not_a_500(
    client: TestClient, account: Caller, name: str, value: int
) -> None:
    create_room(client, account)
    assert_invalid(
        client.get(f"{ROOMS}?{name}={value}", headers=account.basic),
        f'"{name}" must be less than or equal to {MAX_SERIAL}',
    )


def test_largest_serial_is_accepted(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 2)
    assert ids(list_rooms(client, account, f"end_id={MAX_SERIAL}")) == [r["id"] for r in rooms]
    page = list_rooms(client, account, f"start_id={MAX_SERIAL}")
    assert ids(page) == []
    assert page["_links"]["prev"] == href(f"page_size=20&end_id={MAX_SERIAL}")


# -- start_id / end_id ------------------------------------------------------------------------


def test_start_id_is_inclusive(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 5)
    serials = [serial_of(client, room["id"]) for room in rooms]
    page = list_rooms(client, account, f"page_size=2&start_id={serials[2]}")
    assert ids(page) == [rooms[2]["id"], rooms[3]["id"]]
    assert page["_links"] == {
        "first": href("page_size=2"),
        "self": href(f"page_size=2&start_id={serials[2]}"),
        "prev": href(f"page_size=2&end_id={serials[2]}"),
        "next": href(f"page_size=2&start_id={serials[3] + 1}"),
    }


def test_end_id_is_exclusive(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 5)
    serials = [serial_of(client, room["id"]) for room in rooms]
    page = list_rooms(client, account, f"start_id={serials[1]}&end_id={serials[3]}")
    assert ids(page) == [rooms[1]["id"], rooms[2]["id"]]
    assert page["_links"] == {
        "first": href("page_size=20"),
        "self": href(f"page_size=20&start_id={serials[1]}&end_id={serials[3]}"),
        "prev": href(f"page_size=20&end_id={serials[1]}"),
        "next": href(f"page_size=20&start_id={serials[2] + 1}"),
    }


def test_only_end_id_gives_the_last_rooms_before_it(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 6)
    serials = [serial_of(client, room["id"]) for room in rooms]
    page = list_rooms(client, account, f"page_size=2&end_id={serials[4]}")
    assert ids(page) == [rooms[2]["id"], rooms[3]["id"]]
    assert page["_links"] == {
        "first": href("page_size=2"),
        "self": href(f"page_size=2&end_id={serials[4]}"),
        "prev": href(f"page_size=2&end_id={serials[2]}"),
        "next": href(f"page_size=2&start_id={serials[3] + 1}"),
    }


def test_end_id_past_every_room_gives_the_last_page(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 5)
    serials = [serial_of(client, room["id"]) for room in rooms]
    page = list_rooms(client, account, f"page_size=3&end_id={serials[-1] + 1000}")
    assert ids(page) == [room["id"] for room in rooms[2:]]
    assert "next" not in page["_links"]
    assert page["_links"]["prev"] == href(f"page_size=3&end_id={serials[2]}")


def test_end_id_before_every_room_is_an_empty_page_with_next(
    client: TestClient, account: Caller
) -> None:
    rooms = create_many(client, account, 3)
    first = serial_of(client, rooms[0]["id"])
    page = list_rooms(client, account, f"end_id={first}")
    assert ids(page) == []
    assert page["total_items"] == 3
    assert "prev" not in page["_links"]
    assert page["_links"]["next"] == href(f"page_size=20&start_id={first}")
    assert ids(list_rooms(client, account, f"start_id={first}")) == [r["id"] for r in rooms]


def test_start_id_past_every_room_is_an_empty_page_with_prev(
    client: TestClient, account: Caller
) -> None:
    rooms = create_many(client, account, 3)
    beyond = serial_of(client, rooms[-1]["id"]) + 10
    page = list_rooms(client, account, f"start_id={beyond}")
    assert ids(page) == []
    assert "next" not in page["_links"]
    assert page["_links"]["prev"] == href(f"page_size=20&end_id={beyond}")
    previous = list_rooms(client, account, f"end_id={beyond}")
    assert ids(previous) == [room["id"] for room in rooms]


@pytest.mark.parametrize(("start", "end"), [(3, 1), (2, 2)])
def test_bounds_that_hold_no_serial_give_no_prev_or_next(
    client: TestClient, account: Caller, start: int, end: int
) -> None:
    """``start_id`` at or past ``end_id`` selects no serial, so the page has no place among
    the rooms: a ``next`` from its bounds would go backwards (to ``end_id``) and a ``prev``
    forwards (to ``start_id``). Only ``first`` and ``self``."""
    rooms = create_many(client, account, 5)
    serials = [serial_of(client, room["id"]) for room in rooms]
    query = f"start_id={serials[start]}&end_id={serials[end]}"
    page = list_rooms(client, account, query)
    assert ids(page) == []
    assert page["total_items"] == 5
    assert page["_links"] == {"first": href("page_size=20"), "self": href(f"page_size=20&{query}")}


def test_links_appear_only_when_rooms_lie_beyond(client: TestClient, account: Caller) -> None:
    rooms = create_many(client, account, 3)
    serials = [serial_of(client, room["id"]) for room in rooms]
    whole = list_rooms(client, account, "page_size=3")
    assert set(whole["_links"]) == {"first", "self"}
    first = list_rooms(client, account, "page_size=1")
    assert set(first["_links"]) == {"first", "self", "next"}
    middle = list_rooms(client, account, f"page_size=1&start_id={serials[1]}")
    assert set(middle["_links"]) == {"first", "self", "prev", "next"}
    last = list_rooms(client, account, f"page_size=1&start_id={serials[2]}")
    assert set(last["_links"]) == {"first", "self", "prev"}


def test_links_ignore_rooms_of_other_applications(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    create_room(client, other_account)
    mine = create_room(client, account)
    create_room(client, other_account)
    serial = serial_of(client, mine["id"])
    page = list_rooms(client, account, f"start_id={serial}")
    assert ids(page) == [mine["id"]]
    assert set(page["_links"]) == {"first", "self"}
    assert ids(list_rooms(client, account, f"end_id={serial}")) == []


# -- totals and tenancy -------------------------------------------------------------------------


def test_total_counts_expired_rooms_and_not_deleted_ones(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    rooms = create_many(client, account, 4)
    clock.advance(601)
    sweeper = client.app.state.services.sweeper  # type: ignore[attr-defined]
    assert len(client.portal.call(sweeper.sweep_once)) == 4  # type: ignore[union-attr]
    fresh = create_room(client, account)
    assert client.delete(f"{ROOMS}/{rooms[0]['id']}", headers=account.basic).status_code == 204
    page = list_rooms(client, account)
    assert page["total_items"] == 4
    assert ids(page) == [room["id"] for room in rooms[1:]] + [fresh["id"]]
    assert [room["is_available"] for room in page["_embedded"]] == [False] * 3 + [True]


def test_total_is_per_application_whatever_the_page(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    create_many(client, account, 5)
    create_many(client, other_account, 2)
    serial = serial_of(client, ids(list_rooms(client, account))[3])
    assert list_rooms(client, account, "page_size=1")["total_items"] == 5
    assert list_rooms(client, account, f"start_id={serial}")["total_items"] == 5
    assert list_rooms(client, other_account)["total_items"] == 2


def test_other_applications_rooms_are_never_listed(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    mine, theirs = [], []
    for i in range(6):
        (mine if i % 2 else theirs).append(create_room(client, account if i % 2 else other_account))
    assert ids(list_rooms(client, account)) == [room["id"] for room in mine]
    assert ids(list_rooms(client, other_account)) == [room["id"] for room in theirs]
    jwt_page = client.get(ROOMS, headers=account.bearer()).json()
    assert ids(jwt_page) == [room["id"] for room in mine]


def walk(client: TestClient, caller: Caller, url: str, direction: str) -> Iterator[dict[str, Any]]:
    """Every page from ``url`` on, following ``direction`` links, with a loop guard."""
    seen = set()
    while True:
        assert url not in seen, f"the {direction} links loop back to {url}"
        seen.add(url)
        assert url.startswith(BASE + "/")
        response = client.get(url, headers=caller.basic)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        yield page
        link = page["_links"].get(direction)
        if link is None:
            return
        url = link["href"]


@pytest.mark.parametrize("prefix", ["/v1", "/beta"])
def test_following_next_visits_each_room_once(
    client: TestClient, account: Caller, other_account: Caller, prefix: str
) -> None:
    rooms = []
    for i in range(11):
        room = create_room(client, account)
        rooms.append(room["id"])
        if i % 3 == 0:
            create_room(client, other_account)
    pages = list(walk(client, account, f"{BASE}{prefix}/meetings/rooms?page_size=3", "next"))
    assert [len(ids(page)) for page in pages] == [3, 3, 3, 2]
    assert [room for page in pages for room in ids(page)] == rooms
    for page in pages:
        for link in page["_links"].values():
            assert urlsplit(link["href"]).path == f"{prefix}/meetings/rooms"
            assert dict(parse_qsl(urlsplit(link["href"]).query))["page_size"] == "3"


# -- the property -------------------------------------------------------------------------------


@pytest.fixture
def property_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Like conftest's ``client``, but one app for all of the property test's examples. Both
    databases: PostgreSQL answers a page in one statement of its own (store.paging)."""
    app_settings = build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": BASE,
            "secret_key": "test-secret-key-of-32-characters",
        },
        environ={},
    )
    app = create_app(app_settings, clock=FakeClock(), run_sweeper=False)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


@settings(
    max_examples=25,
    deadline=None,
    # The app is shared between examples; each example makes a fresh account (a fresh
    # application), whose list starts empty whatever earlier examples created.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(owners=st.lists(st.booleans(), max_size=60), page_size=st.integers(1, 25))
def test_walking_links_yields_every_room_once_in_order(
    property_client: TestClient, owners: list[bool], page_size: int
) -> None:
    client = property_client
    clock = client.app.state.services.clock  # type: ignore[attr-defined]
    caller = support.create_account(client, clock, name=f"p-{uuid.uuid4().hex[:6]}")
    stranger = support.create_account(client, clock, name=f"s-{uuid.uuid4().hex[:6]}")
    mine = []
    for is_mine in owners:  # rooms of another application interleave the serials
        room = create_room(client, caller if is_mine else stranger)
        if is_mine:
            mine.append(room["id"])

    forward = list(walk(client, caller, f"{BASE}{ROOMS}?page_size={page_size}", "next"))
    assert [room for page in forward for room in ids(page)] == mine
    assert all(page["total_items"] == len(mine) for page in forward)
    assert all(0 < len(ids(page)) <= page_size for page in forward if mine)
    assert "prev" not in forward[0]["_links"]

    backward = list(walk(client, caller, forward[-1]["_links"]["self"]["href"], "prev"))
    assert [room for page in reversed(backward) for room in ids(page)] == mine
    assert "next" not in backward[0]["_links"]
