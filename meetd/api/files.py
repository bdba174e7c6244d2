"""Stub: being written."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response



async def upload(request: Request) -> Response:
    raise NotImplementedError


async def download(request: Request) -> Response:
    raise NotImplementedError

UPLOAD_PATH = "/uploads"
DOWNLOAD_PREFIX = "/files"
