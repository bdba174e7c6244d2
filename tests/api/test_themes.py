"""Themes (contract §5): create, list, read and update, with every rule and message."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from meetd.store import themes as store_themes
from tests.support import Caller, assert_error, assert_invalid, create_room

THEMES = "/v1/meetings/themes"
# A theme's fields in the order Vonage sent them.
THEME_FIELDS = [
    "theme_id",
    "theme_name",
    "domain",
    "account_id",
    "application_id",
    "main_color",
    "short_company_url",
    "brand_text",
    "brand_image_colored",
    "brand_image_white",
    "branded_favicon",
    "brand_image_white_url",
    "brand_image_colored_url",
    "branded_favicon_url",
]


def create_theme(client: TestClient, caller: Caller, **body: Any) -> dict[str, Any]:
    body = {"main_color": "#12f64e", "brand_text": "My Company", **body}
    response = client.post(THEMES, headers=caller.basic, json=body)
    assert response.status_code == 201, response.text
    theme: dict[str, Any] = response.json()
    return theme


# -- create --------------------------------------------------------------------------------------
def test_create_returns_the_theme(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, theme_name="my_theme", short_company_url="my-company")
    assert list(theme) == THEME_FIELDS
    assert uuid.UUID(theme["theme_id"]).version == 4
    assert theme == {
        "theme_id": theme["theme_id"],
        "theme_name": "my_theme",
        "domain": "VCP",
        "account_id": account.account_id,
        "application_id": account.application_id,
        "main_color": "#12f64e",
        "short_company_url": "my-company",
        "brand_text": "My Company",
        "brand_image_colored": None,
        "brand_image_white": None,
        "branded_favicon": None,
        "brand_image_white_url": None,
        "brand_image_colored_url": None,
        "branded_favicon_url": None,
    }


def test_theme_name_defaults_to_a_uuid_and_short_url_to_null(
    client: TestClient, account: Caller
) -> None:
    theme = create_theme(client, account)
    assert uuid.UUID(theme["theme_name"])
    assert theme["short_company_url"] is None


def test_texts_of_200_utf16_code_units_are_accepted(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, brand_text="😀" * 100, theme_name="😀" * 99 + "nn")
    assert theme["brand_text"] == "😀" * 100


def test_create_works_with_a_jwt_and_on_beta(client: TestClient, account: Caller) -> None:
    response = client.post(
        "/beta/meetings/themes",
        headers=account.bearer(),
        json={"main_color": "#fff", "brand_text": "B"},
    )
    assert response.status_code == 201
    assert response.json()["application_id"] == account.application_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"brand_text": "B"}, '"main_color" is required'),
        ({"main_color": "#fff"}, '"brand_text" is required'),
        ({"main_color": 5, "brand_text": "B"}, '"main_color" must be a string'),
        (
            {"main_color": "red", "brand_text": "B"},
            '"main_color" with value "red" fails to match the required pattern: '
            "/^#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$/",
        ),
        (
            {"main_color": "#ff00", "brand_text": "B"},
            '"main_color" with value "#ff00" fails to match the required pattern: '
            "/^#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$/",
        ),
        (  # "$" alone would let a trailing newline through
            {"main_color": "#fff\n", "brand_text": "B"},
            '"main_color" with value "#fff\n" fails to match the required pattern: '
            "/^#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$/",
        ),
        (
            {"main_color": "#ff00000", "brand_text": "B"},
            '"main_color" length must be less than or equal to 7 characters long',
        ),
        ({"main_color": "#fff", "brand_text": ""}, '"brand_text" is not allowed to be empty'),
        (
            {"main_color": "#fff", "brand_text": "b" * 201},
            '"brand_text" length must be less than or equal to 200 characters long',
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "theme_name": "n" * 201},
            '"theme_name" length must be less than or equal to 200 characters long',
        ),
        (  # 101 emoji are 202 UTF-16 code units, as Joi counted them
            {"main_color": "#fff", "brand_text": "😀" * 101},
            '"brand_text" length must be less than or equal to 200 characters long',
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "theme_name": "😀" * 100 + "n"},
            '"theme_name" length must be less than or equal to 200 characters long',
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "theme_name": None},
            '"theme_name" must be a string',
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "short_company_url": "123"},
            '"short_company_url" with value "123" fails to match the required pattern: '
            "/^(?=.*[a-zA-Z_~-])([a-zA-Z0-9_~-]+)$/",
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "short_company_url": "my company"},
            '"short_company_url" with value "my company" fails to match the required '
            "pattern: /^(?=.*[a-zA-Z_~-])([a-zA-Z0-9_~-]+)$/",
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "short_company_url": "api\n"},
            '"short_company_url" with value "api\n" fails to match the required '
            "pattern: /^(?=.*[a-zA-Z_~-])([a-zA-Z0-9_~-]+)$/",
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "short_company_url": "a" * 129},
            '"short_company_url" length must be less than or equal to 128 characters long',
        ),
        (
            {"main_color": "#fff", "brand_text": "B", "short_company_url": "Files"},
            '"short_company_url" must not be one of meetd\'s own paths: "Files"',
        ),
        ({"main_color": "#fff", "brand_text": "B", "domain": "VCP"}, '"domain" is not allowed'),
        ([], '"value" must be of type object'),
    ],
)
def test_create_rejects(client: TestClient, account: Caller, body: Any, message: str) -> None:
    response = client.post(THEMES, headers=account.basic, json=body)
    assert_invalid(response, message)
    assert client.get(THEMES, headers=account.basic).json() == []


@pytest.mark.parametrize("short_url", ["a", "1a", "~", "my_Company-2~x", "9" * 127 + "x"])
def test_short_company_url_accepts(client: TestClient, account: Caller, short_url: str) -> None:
    assert create_theme(client, account, short_company_url=short_url)["short_company_url"] == (
        short_url
    )


def test_theme_name_is_unique_in_the_application(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    create_theme(client, account, theme_name="brand")
    response = client.post(
        THEMES,
        headers=account.basic,
        json={"main_color": "#fff", "brand_text": "B", "theme_name": "brand"},
    )
    assert_error(response, 409, "ConflictError", "theme_name already exists in application")
    # Another application may use the name.
    assert create_theme(client, other_account, theme_name="brand")["theme_name"] == "brand"
    assert len(client.get(THEMES, headers=account.basic).json()) == 1


def test_short_company_url_is_unique_across_the_server(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    create_theme(client, account, short_company_url="acme")
    response = client.post(
        THEMES,
        headers=other_account.basic,
        json={"main_color": "#fff", "brand_text": "B", "short_company_url": "acme"},
    )
    assert_error(response, 409, "ConflictError", "short_company_url already exists")
    assert client.get(THEMES, headers=other_account.basic).json() == []


def test_the_theme_limit_is_a_403(client: TestClient, account: Caller) -> None:
    limit = client.app.state.services.settings.themes_per_application  # type: ignore[attr-defined]
    assert limit == 50
    for number in range(limit):
        create_theme(client, account, theme_name=f"t{number}")
    response = client.post(
        THEMES, headers=account.basic, json={"main_color": "#fff", "brand_text": "B"}
    )
    assert_error(
        response,
        403,
        "ForbiddenError",
        "could not create theme: the application already has the maximum of 50 themes",
    )
    assert len(client.get(THEMES, headers=account.basic).json()) == limit


# -- list and read -------------------------------------------------------------------------------
def test_list_is_empty_then_oldest_first(client: TestClient, account: Caller) -> None:
    assert client.get(THEMES, headers=account.basic).json() == []
    first = create_theme(client, account, theme_name="first")
    account.clock.advance(1)
    second = create_theme(client, account, theme_name="second")
    response = client.get(THEMES, headers=account.basic)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [first, second]


def test_list_and_get_see_only_the_callers_themes(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, account)
    assert client.get(THEMES, headers=other_account.basic).json() == []
    response = client.get(f"{THEMES}/{theme['theme_id']}", headers=other_account.basic)
    assert_error(response, 404, "NotFoundError", f"could not find theme {theme['theme_id']}")


def test_get(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    response = client.get(
        f"/beta/meetings/themes/{theme['theme_id'].upper()}", headers=account.basic
    )
    assert response.status_code == 200
    assert response.json() == theme


@pytest.mark.parametrize("theme_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_get_unknown(client: TestClient, account: Caller, theme_id: str) -> None:
    response = client.get(f"{THEMES}/{theme_id}", headers=account.basic)
    assert_error(response, 404, "NotFoundError", f"could not find theme {theme_id}")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", THEMES),
        ("POST", THEMES),
        ("GET", f"{THEMES}/{uuid.uuid4()}"),
        ("PATCH", f"{THEMES}/{uuid.uuid4()}"),
        ("DELETE", f"{THEMES}/{uuid.uuid4()}"),
        ("GET", f"{THEMES}/{uuid.uuid4()}/rooms"),
        ("PUT", f"{THEMES}/{uuid.uuid4()}/finalizeLogos"),
        ("GET", f"{THEMES}/logos-upload-urls"),
        ("PATCH", "/v1/meetings/applications"),
    ],
)
def test_every_theme_route_needs_credentials(
    client: TestClient, account: Caller, method: str, path: str
) -> None:
    response = client.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


# -- update --------------------------------------------------------------------------------------
def test_update_changes_only_the_keys_given(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, theme_name="my_theme", short_company_url="my-company")
    response = client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=account.basic,
        json={
            "update_details": {
                "theme_name": "updated_theme",
                "main_color": "#FF0000",
                "brand_text": "My Updated Company Name",
                "short_company_url": "updated_company_url",
            }
        },
    )
    assert response.status_code == 200, response.text
    expected = {
        **theme,
        "theme_name": "updated_theme",
        "main_color": "#FF0000",
        "brand_text": "My Updated Company Name",
        "short_company_url": "updated_company_url",
    }
    assert response.json() == expected
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json() == expected

    response = client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=account.basic,
        json={"update_details": {"short_company_url": None}},
    )
    assert response.json() == {**expected, "short_company_url": None}


def test_update_keeps_its_own_name(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account, theme_name="same", short_company_url="same-url")
    response = client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=account.basic,
        json={"update_details": {"theme_name": "same", "short_company_url": "same-url"}},
    )
    assert response.status_code == 200
    assert response.json() == theme


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"update_details" is required'),
        ({"update_details": {}}, '"update_details" must have at least 1 key'),
        ({"update_details": []}, '"update_details" must be of type object'),
        ({"update_details": {"domain": "x"}}, '"update_details.domain" is not allowed'),
        (
            {"update_details": {"brand_text": ""}},
            '"update_details.brand_text" is not allowed to be empty',
        ),
        (
            {"update_details": {"main_color": "#12"}},
            '"update_details.main_color" with value "#12" fails to match the required pattern: '
            "/^#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})$/",
        ),
        ({"update_details": {"x": 1}, "other": 1}, '"other" is not allowed'),
    ],
)
def test_update_rejects(client: TestClient, account: Caller, body: Any, message: str) -> None:
    theme = create_theme(client, account)
    response = client.patch(f"{THEMES}/{theme['theme_id']}", headers=account.basic, json=body)
    assert_invalid(response, message)
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json() == theme


def test_update_conflicts(client: TestClient, account: Caller, other_account: Caller) -> None:
    create_theme(client, account, theme_name="taken")
    create_theme(client, other_account, short_company_url="taken-url")
    theme = create_theme(client, account)
    path = f"{THEMES}/{theme['theme_id']}"
    response = client.patch(
        path, headers=account.basic, json={"update_details": {"theme_name": "taken"}}
    )
    assert_error(response, 409, "ConflictError", "theme_name already exists in application")
    response = client.patch(
        path, headers=account.basic, json={"update_details": {"short_company_url": "taken-url"}}
    )
    assert_error(response, 409, "ConflictError", "short_company_url already exists")
    assert client.get(path, headers=account.basic).json() == theme


def test_update_of_another_applications_theme_is_404(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, account)
    response = client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=other_account.basic,
        json={"update_details": {"brand_text": "mine"}},
    )
    assert_error(response, 404, "NotFoundError", f"could not find theme {theme['theme_id']}")
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json() == theme


# -- rooms carry the theme's short URL -----------------------------------------------------------
def test_room_links_carry_the_themes_short_url_and_follow_its_changes(
    client: TestClient, account: Caller
) -> None:
    theme = create_theme(client, account, short_company_url="acme")
    room = create_room(client, account, theme_id=theme["theme_id"])
    code = room["meeting_code"]
    assert room["theme_id"] == theme["theme_id"]
    assert room["_links"]["guest_url"]["href"] == f"https://meet.example.test/acme/{code}"
    assert room["_links"]["host_url"]["href"].startswith(
        f"https://meet.example.test/acme/?room_token={code}&participant_token="
    )
    token = room["_links"]["host_url"]["href"].rsplit("=", 1)[1]

    client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=account.basic,
        json={"update_details": {"short_company_url": "acme-2"}},
    )
    read = client.get(f"/v1/meetings/rooms/{room['id']}", headers=account.basic).json()
    assert read["_links"]["guest_url"]["href"] == f"https://meet.example.test/acme-2/{code}"
    assert read["_links"]["host_url"]["href"] == (
        f"https://meet.example.test/acme-2/?room_token={code}&participant_token={token}"
    )
    listed = client.get("/v1/meetings/rooms", headers=account.basic).json()["_embedded"]
    assert listed == [read]

    client.patch(
        f"{THEMES}/{theme['theme_id']}",
        headers=account.basic,
        json={"update_details": {"short_company_url": None}},
    )
    read = client.get(f"/v1/meetings/rooms/{room['id']}", headers=account.basic).json()
    assert read["_links"]["guest_url"]["href"] == f"https://meet.example.test/{code}"


def test_a_room_cannot_take_another_applications_theme(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    theme = create_theme(client, other_account)
    response = client.post(
        "/v1/meetings/rooms",
        headers=account.basic,
        json={"display_name": "r", "theme_id": theme["theme_id"]},
    )
    assert_error(
        response,
        400,
        "BadRequestError",
        f"Failed to create room because theme id {theme['theme_id']} not found",
    )


def test_a_short_url_taken_in_a_race_is_still_a_409(
    client: TestClient, account: Caller, other_account: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes may both pass the store's check; the UNIQUE index then decides, and the
    loser gets the same 409, not a 500."""
    create_theme(client, account, short_company_url="raced")
    monkeypatch.setattr(store_themes, "_check_unique", lambda *args: None)
    response = client.post(
        THEMES,
        headers=other_account.basic,
        json={"main_color": "#fff", "brand_text": "B", "short_company_url": "raced"},
    )
    assert_error(response, 409, "ConflictError", "short_company_url already exists")
    assert client.get(THEMES, headers=other_account.basic).json() == []
