"""Stub: being written."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response



async def list_dial_in_numbers(request: Request) -> Response:
    raise NotImplementedError
