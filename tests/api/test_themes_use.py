"""Where themes are used (contract §5, §6): the application's default theme, the rooms of a
theme, and deleting a theme that is still used."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_themes import THEMES, create_theme
from tests.support import Caller, assert_error, assert_invalid, create_room

APPLICATIONS = "/v1/meetings/applications"


def set_default(client: TestClient, caller: Caller, theme_id: Any) -> Any:
    return client.patch(
        APPLICATIONS,
        headers=caller.basic,
        json={"update_details": {"default_theme_id": theme_id}},
    )


# -- the application's default theme -------------------------------------------------------------
def test_new_rooms_take_the_default_theme(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, short_company_url="dflt")
    response = set_default(client, account, theme["theme_id"])
    assert response.status_code == 200
    assert response.json() == {
        "application_id": account.application_id,
        "account_id": account.account_id,
        "default_theme_id": theme["theme_id"],
    }
    room = create_room(client, account)
    assert room["theme_id"] == theme["theme_id"]
    assert room["_links"]["guest_url"]["href"].startswith("https://meet.example.test/dflt/")
    # An explicit theme_id, null included, wins over the default.
    assert create_room(client, account, theme_id=None)["theme_id"] is None
    other = create_theme(client, account)
    assert create_room(client, account, theme_id=other["theme_id"])["theme_id"] == other["theme_id"]

    response = set_default(client, account, None)
    assert response.json()["default_theme_id"] is None
    assert create_room(client, account)["theme_id"] is None


def test_default_theme_with_a_jwt(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    response = client.patch(
        "/beta/meetings/applications",
        headers=account.bearer(),
        json={"update_details": {"default_theme_id": theme["theme_id"].upper()}},
    )
    assert response.status_code == 200
    assert response.json()["default_theme_id"] == theme["theme_id"]


@pytest.mark.parametrize(
    "theme_id",
    [
        "not-a-real-theme-id",
        str(uuid.uuid4()),
        str(uuid.uuid4()).upper(),  # echoed as sent
        "t" * 201,  # any string: no length limit comes first (docs/api.md)
        "t" * 100_000,
        "",
        "nul\x00inside",
    ],
    ids=["text", "uuid", "upper-case-uuid", "201-characters", "100000-characters", "empty", "nul"],
)
def test_default_theme_must_exist(client: TestClient, account: Caller, theme_id: str) -> None:
    theme = create_theme(client, account)
    assert set_default(client, account, theme["theme_id"]).status_code == 200
    response = set_default(client, account, theme_id)
    assert_error(
        response,
        400,
        "BadRequestError",
        f"Failed to update application because theme id {theme_id} not found",
    )
    assert create_room(client, account)["theme_id"] == theme["theme_id"]  # nothing written


def test_default_theme_of_another_application_is_unknown(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, other_account)
    response = set_default(client, account, theme["theme_id"])
    assert response.status_code == 400
    assert create_room(client, account)["theme_id"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"update_details" is required'),
        ({"update_details": {}}, '"update_details" must have at least 1 key'),
        ({"update_details": 1}, '"update_details" must be of type object'),
        ({"update_details": {"name": "x"}}, '"update_details.name" is not allowed'),
        (
            {"update_details": {"default_theme_id": 7}},
            '"update_details.default_theme_id" must be a string',
        ),
    ],
)
def test_update_application_rejects(
    client: TestClient, account: Caller, body: Any, message: str
) -> None:
    assert_invalid(client.patch(APPLICATIONS, headers=account.basic, json=body), message)


# -- rooms of a theme ----------------------------------------------------------------------------
def test_rooms_of_a_theme_page_like_the_room_list(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    themed = [create_room(client, account, theme_id=theme["theme_id"]) for _ in range(5)]
    create_room(client, account)  # no theme: not listed
    path = f"{THEMES}/{theme['theme_id']}/rooms"

    response = client.get(path, headers=account.basic, params={"page_size": 2})
    assert response.status_code == 200
    page = response.json()
    assert page["total_items"] == 5
    assert page["page_size"] == 2
    assert page["_embedded"] == themed[:2]
    assert page["_links"]["first"] == {"href": f"https://meet.example.test{path}?page_size=2"}
    assert "prev" not in page["_links"]

    seen = list(page["_embedded"])
    while "next" in page["_links"]:
        href = page["_links"]["next"]["href"]
        assert href.startswith(f"https://meet.example.test{path}?page_size=2&start_id=")
        page = client.get(href, headers=account.basic).json()
        seen += page["_embedded"]
    assert seen == themed


def test_rooms_of_a_theme_on_beta_are_embedded_as_an_object(
    client: TestClient, account: Caller
) -> None:
    theme = create_theme(client, account)
    room = create_room(client, account, theme_id=theme["theme_id"])
    response = client.get(f"/beta/meetings/themes/{theme['theme_id']}/rooms", headers=account.basic)
    assert response.json()["_embedded"] == {"rooms": [room]}


def test_rooms_of_a_theme_without_rooms(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    page = client.get(f"{THEMES}/{theme['theme_id']}/rooms", headers=account.basic).json()
    assert page["total_items"] == 0
    assert page["_embedded"] == []


@pytest.mark.parametrize("theme_id", [str(uuid.uuid4()), "nope"])
def test_rooms_of_an_unknown_theme(client: TestClient, account: Caller, theme_id: str) -> None:
    response = client.get(f"{THEMES}/{theme_id}/rooms", headers=account.basic)
    assert_error(
        response, 404, "NotFoundError", f"Failed to get rooms because theme id {theme_id} not found"
    )


def test_rooms_of_another_applications_theme(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, other_account)
    create_room(client, other_account, theme_id=theme["theme_id"])
    response = client.get(f"{THEMES}/{theme['theme_id']}/rooms", headers=account.basic)
    assert response.status_code == 404


def test_rooms_of_a_theme_checks_the_query(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    response = client.get(
        f"{THEMES}/{theme['theme_id']}/rooms", headers=account.basic, params={"page_size": 0}
    )
    assert_invalid(response, '"page_size" must be greater than or equal to 1')


# -- delete --------------------------------------------------------------------------------------
def test_delete_an_unused_theme(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, theme_name="gone", short_company_url="gone")
    response = client.delete(f"{THEMES}/{theme['theme_id']}", headers=account.basic)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).status_code == 404
    # Its name and short URL are free again.
    create_theme(client, account, theme_name="gone", short_company_url="gone")


def test_delete_refuses_a_theme_in_use(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    theme_id = theme["theme_id"]
    room = create_room(client, account, theme_id=theme_id)
    response = client.delete(f"{THEMES}/{theme_id}", headers=account.basic)
    assert response.status_code == 400
    assert response.json() == {
        "message": "could not delete theme",
        "name": "BadRequestError",
        "errors": [f"Theme {theme_id} is used by 1 room"],
        "status": 400,
    }
    # force=False (as the Python SDK sends it) is the same refusal.
    response = client.delete(f"{THEMES}/{theme_id}?force=False", headers=account.basic)
    assert response.status_code == 400
    assert client.get(f"{THEMES}/{theme_id}", headers=account.basic).json() == theme
    read = client.get(f"/v1/meetings/rooms/{room['id']}", headers=account.basic).json()
    assert read["theme_id"] == theme_id


def test_delete_refuses_the_default_theme(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    theme_id = theme["theme_id"]
    set_default(client, account, theme_id)
    create_room(client, account)
    create_room(client, account)
    response = client.delete(f"{THEMES}/{theme_id}", headers=account.basic)
    assert response.json()["errors"] == [
        f"Theme {theme_id} is used by 2 room",
        f"Theme {theme_id} is the default theme of application {account.application_id}",
    ]


@pytest.mark.parametrize("force", ["true", "True", "TRUE"])
def test_force_delete_detaches_rooms_and_the_default(
    client: TestClient, account: Caller, force: str
) -> None:
    theme = create_theme(client, account, short_company_url="brand")
    theme_id = theme["theme_id"]
    set_default(client, account, theme_id)
    room = create_room(client, account)
    deleted = create_room(client, account)
    client.delete(f"/v1/meetings/rooms/{deleted['id']}", headers=account.basic)

    response = client.delete(f"{THEMES}/{theme_id}", headers=account.basic, params={"force": force})
    assert response.status_code == 204
    read = client.get(f"/v1/meetings/rooms/{room['id']}", headers=account.basic).json()
    assert read["theme_id"] is None
    assert (
        read["_links"]["guest_url"]["href"] == f"https://meet.example.test/{room['meeting_code']}"
    )
    assert create_room(client, account)["theme_id"] is None  # no default any more
    assert client.get(THEMES, headers=account.basic).json() == []


def test_delete_with_a_bad_force(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    response = client.delete(f"{THEMES}/{theme['theme_id']}?force=yes", headers=account.basic)
    assert_invalid(response, '"force" must be a boolean')


@pytest.mark.parametrize("theme_id", [str(uuid.uuid4()), "x"])
def test_delete_unknown(client: TestClient, account: Caller, theme_id: str) -> None:
    response = client.delete(f"{THEMES}/{theme_id}?force=true", headers=account.basic)
    assert_error(response, 404, "NotFoundError", f"could not find theme {theme_id}")


def test_delete_of_another_applications_theme(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, other_account)
    response = client.delete(f"{THEMES}/{theme['theme_id']}?force=true", headers=account.basic)
    assert response.status_code == 404
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=other_account.basic).json() == theme
