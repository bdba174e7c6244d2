"""Stub: being written."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response



async def get_recording(request: Request) -> Response:
    raise NotImplementedError


async def delete_recording(request: Request) -> Response:
    raise NotImplementedError


async def list_session_recordings(request: Request) -> Response:
    raise NotImplementedError
