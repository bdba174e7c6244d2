"""S3FileStore against moto's S3 server on a loopback port: real HTTP, real boto3.

moto neither checks a POST policy's conditions nor reads fields sent as file parts (it
answers 500), where S3 and MinIO do both; so the form's conditions are checked here by
reading its policy, and it is posted with plain fields.
"""

from __future__ import annotations

import base64
import calendar
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from meetd.app import create_app
from meetd.clock import FakeClock, SystemClock
from meetd.files import UPLOAD_FORM_SECONDS, StoredFile, links
from meetd.files.factory import open_file_store
from meetd.files.s3 import S3FileStore
from meetd.secret_key import derive_key
from meetd.settings import Settings, build_settings
from tests import support
from tests.files import pngs

TEMP = "auto-expiring-temp/logos/white/7d41"
LOGO = pngs.transparent_logo()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(tmp_path: Path, sqlite_url: str, moto_url: str) -> Settings:
    return build_settings(
        {
            "data_dir": tmp_path / "data",
            "database_url": sqlite_url,
            "public_url": "https://meet.example.test",
            "secret_key": "test-secret-key-of-32-characters",
            "s3_bucket": f"meetd-{uuid.uuid4().hex[:12]}",
            "s3_endpoint_url": moto_url,
            "s3_access_key_id": "test-key",
            "s3_secret_access_key": "test-secret",
        },
        environ={},
    )


@pytest.fixture
def s3(s3_settings: Settings) -> S3FileStore:
    store = open_file_store(s3_settings, b"k" * 32, SystemClock())
    assert isinstance(store, S3FileStore)
    store.client.create_bucket(Bucket=store.bucket)
    return store


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return document


def test_the_client_is_path_style_on_the_configured_endpoint(
    s3: S3FileStore, moto_url: str
) -> None:
    assert s3.client.meta.endpoint_url == moto_url
    assert s3.client.meta.region_name == "us-east-1"
    url = s3.download_url("logos/a", expires_in=60)
    assert url.startswith(f"{moto_url}/{s3.bucket}/logos/a?")


def test_an_upload_form_binds_what_vonages_did(s3: S3FileStore) -> None:
    form = s3.upload_form(
        TEMP, content_type="image/png", max_bytes=1000, extra_fields={"logoType": "white"}
    )
    assert form.url.endswith(f"/{s3.bucket}")
    assert list(form.fields)[:4] == ["Content-Type", "key", "logoType", "bucket"]
    assert form.fields["key"] == TEMP
    assert form.fields["bucket"] == s3.bucket
    policy = policy_of(form.fields)
    conditions = policy["conditions"]
    for condition in (
        {"Content-Type": "image/png"},
        {"logoType": "white"},
        {"bucket": s3.bucket},
        {"key": TEMP},
        ["content-length-range", 1, 1000],
    ):
        assert condition in conditions
    # Every plain field the form carries is named by a condition, or S3 refuses the form.
    named = {name for condition in conditions if isinstance(condition, dict) for name in condition}
    signature_fields = {"policy", "x-amz-signature"}
    assert set(form.fields) - signature_fields <= named
    expiration = calendar.timegm(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expiration - time.time() - UPLOAD_FORM_SECONDS) < 60


def test_upload_with_the_form_then_size_read_fetch_delete(s3: S3FileStore) -> None:
    form = s3.upload_form(
        TEMP, content_type="image/png", max_bytes=10_000, extra_fields={"logoType": "white"}
    )
    before = time.time()
    response = httpx.post(form.url, data=form.fields, files={"file": ("logo.png", LOGO)})
    assert response.status_code == 204, response.text
    assert len(s3.read(TEMP) or b"") == len(LOGO)
    assert s3.read(TEMP) == LOGO
    found = s3.fetch(TEMP, max_bytes=len(LOGO))
    assert found is not None
    assert (found.size, found.data) == (len(LOGO), LOGO)
    assert before - 1 <= found.modified <= time.time()  # LastModified has whole seconds
    assert s3.fetch(TEMP, max_bytes=len(LOGO) - 1) == StoredFile(
        size=len(LOGO), modified=found.modified, data=None
    )
    s3.write("logos/white/7d41", LOGO, content_type="image/png")
    head = s3.client.head_object(Bucket=s3.bucket, Key="logos/white/7d41")
    assert head["ContentType"] == "image/png"
    s3.delete(TEMP)
    assert s3.read(TEMP) is None
    assert s3.read(TEMP) is None
    s3.delete(TEMP)  # a missing file is not an error
    assert s3.read("logos/white/7d41") == LOGO


def test_missing_and_invalid_keys(s3: S3FileStore) -> None:
    assert s3.read("logos/none") is None
    assert s3.read("logos/none") is None
    assert s3.fetch("logos/none", max_bytes=10) is None
    for key in ("../x", "logos//x", ".x"):
        assert s3.read(key) is None
        assert s3.read(key) is None
        assert s3.fetch(key, max_bytes=10) is None
        s3.delete(key)
        with pytest.raises(ValueError, match="not a valid file key"):
            s3.write(key, b"x", content_type="image/png")


def test_a_download_url_fetches_the_file(s3: S3FileStore) -> None:
    s3.write("recordings/a.mp4", b"movie", content_type="video/mp4")
    response = httpx.get(s3.download_url("recordings/a.mp4", expires_in=60))
    assert response.status_code == 200
    assert response.content == b"movie"
    assert response.headers["content-type"] == "video/mp4"


def test_stale_temporary_objects_are_deleted(s3: S3FileStore) -> None:
    s3.write(TEMP, b"old", content_type="image/png")
    s3.write("auto-expiring-temp/logos/colored/x", b"old", content_type="image/png")
    s3.write("logos/white/kept", b"final", content_type="image/png")
    assert s3.delete_stale_temporary(time.time()) == 0
    assert len(s3.read(TEMP) or b"") == 3
    assert s3.delete_stale_temporary(time.time() + UPLOAD_FORM_SECONDS + 60) == 2
    assert s3.read(TEMP) is None
    assert s3.read("logos/white/kept") == b"final"


@pytest.fixture
def s3_client(s3_settings: Settings, s3: S3FileStore) -> Iterator[TestClient]:
    # meetd's clock near the bucket's: an upload's age is LastModified against meetd's now.
    clock = FakeClock(time.time_ns() // 1_000_000)
    app = create_app(s3_settings, clock=clock, run_sweeper=False)
    with TestClient(app, base_url="https://meet.example.test") as test_client:
        yield test_client


def test_the_api_under_s3(s3_client: TestClient, s3: S3FileStore, moto_url: str) -> None:
    files = s3_client.app.state.services.files  # type: ignore[attr-defined]
    assert isinstance(files, S3FileStore)
    form = files.upload_form(TEMP, content_type="image/png", max_bytes=10, extra_fields={})
    assert form.url == f"{moto_url}/{s3.bucket}"
    # meetd's own upload endpoint is for the local store only.
    response = s3_client.post("/uploads", files={"file": ("logo.png", LOGO)})
    support.assert_error(response, 404, "NotFoundError", "Cannot POST /uploads")
    # Logos are proxied, cacheable.
    s3.write("logos/white/7d41", LOGO, content_type="image/png")
    response = s3_client.get(files.public_url("logos/white/7d41"))
    assert response.status_code == 200
    assert response.content == LOGO
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = response.headers["etag"]
    cached = s3_client.get("/files/logos/white/7d41", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert s3_client.get("/files/logos/white/none").status_code == 404
    assert s3_client.get(f"/files/{TEMP}").status_code == 404


def test_signed_links_redirect_to_the_bucket(
    s3_client: TestClient, s3: S3FileStore, moto_url: str
) -> None:
    s3.write("recordings/b.mp4", b"movie", content_type="video/mp4")
    clock = s3_client.app.state.services.clock  # type: ignore[attr-defined]
    expires = clock.now_ms() // 1000 + 60
    signature = links.sign_link(
        "recordings/b.mp4", expires, derive_key("test-secret-key-of-32-characters", "files")
    )
    path = f"/files/recordings/b.mp4?expires={expires}&signature={signature}"
    response = s3_client.get(path, follow_redirects=False)
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(f"{moto_url}/{s3.bucket}/recordings/b.mp4?")
    assert httpx.get(location).content == b"movie"
    unsigned = s3_client.get("/files/recordings/b.mp4", follow_redirects=False)
    assert unsigned.status_code == 403


def test_a_theme_logo_through_the_bucket(s3_client: TestClient, s3: S3FileStore) -> None:
    """The whole logo flow with files in S3: the form from the API, the upload straight to
    the bucket, finalizeLogos reading it there, the link serving it from there."""
    clock = s3_client.app.state.services.clock  # type: ignore[attr-defined]
    caller = support.create_account(s3_client, clock)
    theme = s3_client.post(
        "/v1/meetings/themes",
        headers=caller.basic,
        json={"main_color": "#123", "brand_text": "Bucket"},
    ).json()
    forms = s3_client.get("/v1/meetings/themes/logos-upload-urls", headers=caller.basic).json()
    white = next(form for form in forms if form["fields"]["logoType"] == "white")
    assert white["url"].endswith(f"/{s3.bucket}")
    # Plain fields: moto answers 500 to fields sent as file parts (see the module's docstring).
    uploaded = httpx.post(white["url"], data=white["fields"], files={"file": ("l.png", LOGO)})
    assert uploaded.status_code == 204, uploaded.text

    response = s3_client.put(
        f"/v1/meetings/themes/{theme['theme_id']}/finalizeLogos",
        headers=caller.basic,
        json={"keys": [white["fields"]["key"]]},
    )

    assert response.status_code == 200, response.text
    key = response.json()["brand_image_white"]
    assert s3.read(key) == LOGO
    assert s3.read(white["fields"]["key"]) is None  # moved out of the temporary area
    assert s3_client.get(response.json()["brand_image_white_url"]).content == LOGO


def upload_logos(s3_client: TestClient) -> tuple[support.Caller, str, dict[str, str]]:
    """An account, a theme of its, and one good upload of each logo type in the bucket (by
    type): the upload keys."""
    clock = s3_client.app.state.services.clock  # type: ignore[attr-defined]
    caller = support.create_account(s3_client, clock)
    theme = s3_client.post(
        "/v1/meetings/themes", headers=caller.basic, json={"main_color": "#123", "brand_text": "B"}
    ).json()
    forms = s3_client.get("/v1/meetings/themes/logos-upload-urls", headers=caller.basic).json()
    keys = {}
    for form in forms:
        logo_type = form["fields"]["logoType"]
        data = pngs.opaque(32, 32, mode="RGBA") if logo_type == "favicon" else LOGO
        uploaded = httpx.post(form["url"], data=form["fields"], files={"file": ("l.png", data)})
        assert uploaded.status_code == 204, uploaded.text
        keys[logo_type] = form["fields"]["key"]
    return caller, theme["theme_id"], keys


def test_an_expired_upload_in_the_bucket_is_not_found(s3_client: TestClient) -> None:
    """Its age is its LastModified against meetd's clock, as for the sweep, which may not
    have deleted it yet."""
    caller, theme_id, keys = upload_logos(s3_client)
    clock = s3_client.app.state.services.clock  # type: ignore[attr-defined]
    clock.advance(UPLOAD_FORM_SECONDS + 60)  # LastModified has whole seconds, a clock of its own

    response = s3_client.put(
        f"/v1/meetings/themes/{theme_id}/finalizeLogos",
        headers=caller.basic,
        json={"keys": [keys["white"]]},
    )

    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"logoKey": keys["white"], "code": "key_not_found"}]


def test_a_failed_write_to_the_bucket_leaves_no_logo_behind(
    s3_client: TestClient, s3: S3FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bucket refuses the favicon after the other logos were written: the logos this
    request did write are deleted, and the theme is unchanged."""
    caller, theme_id, keys = upload_logos(s3_client)
    files = s3_client.app.state.services.files  # type: ignore[attr-defined]
    write = files.write

    def refuse_favicons(key: str, data: bytes, *, content_type: str) -> None:
        if key.startswith("logos/favicon/"):
            raise OSError("the bucket is unreachable")
        write(key, data, content_type=content_type)

    monkeypatch.setattr(files, "write", refuse_favicons)
    response = s3_client.put(
        f"/v1/meetings/themes/{theme_id}/finalizeLogos",
        headers=caller.basic,
        json={"keys": list(keys.values())},
    )

    assert response.status_code == 500

    assert s3.client.list_objects_v2(Bucket=s3.bucket, Prefix="logos/")["KeyCount"] == 0
    body = s3_client.get(f"/v1/meetings/themes/{theme_id}", headers=caller.basic).json()
    assert body["brand_image_white"] is None and body["branded_favicon"] is None
    assert all(s3.read(key) is not None for key in keys.values())  # still there to retry
