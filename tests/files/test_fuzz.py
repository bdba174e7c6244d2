"""No input makes the file endpoints fail with a 500: mangled uploads and odd paths."""

from __future__ import annotations

from urllib.parse import quote

import hypothesis
from hypothesis import strategies as st
from requests.models import RequestEncodingMixin
from starlette.testclient import TestClient

from meetd.files.local import LocalFileStore

SETTINGS = hypothesis.settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)


@st.composite
def mangled(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` with a few bytes flipped, cut out or inserted."""
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def test_mangled_uploads_never_fail_the_server(client: TestClient, store: LocalFileStore) -> None:
    form = store.upload_form(
        "auto-expiring-temp/logos/white/f", content_type="image/png", max_bytes=64, extra_fields={}
    )
    body, content_type = RequestEncodingMixin._encode_files({**form.fields, "file": b"x" * 40}, {})

    @SETTINGS
    @hypothesis.given(mangled(body), st.sampled_from([content_type, "multipart/form-data; b=1"]))
    def post(data: bytes, header: str) -> None:
        response = client.post("/uploads", content=data, headers={"Content-Type": header})
        assert response.status_code in (204, 400, 403), response.text
        if response.status_code != 204:
            assert set(response.json()) == {"message", "name", "status"}

    post()


def test_odd_download_paths_never_fail_the_server(client: TestClient) -> None:
    @SETTINGS
    @hypothesis.given(st.text(min_size=1, max_size=80), st.text(max_size=40))
    def get(key: str, query: str) -> None:
        path = "/files/recordings/" + quote(key, safe="/")
        response = client.get(path, params={"expires": query, "signature": query})
        assert response.status_code in (403, 404), response.text

    get()
