"""The one place errors become HTTP answers, so every endpoint fails in the same shape.

Application errors: ``{"message", "name", "status"}`` plus ``errors`` when there is a list of
causes (contract §3). Authentication failures: the 401 problem body of contract §2.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from meetd import errors
from meetd.api.responses import JSONResponse

log = logging.getLogger("meetd.api")

_STATUS: dict[type[errors.MeetdError], tuple[int, str]] = {
    errors.InputValidationError: (400, "InputValidationError"),
    errors.BadRequestError: (400, "BadRequestError"),
    errors.ForbiddenError: (403, "ForbiddenError"),
    errors.NotFoundError: (404, "NotFoundError"),
    errors.ConflictError: (409, "ConflictError"),
}

UNAUTHORIZED_TYPE = "https://developer.vonage.com/api-errors#unauthorized"
WWW_AUTHENTICATE = 'Basic realm="meetd", Bearer realm="meetd"'


def error_body(
    status: int, name: str, message: str, causes: list[Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "name": name}
    if causes is not None:
        body["errors"] = causes
    body["status"] = status
    return body


def unauthorized() -> Response:
    return JSONResponse(
        {
            "type": UNAUTHORIZED_TYPE,
            "title": "Unauthorized",
            "detail": "You did not provide correct credentials.",
            "instance": str(uuid.uuid4()),
        },
        status_code=401,
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


async def meetd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.MeetdError)
    if isinstance(exc, errors.AuthenticationError):
        log.info("authentication failed", extra={"reason": exc.message, "path": request.url.path})
        return unauthorized()
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            status, name = _STATUS[kind]
            return JSONResponse(error_body(status, name, exc.message, exc.errors), status)
    return await server_error(request, exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors: an unknown route (404) or a wrong method (405)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        body = error_body(405, "MethodNotAllowedError", f"Method {request.method} not allowed")
        return JSONResponse(body, 405, headers=dict(exc.headers or {}))
    if exc.status_code == 404:
        message = f"Cannot {request.method} {request.url.path}"
        return JSONResponse(error_body(404, "NotFoundError", message), 404)
    name = "BadRequestError" if exc.status_code == 400 else "Error"
    return JSONResponse(error_body(exc.status_code, name, str(exc.detail)), exc.status_code)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    body = error_body(500, "InternalServerError", "Something went wrong on our side")
    return JSONResponse(body, 500)


HANDLERS = {
    errors.MeetdError: meetd_error,
    HTTPException: http_error,
    Exception: server_error,
}
