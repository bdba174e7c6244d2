"""POST /uploads: the local store's signed upload forms, posted the ways clients post them."""

from __future__ import annotations

from typing import Any

import pytest
from requests.models import RequestEncodingMixin
from starlette.testclient import TestClient

from meetd.api.files import FORM_ALLOWANCE_BYTES
from meetd.clock import FakeClock
from meetd.files import UPLOAD_FORM_SECONDS, UploadForm
from meetd.files.local import LocalFileStore
from tests import support
from tests.files import pngs

KEY = "auto-expiring-temp/logos/white/9a2e"
LOGO = pngs.transparent_logo()


def new_form(store: LocalFileStore, max_bytes: int = 1_048_576) -> UploadForm:
    return store.upload_form(
        KEY, content_type="image/png", max_bytes=max_bytes, extra_fields={"logoType": "white"}
    )


def post_like_the_sdk(client: TestClient, url: str, fields: dict[str, Any]) -> Any:
    """Exactly what the Python SDK's ``requests.post(url, files={**fields, "file": f})``
    sends: every field a file part named after itself, no part Content-Type."""
    body, content_type = RequestEncodingMixin._encode_files(fields, {})
    return client.post(url, content=body, headers={"Content-Type": content_type})


def post_plain(client: TestClient, url: str, fields: dict[str, str], data: bytes) -> Any:
    """As a browser form does: plain fields, then the file."""
    return client.post(url, data=fields, files={"file": ("logo.png", data, "image/png")})


def assert_refused(response: Any, store: LocalFileStore, name: str, message: str) -> None:
    """The error body exactly, and nothing stored."""
    status = 403 if name == "ForbiddenError" else 400
    support.assert_error(response, status, name, message)
    assert store.read(KEY) is None


def test_the_sdks_way_stores_the_file(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    assert form.url == "https://meet.example.test/uploads"
    response = post_like_the_sdk(client, form.url, {**form.fields, "file": LOGO})
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert store.read(KEY) == LOGO


def test_plain_fields_store_the_file(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    response = post_plain(client, form.url, form.fields, LOGO)
    assert response.status_code == 204, response.text
    assert store.read(KEY) == LOGO


def test_a_file_of_exactly_max_bytes_is_accepted(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store, max_bytes=len(LOGO))
    assert post_plain(client, form.url, form.fields, LOGO).status_code == 204


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "logos/white/9a2e"}, "The upload form's key does not match its policy"),
        ({"key": "auto-expiring-temp/logos/white/other"}, "The upload form's key does not match"),
        ({"Content-Type": "image/svg+xml"}, "The upload form's Content-Type does not match"),
        ({"logoType": "favicon"}, "The upload form's logoType does not match its policy"),
        ({"X-Meetd-Signature": "f" * 64}, "The upload form's signature does not match its"),
        ({"success_action_status": "201"}, "The upload form's policy does not allow the field"),
    ],
)
def test_a_tampered_form_is_refused(
    client: TestClient, store: LocalFileStore, change: dict[str, str], message: str
) -> None:
    form = new_form(store)
    response = post_like_the_sdk(client, form.url, {**form.fields, **change, "file": LOGO})
    assert response.status_code == 403, response.text
    assert response.json()["message"].startswith(message)
    assert response.json()["name"] == "ForbiddenError"
    assert store.read(KEY) is None
    assert store.read("logos/white/9a2e") is None
    assert store.read("auto-expiring-temp/logos/white/other") is None


def test_a_form_with_a_policy_from_another_form_is_refused(
    client: TestClient, store: LocalFileStore
) -> None:
    big = store.upload_form(
        "auto-expiring-temp/x", content_type="image/png", max_bytes=10**7, extra_fields={}
    )
    form = new_form(store)
    fields = {**form.fields, "Policy": big.fields["Policy"]}
    response = post_plain(client, form.url, fields, LOGO)
    assert_refused(
        response, store, "ForbiddenError", "The upload form's signature does not match its policy"
    )


@pytest.mark.parametrize("missing", ["Policy", "X-Meetd-Signature"])
def test_a_form_without_its_policy_or_signature_is_refused(
    client: TestClient, store: LocalFileStore, missing: str
) -> None:
    fields = dict(new_form(store).fields)
    del fields[missing]
    response = post_like_the_sdk(client, "/uploads", {**fields, "file": LOGO})
    assert_refused(
        response, store, "ForbiddenError", "The upload form has no policy or no signature"
    )


def test_a_stale_form_is_refused(
    client: TestClient, store: LocalFileStore, clock: FakeClock
) -> None:
    form = new_form(store)
    clock.advance(UPLOAD_FORM_SECONDS)
    response = post_like_the_sdk(client, form.url, {**form.fields, "file": LOGO})
    assert_refused(response, store, "ForbiddenError", "The upload form has expired")


def test_a_form_works_until_it_expires(
    client: TestClient, store: LocalFileStore, clock: FakeClock
) -> None:
    form = new_form(store)
    clock.advance(UPLOAD_FORM_SECONDS - 1)
    assert post_like_the_sdk(client, form.url, {**form.fields, "file": LOGO}).status_code == 204


def test_a_form_may_be_used_again_and_the_last_upload_wins(
    client: TestClient, store: LocalFileStore
) -> None:
    """As with S3's presigned POST, which cannot be limited to one use (docs/storage.md)."""
    form = new_form(store)
    newer = pngs.transparent_logo(200, 100)
    assert post_plain(client, form.url, form.fields, LOGO).status_code == 204
    assert post_plain(client, form.url, form.fields, newer).status_code == 204
    assert store.read(KEY) == newer


def test_a_file_over_the_forms_limit_is_refused(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store, max_bytes=len(LOGO) - 1)
    response = post_like_the_sdk(client, form.url, {**form.fields, "file": LOGO})
    message = f"The file is larger than the form allows ({len(LOGO) - 1} bytes)"
    assert_refused(response, store, "BadRequestError", message)


def test_a_large_body_is_refused_by_its_content_length(
    client: TestClient, store: LocalFileStore
) -> None:
    # The Content-Length announces more than the form allows: refused when the file part
    # starts, before the rest of the body is read.
    form = new_form(store, max_bytes=1000)
    response = post_plain(client, form.url, form.fields, b"\0" * (FORM_ALLOWANCE_BYTES + 2000))
    assert_refused(
        response, store, "BadRequestError", "The file is larger than the form allows (1000 bytes)"
    )


def test_a_streamed_body_is_bounded_without_a_content_length(
    client: TestClient, store: LocalFileStore
) -> None:
    form = new_form(store, max_bytes=1000)
    body, content_type = RequestEncodingMixin._encode_files(
        {**form.fields, "file": b"x" * 5000}, {}
    )
    chunks = [body[i : i + 512] for i in range(0, len(body), 512)]
    response = client.post(form.url, content=iter(chunks), headers={"Content-Type": content_type})
    assert "content-length" not in response.request.headers
    assert_refused(
        response, store, "BadRequestError", "The file is larger than the form allows (1000 bytes)"
    )


def test_huge_fields_before_the_file_are_refused(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    fields = {**form.fields, "padding": "x" * FORM_ALLOWANCE_BYTES}
    response = post_plain(client, form.url, fields, LOGO)
    message = f"The upload's fields are larger than {FORM_ALLOWANCE_BYTES} bytes"
    assert_refused(response, store, "BadRequestError", message)


def test_a_form_without_a_file_is_refused(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    response = post_like_the_sdk(client, form.url, dict(form.fields))
    assert_refused(response, store, "InputValidationError", 'The upload has no "file" part')


def test_an_empty_file_is_refused(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    response = post_plain(client, form.url, form.fields, b"")
    assert_refused(response, store, "BadRequestError", "The uploaded file is empty")


def test_the_file_must_come_after_the_fields(client: TestClient, store: LocalFileStore) -> None:
    # As on S3: fields after the file are not part of the form.
    form = new_form(store)
    response = post_like_the_sdk(client, form.url, {"file": LOGO, **form.fields})
    assert_refused(
        response, store, "ForbiddenError", "The upload form has no policy or no signature"
    )


def test_a_repeated_field_is_refused(client: TestClient, store: LocalFileStore) -> None:
    form = new_form(store)
    parts = [*form.fields.items(), ("key", KEY), ("file", LOGO)]
    body, content_type = RequestEncodingMixin._encode_files(parts, {})
    response = client.post(form.url, content=body, headers={"Content-Type": content_type})
    assert_refused(response, store, "InputValidationError", "The upload repeats the field key")


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("multipart/form-data; boundary=xyz", b"garbage", "The upload is not valid"),
        ("multipart/form-data; boundary=xyz", b"", "The upload ends before"),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--xyz--\r\n",
            "An upload part has no name",
        ),
        (
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="key"\r\n\r\n\xff\r\n--xyz--\r\n',
            "An upload field is not UTF-8",
        ),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nbroken header line\r\n\r\n",
            "The upload is not valid multipart/form-data",
        ),
        ("multipart/form-data", b"--xyz--\r\n", "The upload must be multipart/form-data"),
        ("application/json", b"{}", "The upload must be multipart/form-data"),
        (None, b"", "The upload must be multipart/form-data"),
        (
            "multipart/form-data; boundary=" + "b" * 300,
            b"",
            "The upload is not valid multipart/form-data",
        ),
    ],
)
def test_malformed_bodies_are_refused(
    client: TestClient, store: LocalFileStore, content_type: str | None, body: bytes, message: str
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/uploads", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(message)
    assert response.json()["name"] == "InputValidationError"


def test_garbage_after_a_valid_form_start_is_refused(
    client: TestClient, store: LocalFileStore
) -> None:
    form = new_form(store)
    body, content_type = RequestEncodingMixin._encode_files({**form.fields, "file": LOGO}, {})
    response = client.post(form.url, content=body[:-40], headers={"Content-Type": content_type})
    assert_refused(
        response, store, "InputValidationError", "The upload ends before its closing boundary"
    )
