"""Stub: being written."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response



async def list_themes(request: Request) -> Response:
    raise NotImplementedError


async def create_theme(request: Request) -> Response:
    raise NotImplementedError


async def logo_upload_forms(request: Request) -> Response:
    raise NotImplementedError


async def get_theme(request: Request) -> Response:
    raise NotImplementedError


async def update_theme(request: Request) -> Response:
    raise NotImplementedError


async def delete_theme(request: Request) -> Response:
    raise NotImplementedError


async def list_theme_rooms(request: Request) -> Response:
    raise NotImplementedError


async def finalize_logos(request: Request) -> Response:
    raise NotImplementedError
