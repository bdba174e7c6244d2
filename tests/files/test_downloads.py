"""GET /files/{key}: public logos with cache headers, signed links for everything else."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from meetd.clock import FakeClock
from meetd.files.local import LocalFileStore
from tests import support
from tests.files import pngs

LOGO_KEY = "logos/white/5b0e4c1a"
RECORDING_KEY = "recordings/2f9d.mp4"
LOGO = pngs.transparent_logo()
RECORDING = bytes(range(256)) * 40


def test_a_public_logo_with_cache_headers(client: TestClient, store: LocalFileStore) -> None:
    store.write(LOGO_KEY, LOGO, content_type="image/png")
    url = store.public_url(LOGO_KEY)
    assert url == f"https://meet.example.test/files/{LOGO_KEY}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == LOGO
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-length"] == str(len(LOGO))
    etag = response.headers["etag"]
    assert etag.startswith('"') and len(etag) == 34
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_head_of_a_logo(client: TestClient, store: LocalFileStore) -> None:
    store.write(LOGO_KEY, LOGO, content_type="image/png")
    response = client.head(f"/files/{LOGO_KEY}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(LOGO))


def test_a_logo_that_is_not_there_is_404(client: TestClient) -> None:
    response = client.get("/files/logos/white/none")
    support.assert_error(response, 404, "NotFoundError", "File logos/white/none was not found")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_name_too_long_for_the_file_system_is_404(
    client: TestClient, store: LocalFileStore, method: str
) -> None:
    store.write(LOGO_KEY, LOGO, content_type="image/png")  # so its directory exists
    key = "logos/white/" + "a" * 300  # past NAME_MAX (255)
    response = client.request(method, f"/files/{key}")
    assert response.status_code == 404
    if method == "GET":
        support.assert_error(response, 404, "NotFoundError", f"File {key} was not found")


def test_a_signed_link_downloads_until_it_expires(
    client: TestClient, store: LocalFileStore, clock: FakeClock
) -> None:
    store.write(RECORDING_KEY, RECORDING, content_type="video/mp4")
    url = store.download_url(RECORDING_KEY, expires_in=600)
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == RECORDING
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["cache-control"] == "private"
    ranged = client.get(url, headers={"Range": "bytes=256-511"})
    assert ranged.status_code == 206
    assert ranged.content == RECORDING[256:512]
    clock.advance(600)
    support.assert_error(
        client.get(url), 403, "ForbiddenError", "The download link is not valid or has expired"
    )


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?expires={expires}",
        "?signature={signature}",
        "?expires={later}&signature={signature}",
        "?expires={expires}&signature=A{signature}",
        "?expires=abc&signature={signature}",
    ],
)
def test_a_tampered_or_missing_signature_is_403(
    client: TestClient, store: LocalFileStore, query: str
) -> None:
    store.write(RECORDING_KEY, RECORDING, content_type="video/mp4")
    signed = _query(store.download_url(RECORDING_KEY, expires_in=600))
    later = int(signed["expires"]) + 3600
    response = client.get(f"/files/{RECORDING_KEY}" + query.format(later=later, **signed))
    support.assert_error(
        response, 403, "ForbiddenError", "The download link is not valid or has expired"
    )


def test_a_link_opens_only_its_own_file(client: TestClient, store: LocalFileStore) -> None:
    store.write(RECORDING_KEY, RECORDING, content_type="video/mp4")
    store.write("recordings/other.mp4", b"other", content_type="video/mp4")
    url = store.download_url(RECORDING_KEY, expires_in=600)
    response = client.get(url.replace(RECORDING_KEY, "recordings/other.mp4"))
    assert response.status_code == 403


def test_a_signed_link_to_a_missing_file_is_404(client: TestClient, store: LocalFileStore) -> None:
    response = client.get(store.download_url("recordings/gone.mp4", expires_in=600))
    support.assert_error(response, 404, "NotFoundError", "File recordings/gone.mp4 was not found")


def test_temporary_files_are_never_downloadable(client: TestClient, store: LocalFileStore) -> None:
    key = "auto-expiring-temp/logos/white/1c"
    store.write(key, LOGO, content_type="image/png")
    assert client.get(f"/files/{key}").status_code == 404
    # Not even with a link meetd signed for it.
    assert client.get(store.download_url(key, expires_in=600)).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/files/logos/%2e%2e/%2e%2e/secret_key",
        "/files/logos/..%2f..%2fsecret_key",
        "/files/logos/.x",
        "/files/logos//x",
        "/files/logos/white",
    ],
)
def test_paths_outside_the_store_are_404(
    client: TestClient, store: LocalFileStore, path: str
) -> None:
    store.write("logos/white/x", LOGO, content_type="image/png")
    (store.root / "logos" / ".x").write_bytes(b"hidden")
    (store.root.parent / "secret_key").write_text("secret")
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["name"] == "NotFoundError"
