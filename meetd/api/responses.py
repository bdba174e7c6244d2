"""JSON responses. The media type is exactly ``application/json``: the Node SDK parses a
body only when the Content-Type says precisely that (contract §10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.encode
_JSON_TYPE = (b"content-type", b"application/json")


class EncodedJSONResponse(Response):
    """A JSON body that is already bytes.

    Without extra headers, the two headers are written directly: Starlette's general
    ``init_headers`` cost a fifth of a GET's own Python time (measured in-process)."""

    media_type = "application/json"

    def __init__(
        self, body: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        if headers is None:
            self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]
        else:
            self.init_headers(headers)


class JSONResponse(EncodedJSONResponse):
    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(_encode(content), status_code, headers)


def no_content() -> Response:
    return Response(status_code=204)
