"""Stub: being written."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response



async def update_application(request: Request) -> Response:
    raise NotImplementedError
