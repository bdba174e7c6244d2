"""The official Python SDK's theme calls against a real meetd over TLS (issue 3):
``create_theme``, ``list_themes``, ``get_theme``, ``update_theme``, ``delete_theme``,
``list_rooms_with_theme_id``, ``update_application_theme``, ``add_theme_to_room`` and a real
``upload_logo_to_theme`` — signed form, multipart upload, finalize — whose logo then
downloads byte for byte."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import vonage
from PIL import Image
from vonage.errors import ClientError, MeetingsError

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e
# upload_logo_to_theme opens the image and never closes it: the SDK's leak, not meetd's.
sdk_leaks_the_file = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)


def error(status: int, name: str, message: str) -> str:
    return f"Status Code {status}: {name}: {message}"


def unique(prefix: str) -> str:
    """The servers live for the whole session: names and short URLs must not collide."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def transparent_png(path: Path, size: tuple[int, int] = (120, 60)) -> bytes:
    """A logo as designers make them: a shape on a fully transparent background."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    for x in range(10, size[0] - 10):
        for y in range(10, size[1] - 10):
            image.putpixel((x, y), (200, 30, 90, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_theme_lifecycle(meetings: vonage.Meetings, tls_server: Server) -> None:
    short_url = unique("acme")
    theme = meetings.create_theme(
        {
            "theme_name": unique("theme"),
            "main_color": "#12f64e",
            "brand_text": "Acme",
            "short_company_url": short_url,
        }
    )
    assert theme["domain"] == "VCP"
    assert theme["application_id"] == tls_server.accounts[0].application.application_id
    assert theme["account_id"] == tls_server.accounts[0].account_id
    assert theme["short_company_url"] == short_url
    assert meetings.get_theme(theme["theme_id"]) == theme
    assert theme in meetings.list_themes()

    updated = meetings.update_theme(
        theme["theme_id"], {"update_details": {"brand_text": "Acme Inc", "main_color": "#fff"}}
    )
    assert updated == {**theme, "brand_text": "Acme Inc", "main_color": "#fff"}

    meetings.delete_theme(theme["theme_id"])
    assert theme["theme_id"] not in [t["theme_id"] for t in meetings.list_themes()]
    with pytest.raises(ClientError) as raised:
        meetings.get_theme(theme["theme_id"])
    assert str(raised.value) == error(
        404, "NotFoundError", f"could not find theme {theme['theme_id']}"
    )


def test_rooms_with_a_theme(meetings: vonage.Meetings, tls_server: Server) -> None:
    short_url = unique("brand")
    theme = meetings.create_theme(
        {"main_color": "#abc", "brand_text": "B", "short_company_url": short_url}
    )
    expires = datetime.now(UTC) + timedelta(days=1)
    room = meetings.create_room(
        {"display_name": "themed later", "type": "long_term", "expires_at": expires.isoformat()}
    )
    assert room["theme_id"] is None

    themed = meetings.add_theme_to_room(room["id"], theme["theme_id"])
    assert themed["theme_id"] == theme["theme_id"]
    code = room["meeting_code"]
    assert themed["_links"]["guest_url"]["href"] == f"{tls_server.url}/{short_url}/{code}"

    page = meetings.list_rooms_with_theme_id(theme["theme_id"], page_size=5)
    assert page["total_items"] == 1
    assert [r["id"] for r in page["_embedded"]] == [room["id"]]

    with pytest.raises(ClientError) as raised:
        meetings.delete_theme(theme["theme_id"])  # force=False
    assert "could not delete theme" in str(raised.value)
    meetings.delete_theme(theme["theme_id"], force=True)
    assert meetings.get_room(room["id"])["theme_id"] is None

    missing = str(uuid.uuid4())
    with pytest.raises(ClientError) as raised:
        meetings.list_rooms_with_theme_id(missing)
    assert str(raised.value) == error(
        404, "NotFoundError", f"Failed to get rooms because theme id {missing} not found"
    )


def test_application_default_theme(meetings: vonage.Meetings) -> None:
    theme = meetings.create_theme({"main_color": "#000", "brand_text": "Default"})
    try:
        answer = meetings.update_application_theme(theme["theme_id"])
        assert answer["default_theme_id"] == theme["theme_id"]
        assert meetings.create_room({"display_name": "defaulted"})["theme_id"] == theme["theme_id"]
        with pytest.raises(ClientError) as raised:
            meetings.update_application_theme("not-a-real-theme-id")
        assert str(raised.value) == error(
            400,
            "BadRequestError",
            "Failed to update application because theme id not-a-real-theme-id not found",
        )
    finally:
        meetings.delete_theme(theme["theme_id"], force=True)
    assert meetings.create_room({"display_name": "plain"})["theme_id"] is None


def test_theme_conflicts(meetings: vonage.Meetings, other_meetings: vonage.Meetings) -> None:
    name, short_url = unique("dup"), unique("dup-url")
    meetings.create_theme({"theme_name": name, "main_color": "#111", "brand_text": "x"})
    with pytest.raises(ClientError) as raised:
        meetings.create_theme({"theme_name": name, "main_color": "#111", "brand_text": "x"})
    assert str(raised.value) == error(
        409, "ConflictError", "theme_name already exists in application"
    )
    meetings.create_theme({"short_company_url": short_url, "main_color": "#111", "brand_text": "x"})
    with pytest.raises(ClientError) as raised:
        other_meetings.create_theme(
            {"short_company_url": short_url, "main_color": "#111", "brand_text": "x"}
        )
    assert str(raised.value) == error(409, "ConflictError", "short_company_url already exists")


@sdk_leaks_the_file
@pytest.mark.parametrize("logo_type", ["white", "colored"])
def test_upload_logo_to_theme(
    meetings: vonage.Meetings, tls_server: Server, tmp_path: Path, logo_type: Any
) -> None:
    theme = meetings.create_theme({"main_color": "#123456", "brand_text": "Logo"})
    png = transparent_png(tmp_path / "logo.png")

    answer = meetings.upload_logo_to_theme(theme["theme_id"], str(tmp_path / "logo.png"), logo_type)

    assert answer == f"Logo upload to theme: {theme['theme_id']} was successful."
    stored = meetings.get_theme(theme["theme_id"])
    column = {"white": "brand_image_white", "colored": "brand_image_colored"}[logo_type]
    key = stored[column]
    assert key.startswith(f"logos/{logo_type}/")
    link = stored[f"{column}_url"]
    assert link == f"{tls_server.url}/files/{key}"
    with tls_server.http() as http:
        download = http.get(link)
    assert download.status_code == 200
    assert download.content == png
    assert download.headers["content-type"] == "image/png"
    assert "public" in download.headers["cache-control"]


@sdk_leaks_the_file
def test_upload_of_a_logo_that_breaks_the_rules(meetings: vonage.Meetings, tmp_path: Path) -> None:
    theme = meetings.create_theme({"main_color": "#123456", "brand_text": "Logo"})
    # Opaque all over: no transparent background.
    Image.new("RGB", (100, 100), (255, 0, 0)).save(tmp_path / "opaque.png")

    with pytest.raises(ClientError) as raised:
        meetings.upload_logo_to_theme(theme["theme_id"], str(tmp_path / "opaque.png"), "white")

    assert "could not finalize logos" in str(raised.value)
    assert meetings.get_theme(theme["theme_id"])["brand_image_white"] is None


def test_a_tampered_upload_form_is_refused(meetings: vonage.Meetings, tls_server: Server) -> None:
    forms = meetings._client.get(
        meetings._meetings_api_host, "/themes/logos-upload-urls", auth_type="jwt"
    )
    assert [form["fields"]["logoType"] for form in forms] == ["white", "colored", "favicon"]
    form = forms[0]
    fields = {**form["fields"], "key": form["fields"]["key"].replace("white", "colored")}
    with tls_server.http() as http:
        response = http.post(form["url"], data=fields, files={"file": b"\x89PNG"})
    assert response.status_code == 403
    with pytest.raises(ClientError) as raised:
        meetings._add_logo_to_theme(
            meetings.create_theme({"main_color": "#000", "brand_text": "t"})["theme_id"],
            fields["key"],
        )
    assert "key_not_found" in str(raised.value)


def test_the_sdk_refuses_a_theme_without_its_required_fields(meetings: vonage.Meetings) -> None:
    with pytest.raises(MeetingsError):
        meetings.create_theme({"brand_text": "no colour"})
