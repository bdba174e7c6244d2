"""Endpoints for operators: health, metrics, and the OpenAPI document."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import services
from meetd.api.errors import error_body
from meetd.api.openapi import openapi_document
from meetd.api.responses import JSONResponse

# A database that stopped answering (a network that drops packets, a PostgreSQL server that
# hangs) must not make /healthz hang too: a load balancer waits on it to take the process out.
HEALTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    found = services(request)
    try:
        await asyncio.wait_for(found.db.read(lambda c: c.row("SELECT 1")), HEALTH_TIMEOUT_SECONDS)
    except Exception:
        body = error_body(503, "ServiceUnavailableError", "The database does not answer")
        return JSONResponse(body, 503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    return Response(
        services(request).metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(services(request).settings.public_url))
