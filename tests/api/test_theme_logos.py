"""Theme logos (contract §5): upload forms, the upload, ``finalizeLogos`` with each of its
errors, the theme's keys and links, downloads, and files deleted when nothing uses them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

import meetd.api.themes
from meetd.clock import FakeClock
from meetd.files import UPLOAD_FORM_SECONDS, FileStore
from meetd.files.local import LocalFileStore
from tests.api.test_themes import THEMES, create_theme
from tests.files import pngs
from tests.support import Caller, assert_error, assert_invalid

LOGO = pngs.transparent_logo()
FAVICON = pngs.opaque(32, 32, mode="RGBA")


def files(client: TestClient) -> FileStore:
    found: FileStore = client.app.state.services.files  # type: ignore[attr-defined]
    return found


def forms(client: TestClient, caller: Caller) -> dict[str, dict[str, Any]]:
    response = client.get(f"{THEMES}/logos-upload-urls", headers=caller.basic)
    assert response.status_code == 200
    return {form["fields"]["logoType"]: form for form in response.json()}


def upload(client: TestClient, form: dict[str, Any], data: bytes) -> str:
    """Upload ``data`` with ``form`` the way the Python SDK does (every field a file part)."""
    parts = {name: (None, value) for name, value in form["fields"].items()}
    response = client.post(form["url"], files={**parts, "file": ("logo.png", data, "image/png")})
    assert response.status_code == 204, response.text
    key: str = form["fields"]["key"]
    return key


def finalize(client: TestClient, caller: Caller, theme_id: str, keys: list[Any]) -> Any:
    return client.put(
        f"{THEMES}/{theme_id}/finalizeLogos", headers=caller.basic, json={"keys": keys}
    )


def test_three_upload_forms(client: TestClient, account: Caller) -> None:
    found = forms(client, account)
    assert list(found) == ["white", "colored", "favicon"]
    for logo_type, form in found.items():
        assert form["url"] == "https://meet.example.test/uploads"
        fields = form["fields"]
        assert fields["Content-Type"] == "image/png"
        assert fields["logoType"] == logo_type
        prefix = f"auto-expiring-temp/logos/{logo_type}/"
        assert fields["key"].startswith(prefix)
        assert uuid.UUID(fields["key"].removeprefix(prefix)).version == 4
        assert list(fields)[:3] == ["Content-Type", "key", "logoType"]
    again = forms(client, account)
    assert again["white"]["fields"]["key"] != found["white"]["fields"]["key"]


def test_finalize_sets_keys_and_links_and_moves_the_files(
    client: TestClient, account: Caller
) -> None:
    theme = create_theme(client, account)
    found = forms(client, account)
    white = upload(client, found["white"], LOGO)
    favicon = upload(client, found["favicon"], FAVICON)

    response = finalize(client, account, theme["theme_id"], [white, {"key": favicon}])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["brand_image_white"].startswith("logos/white/")
    assert body["branded_favicon"].startswith("logos/favicon/")
    assert body["brand_image_colored"] is None
    assert body["brand_image_colored_url"] is None
    for column in ("brand_image_white", "branded_favicon"):
        link = body[f"{column}_url"]
        assert link == f"https://meet.example.test/files/{body[column]}"
        download = client.get(link)
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/png"
    assert client.get(body["brand_image_white_url"]).content == LOGO
    assert client.get(body["branded_favicon_url"]).content == FAVICON
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json() == body
    # Out of the temporary area: the upload keys are gone, and cannot be finalized twice.
    assert files(client).read(white) is None
    response = finalize(client, account, theme["theme_id"], [white])
    assert response.json()["errors"] == [{"logoKey": white, "code": "key_not_found"}]


def test_a_new_logo_replaces_and_deletes_the_old_one(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    first = upload(client, forms(client, account)["colored"], LOGO)
    old = finalize(client, account, theme["theme_id"], [first]).json()["brand_image_colored"]
    newer = pngs.transparent_logo(200, 100)
    second = upload(client, forms(client, account)["colored"], newer)

    body = finalize(client, account, theme["theme_id"], [second]).json()

    assert body["brand_image_colored"] != old
    assert client.get(body["brand_image_colored_url"]).content == newer
    assert files(client).read(old) is None


def test_every_failure_is_listed_and_nothing_changes(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    found = forms(client, account)
    opaque = upload(client, found["white"], pngs.opaque(100, 100, mode="RGBA"))
    too_wide = upload(client, found["colored"], pngs.transparent_logo(301, 20))
    good_favicon = upload(client, found["favicon"], FAVICON)

    response = finalize(client, account, theme["theme_id"], [opaque, too_wide, good_favicon])

    assert response.status_code == 400
    assert response.json() == {
        "message": "could not finalize logos",
        "name": "BadRequestError",
        "errors": [
            {
                "logoKey": opaque,
                "code": "invalid_logo_properties",
                "invalidProperty": "transparent_bg",
            },
            {
                "logoKey": too_wide,
                "code": "invalid_logo_properties",
                "invalidProperty": "dimensions",
            },
        ],
        "status": 400,
    }
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json() == theme
    assert len(files(client).read(good_favicon) or b"") == len(
        FAVICON
    )  # still there, still temporary


@pytest.mark.parametrize(
    ("logo_type", "data", "problem"),
    [
        ("white", b"GIF89a not a png", "type"),
        ("white", LOGO[:40], "type"),
        ("favicon", pngs.opaque(33, 33, mode="RGBA"), "dimensions"),
        ("favicon", pngs.opaque(16, 20, mode="RGBA"), "dimensions"),
        ("colored", pngs.opaque(50, 50), "transparent_bg"),
    ],
)
def test_each_logo_rule(
    client: TestClient, account: Caller, logo_type: str, data: bytes, problem: str
) -> None:
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)[logo_type], data)
    response = finalize(client, account, theme["theme_id"], [key])
    assert response.json()["errors"] == [
        {"logoKey": key, "code": "invalid_logo_properties", "invalidProperty": problem}
    ]


def test_a_file_over_the_size_limit(client: TestClient, account: Caller) -> None:
    """The upload form refuses more than 1 MiB; a file that got there anyway is refused too."""
    theme = create_theme(client, account)
    key = f"auto-expiring-temp/logos/white/{uuid.uuid4()}"
    files(client).write(key, b"\x89PNG" + bytes(1024 * 1024), content_type="image/png")
    response = finalize(client, account, theme["theme_id"], [key])
    assert response.json()["errors"] == [
        {"logoKey": key, "code": "invalid_logo_properties", "invalidProperty": "exceeds_size"}
    ]


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        f"auto-expiring-temp/logos/white/{uuid.uuid4()}",
        f"auto-expiring-temp/logos/purple/{uuid.uuid4()}",
        "../../secret_key",
    ],
)
def test_keys_that_name_no_upload(client: TestClient, account: Caller, key: str) -> None:
    theme = create_theme(client, account)
    response = finalize(client, account, theme["theme_id"], [key])
    assert response.status_code == 400
    assert response.json() == {
        "message": "could not finalize logos",
        "name": "BadRequestError",
        "errors": [{"logoKey": key, "code": "key_not_found"}],
        "status": 400,
    }


def test_a_stored_logo_cannot_be_finalized_again_elsewhere(
    client: TestClient, account: Caller
) -> None:
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    permanent = finalize(client, account, theme["theme_id"], [key]).json()["brand_image_white"]
    other = create_theme(client, account)
    response = finalize(client, account, other["theme_id"], [permanent])
    assert response.json()["errors"] == [{"logoKey": permanent, "code": "key_not_found"}]


def test_an_upload_expires_when_the_sweep_may_delete_it(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    """An upload is good for UPLOAD_FORM_SECONDS after it arrived, the age past which the
    sweep deletes it (meetd.files.cleanup); between sweeps an older one is not found either."""
    theme = create_theme(client, account)
    found = forms(client, account)
    white = upload(client, found["white"], LOGO)
    favicon = upload(client, found["favicon"], FAVICON)

    clock.advance(UPLOAD_FORM_SECONDS)  # at the limit: still good
    assert finalize(client, account, theme["theme_id"], [white]).status_code == 200
    clock.advance(0.001)
    response = finalize(client, account, theme["theme_id"], [favicon])

    assert response.status_code == 400
    assert response.json()["errors"] == [{"logoKey": favicon, "code": "key_not_found"}]
    assert (
        client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json()["branded_favicon"]
        is None
    )


def test_an_upload_three_hours_old_is_not_found(
    client: TestClient, account: Caller, clock: FakeClock
) -> None:
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    store = files(client)
    assert isinstance(store, LocalFileStore)
    three_hours_ago_ns = (clock.now_ms() - 3 * 3600 * 1000) * 1_000_000
    os.utime(store.root / key, ns=(three_hours_ago_ns, three_hours_ago_ns))

    response = finalize(client, account, theme["theme_id"], [key])

    assert response.json()["errors"] == [{"logoKey": key, "code": "key_not_found"}]


def test_finalize_keeps_the_bytes_it_checked(
    client: TestClient, account: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form may be used again until it expires: a file uploaded again to the same key while
    finalizeLogos checks the first one is not what the theme gets, unchecked."""
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    check = meetd.api.themes.logo_problem

    def check_then_upload_again(data: bytes, logo_type: str) -> str | None:
        problem = check(data, logo_type)
        files(client).write(key, b"not a logo at all", content_type="image/png")
        return problem

    monkeypatch.setattr(meetd.api.themes, "logo_problem", check_then_upload_again)
    response = finalize(client, account, theme["theme_id"], [key])

    assert response.status_code == 200, response.text
    assert client.get(response.json()["brand_image_white_url"]).content == LOGO


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"keys" is required'),
        ({"keys": "k"}, '"keys" must be an array'),
        ({"keys": []}, '"keys" must contain at least 1 items'),
        ({"keys": ["a", "b", "c", "d"]}, '"keys" must contain less than or equal to 3 items'),
        ({"keys": [7]}, '"keys[0]" must be a string'),
        ({"keys": ["a", "a"]}, '"keys" must not contain the same key twice'),
        ({"keys": ["a"], "x": 1}, '"x" is not allowed'),
    ],
)
def test_finalize_rejects(client: TestClient, account: Caller, body: Any, message: str) -> None:
    theme = create_theme(client, account)
    response = client.put(
        f"{THEMES}/{theme['theme_id']}/finalizeLogos", headers=account.basic, json=body
    )
    assert_invalid(response, message)


def test_two_logos_of_one_type(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    found = [forms(client, account)["white"] for _ in range(2)]
    keys = [upload(client, form, LOGO) for form in found]
    response = finalize(client, account, theme["theme_id"], keys)
    assert_invalid(response, '"keys" must hold at most one logo of each type')


def test_finalize_on_an_unknown_or_foreign_theme(
    client: TestClient, account: Caller, other_account: Caller
) -> None:
    key = upload(client, forms(client, account)["white"], LOGO)
    missing = str(uuid.uuid4())
    assert_error(
        finalize(client, account, missing, [key]),
        404,
        "NotFoundError",
        f"could not find theme {missing}",
    )
    theirs = create_theme(client, other_account)
    response = finalize(client, account, theirs["theme_id"], [key])
    assert response.status_code == 404
    assert len(files(client).read(key) or b"") == len(LOGO)  # untouched


def test_deleting_a_theme_deletes_its_logos(client: TestClient, account: Caller) -> None:
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    body = finalize(client, account, theme["theme_id"], [key]).json()
    assert client.get(body["brand_image_white_url"]).status_code == 200

    assert client.delete(f"{THEMES}/{theme['theme_id']}", headers=account.basic).status_code == 204

    assert files(client).read(body["brand_image_white"]) is None
    assert client.get(body["brand_image_white_url"]).status_code == 404


def test_a_file_that_cannot_be_deleted_does_not_fail_the_request(
    client: TestClient, account: Caller, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    body = finalize(client, account, theme["theme_id"], [key]).json()

    def refuse(key: str) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(files(client), "delete", refuse)
    response = client.delete(f"{THEMES}/{theme['theme_id']}", headers=account.basic)

    assert response.status_code == 204
    assert client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).status_code == 404
    assert any(record.key == body["brand_image_white"] for record in caplog.records)  # type: ignore[attr-defined]


def test_the_same_uploads_finalized_at_once(client: TestClient, account: Caller) -> None:
    """Six requests race for one set of uploads, alternating between two themes: each one
    takes them or gets the 400 of a key already used, and no copy outlives its request."""
    themes = [create_theme(client, account)["theme_id"] for _ in range(2)]
    for _ in range(5):
        found = forms(client, account)
        keys = [
            upload(client, found["white"], LOGO),
            upload(client, found["colored"], LOGO),
            upload(client, found["favicon"], FAVICON),
        ]
        with ThreadPoolExecutor(6) as pool:
            racing = [pool.submit(finalize, client, account, themes[i % 2], keys) for i in range(6)]
            responses = [future.result() for future in racing]
        assert {response.status_code for response in responses} <= {200, 400}
        assert any(response.status_code == 200 for response in responses)
        for response in responses:
            if response.status_code == 400:
                assert response.json()["message"] == "could not finalize logos"
                for error in response.json()["errors"]:
                    assert error["logoKey"] in keys
                    assert error["code"] == "key_not_found"
        assert all(files(client).read(key) is None for key in keys)
        in_use = set()
        for theme_id in themes:
            body = client.get(f"{THEMES}/{theme_id}", headers=account.basic).json()
            in_use |= {body[f"brand_image_{kind}"] for kind in ("white", "colored")}
            in_use.add(body["branded_favicon"])
        assert stored_logos(client) == in_use - {None}  # a theme may have lost every race


def test_a_request_cancelled_during_its_commit_keeps_the_copies(
    client: TestClient, account: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the server stops, a request may be cancelled while its write is queued; the
    write still commits. Its copies must stay, or the theme would name missing files."""
    theme = create_theme(client, account)
    key = upload(client, forms(client, account)["white"], LOGO)
    database = client.app.state.services.db  # type: ignore[attr-defined]
    write = database.write

    async def cancelled_after(fn: Any) -> Any:
        await write(fn)  # it commits
        raise asyncio.CancelledError

    monkeypatch.setattr(database, "write", cancelled_after)
    with pytest.raises(concurrent.futures.CancelledError):  # as the test client reports it
        finalize(client, account, theme["theme_id"], [key])
    monkeypatch.undo()

    body = client.get(f"{THEMES}/{theme['theme_id']}", headers=account.basic).json()
    assert body["brand_image_white"] is not None
    assert client.get(body["brand_image_white_url"]).content == LOGO


def stored_logos(client: TestClient) -> set[str]:
    store = files(client)
    assert isinstance(store, LocalFileStore)
    return {
        path.relative_to(store.root).as_posix()
        for path in (store.root / "logos").rglob("*")
        if path.is_file()
    }
