"""JSON responses. The media type is exactly ``application/json``: the Node SDK parses a
body only when the Content-Type says precisely that (contract §10)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.encode


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


class EncodedJSONResponse(Response):
    """A JSON body that is already bytes."""

    media_type = "application/json"


def no_content() -> Response:
    return Response(status_code=204)
