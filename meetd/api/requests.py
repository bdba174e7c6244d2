"""Reading request bodies and queries into plain values, with contract errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request

from meetd.domain import validation as check
from meetd.errors import BadRequestError, InputValidationError, MeetdError

MAX_BODY_BYTES = 256 * 1024
_decode = msgspec.json.decode
_UTF8_BOM = b"\xef\xbb\xbf"


async def json_body(request: Request) -> Any:
    """The body as JSON, whatever Content-Type says: the Vonage guide's curl sends
    ``content-type`` in lower case, and some clients send none at all. An empty body is
    ``{}``."""
    body = await _bounded_body(request)
    if body.startswith(_UTF8_BOM):  # Express's body parser dropped it before parsing
        body = body[len(_UTF8_BOM) :]
    if not body or body.isspace():
        # Express's body parser read an empty body as {}, so Vonage answered it with the
        # first field missing (`"display_name" is required`). Whitespace alone reads the same
        # here: it says no more than an empty body. (isspace, unlike strip, copies nothing.)
        return {}
    try:
        return _decode(body)
    except msgspec.DecodeError:
        raise InputValidationError("The request body is not valid JSON") from None
    except RecursionError:  # msgspec's answer to thousands of nested arrays
        raise InputValidationError("The request body is nested too deeply") from None


async def _bounded_body(request: Request) -> bytes:
    """The body, read as it arrives and refused as soon as it passes
    :data:`MAX_BODY_BYTES` (or its Content-Length says it will), so a huge or endless
    body never sits in memory. Read from ASGI's ``receive`` itself: Starlette's
    ``Request.stream``, an async generator, cost 5 µs more a request, a fiftieth of a
    create's CPU on a slow machine (docs/performance.md, the fourteenth session)."""
    if (content_length(request) or 0) > MAX_BODY_BYTES:
        raise _too_large()
    receive = request.receive
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # http.disconnect: the client's doing, not a 500 (as /uploads answers it)
            raise BadRequestError("The client went away during the request")
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> InputValidationError:
    return InputValidationError(f"The request body is larger than {MAX_BODY_BYTES} bytes")


# Past this many digits a Content-Length is over every limit here; int() would also refuse a
# few thousand of them.
_MAX_LENGTH_DIGITS = 18


def content_length(request: Request) -> int | None:
    """What Content-Length announces (None without a valid one), capped at 10**18: larger
    numbers are over every limit anyway."""
    digits = header(request, b"content-length") or ""
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS


def header(request: Request, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case), read from the ASGI scope, whose
    names are lower case, without building Starlette's Headers for the whole request."""
    for found, value in request.scope["headers"]:
        if found == name:
            return str(value.decode("latin-1"))
    return None


def query_int(
    request: Request, name: str, *, minimum: int, maximum: int = check.MAX_SAFE_INTEGER
) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    return check.integer(text, name, minimum=minimum, maximum=maximum)


def path_uuid(request: Request, name: str, not_found: Callable[[str], MeetdError]) -> str:
    """The path parameter ``name`` as a canonical UUID. Anything that is not a UUID names
    nothing: ``not_found(text)`` is raised, as for an id that does not exist."""
    text: str = request.path_params[name]
    found = check.canonical_uuid(text)
    if found is None:
        raise not_found(text)
    return found


def api_prefix(request: Request) -> str:
    """``/v1/meetings`` or ``/beta/meetings``: the prefix the request came in on."""
    path: str = request.scope["path"]
    return "/beta/meetings" if path.startswith("/beta/") else "/v1/meetings"
