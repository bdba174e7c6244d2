"""The file store's HTTP side: ``POST /uploads`` takes the file of a signed upload form (the
local store's stand-in for S3's browser POST), ``GET /files/{key}`` serves files.

Uploads are read as a stream and bounded as they arrive, never whole into memory unchecked:
the fields before the file may take :data:`FORM_ALLOWANCE_BYTES`; the file may start only
once they carry a valid policy (as on S3, ``file`` comes last and anything after it is
ignored), and from then on the body may grow only by the policy's size limit.

The official Python SDK posts every field as a file part (``requests.post(files={**fields,
"file": ...})``), so a part's filename is ignored: a part is a field by its name alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from meetd.api.context import services
from meetd.api.requests import content_length
from meetd.errors import BadRequestError, ForbiddenError, InputValidationError, NotFoundError
from meetd.files import PUBLIC_PREFIX, TEMPORARY_PREFIX, FileStore
from meetd.files.forms import UploadPolicy
from meetd.files.keys import is_valid_key
from meetd.files.local import LocalFileStore

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

UPLOAD_PATH = "/uploads"
DOWNLOAD_PREFIX = "/files"
# Everything in an upload's body but the file: the fields, part headers and boundaries.
FORM_ALLOWANCE_BYTES = 16 * 1024
_SLICE_BYTES = 4096
# Keys are never reused for other content (a new logo gets a new key), so caches may keep
# a public file for good.
PUBLIC_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Only finalized logos are public, and a logo is a PNG (meetd.domain.logos).
PUBLIC_MEDIA_TYPE = "image/png"
# How long the bucket link a signed /files link redirects to stays good.
REDIRECT_LINK_SECONDS = 300


async def upload(request: Request) -> Response:
    store = services(request).files
    if not isinstance(store, LocalFileStore):  # with a bucket, forms post to the bucket
        raise NotFoundError(f"Cannot POST {UPLOAD_PATH}")
    try:
        form = _UploadReader(store, request)
        async for chunk in request.stream():
            form.feed(chunk)
        form.parser.finalize()
    except FormParserError:
        raise InputValidationError("The upload is not valid multipart/form-data") from None
    except ClientDisconnect:
        raise BadRequestError("The client went away during the upload") from None
    policy, data = form.result()
    await asyncio.to_thread(store.write, policy.key, data, content_type=policy.content_type)
    return Response(status_code=204)


class _UploadReader:
    """Feeds a multipart body to python-multipart and collects the form from its callbacks,
    raising as soon as the body breaks a rule."""

    def __init__(self, store: LocalFileStore, request: Request) -> None:
        media_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if media_type != b"multipart/form-data" or not boundary:
            raise InputValidationError("The upload must be multipart/form-data")
        self.store = store
        self.content_length = content_length(request)
        self.fields: dict[str, str] = {}
        self.policy: UploadPolicy | None = None
        self.file: bytearray | None = None
        self._limit = FORM_ALLOWANCE_BYTES  # body bytes allowed until the file starts
        self._received = 0
        self._name: str | None = None  # the current part's, None while ignoring it
        self._value = bytearray()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._file_done = False
        self._ended = False
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._part_begins,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_ends,
            "on_headers_finished": self._headers_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_ends,
            "on_end": self._body_ends,
        }
        self.parser = MultipartParser(boundary, callbacks)

    def feed(self, chunk: bytes) -> None:
        # In slices, so the limit is checked against what the parser has seen: a chunk may
        # hold the small fields, the start of the file (which raises the limit), and more.
        for start in range(0, len(chunk), _SLICE_BYTES):
            piece = chunk[start : start + _SLICE_BYTES]
            self._received += len(piece)
            if self._received > self._limit:
                raise BadRequestError(self._too_large())
            self.parser.write(piece)

    def result(self) -> tuple[UploadPolicy, bytes]:
        if not self._ended:
            raise InputValidationError("The upload ends before its closing boundary")
        if self.policy is None or self.file is None or not self._file_done:
            raise InputValidationError('The upload has no "file" part')
        if not self.file:
            raise BadRequestError("The uploaded file is empty")
        return self.policy, bytes(self.file)

    def _too_large(self) -> str:
        if self.policy is None:
            return f"The upload's fields are larger than {FORM_ALLOWANCE_BYTES} bytes"
        return f"The file is larger than the form allows ({self.policy.max_bytes} bytes)"

    def _part_begins(self) -> None:
        self._name = None
        self._disposition = b""
        self._value.clear()

    def _header_ends(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_end(self) -> None:
        if self.file is not None:  # after the file: ignored, as S3 ignores it
            return
        _, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InputValidationError("An upload part has no name")
        name = _text(raw_name)
        if name in self.fields:
            raise InputValidationError(f"The upload repeats the field {name}")
        self._name = name
        if name == "file":
            self._start_file()

    def _start_file(self) -> None:
        policy = self.store.verify_upload(self.fields)  # ForbiddenError: 403
        self._limit = policy.max_bytes + FORM_ALLOWANCE_BYTES
        self.policy = policy
        if self.content_length is not None and self.content_length > self._limit:
            raise BadRequestError(self._too_large())
        self.file = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is None:
            return
        if self._name != "file":
            self._value.extend(data[start:end])  # bounded by FORM_ALLOWANCE_BYTES
            return
        assert self.file is not None and self.policy is not None
        self.file.extend(data[start:end])
        if len(self.file) > self.policy.max_bytes:
            raise BadRequestError(self._too_large())

    def _part_ends(self) -> None:
        if self._name == "file":
            self._file_done = True
        elif self._name is not None:
            self.fields[self._name] = _text(bytes(self._value))
        self._name = None

    def _body_ends(self) -> None:
        self._ended = True


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InputValidationError("An upload field is not UTF-8") from None


async def download(request: Request) -> Response:
    store = services(request).files
    key: str = request.path_params["key"]
    if not is_valid_key(key) or key.startswith(TEMPORARY_PREFIX):
        raise _file_not_found(key)
    public = key.startswith(PUBLIC_PREFIX)
    if not public:
        query = request.query_params
        if not store.verify_link(
            key, expires=query.get("expires"), signature=query.get("signature")
        ):
            raise ForbiddenError("The download link is not valid or has expired")
    if isinstance(store, LocalFileStore):
        return await _serve_local(request, store, key, public=public)
    return await _serve_remote(request, store, key, public=public)


async def _serve_local(
    request: Request, store: LocalFileStore, key: str, *, public: bool
) -> Response:
    found = await asyncio.to_thread(store.stat, key)
    path = store.path(key)
    if found is None or path is None:
        raise _file_not_found(key)
    if not public:
        media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        headers = {"Cache-Control": "private"}
        return FileResponse(path, stat_result=found, media_type=media_type, headers=headers)
    headers = _public_headers(_etag(key, str(found.st_size), str(found.st_mtime_ns)))
    if _not_modified(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, stat_result=found, media_type=PUBLIC_MEDIA_TYPE, headers=headers)


async def _serve_remote(request: Request, store: FileStore, key: str, *, public: bool) -> Response:
    if not public:
        url = await asyncio.to_thread(store.download_url, key, expires_in=REDIRECT_LINK_SECONDS)
        return RedirectResponse(url, status_code=307)
    data = await asyncio.to_thread(store.read, key)
    if data is None:
        raise _file_not_found(key)
    headers = _public_headers(_etag(hashlib.sha256(data).hexdigest()))
    if _not_modified(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=PUBLIC_MEDIA_TYPE, headers=headers)


def _public_headers(etag: str) -> dict[str, str]:
    return {"Cache-Control": PUBLIC_CACHE_CONTROL, "ETag": etag}


def _etag(*parts: str) -> str:
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match holds ``*`` or the ETag (weak comparison)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def _file_not_found(key: str) -> NotFoundError:
    return NotFoundError(f"File {key} was not found")
