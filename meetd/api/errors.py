"""The one place errors become HTTP answers, so every endpoint fails in the same shape.

Application errors: ``{"message", "name", "status"}`` plus ``errors`` when there is a list of
causes (contract §3). Authentication failures: the 401 problem body of contract §2.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from meetd import errors
from meetd.api.responses import JSONResponse
from meetd.domain.randomness import new_uuid
from meetd.domain.validation import canonical_uuid
from meetd.store.backends import is_unavailable

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
            "instance": new_uuid(),
        },
        status_code=401,
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


def error_response(
    exc: errors.MeetdError, path: str, path_params: dict[str, str] | None = None
) -> Response:
    """The answer to a MeetdError: its status and Vonage body. ``path_params`` are the
    request's, as sent (see :func:`name_ids_as_sent`)."""
    if isinstance(exc, errors.AuthenticationError):
        log.info("authentication failed", extra={"reason": exc.message, "path": path})
        return unauthorized()
    message = exc.message
    if path_params and isinstance(exc, errors.NotFoundError):
        message = name_ids_as_sent(message, path_params)
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            status, name = _STATUS[kind]
            return JSONResponse(error_body(status, name, message, exc.errors), status)
    return server_error(exc, path)


def name_ids_as_sent(message: str, path_params: dict[str, str]) -> str:
    """``message`` naming each path id as the client wrote it. Handlers look ids up in their
    canonical form (a lower-case UUID: ``meetd.api.requests.path_uuid``), so that
    ``757266EA-…`` finds the object ``757266ea-…``; the store's not-found message then names
    the canonical form, where Vonage echoed the id sent. Only on the error path."""
    for sent in path_params.values():
        canonical = canonical_uuid(sent)
        if canonical is not None and canonical != sent:
            message = message.replace(canonical, sent)
    return message


def route_not_found(method: str, path: str) -> Response:
    return JSONResponse(error_body(404, "NotFoundError", f"Cannot {method} {path}"), 404)


def method_not_allowed(method: str, allowed: list[str]) -> Response:
    body = error_body(405, "MethodNotAllowedError", f"Method {method} not allowed")
    return JSONResponse(body, 405, headers={"Allow": ", ".join(allowed)})


def server_error(exc: BaseException, path: str) -> Response:
    """Never a stack trace to the client: it goes to the log. A database that cannot be used
    now (down, unreachable, locked) is a 503 with Retry-After, which clients and load
    balancers take as "try again", not a 500."""
    if is_unavailable(exc):
        log.warning("database unavailable", extra={"path": path, "error": repr(exc)})
        body = error_body(503, "ServiceUnavailableError", "The database is not available")
        return JSONResponse(body, 503, headers={"Retry-After": "1"})
    log.error("unhandled error", exc_info=exc, extra={"path": path})
    body = error_body(500, "InternalServerError", "Something went wrong on our side")
    return JSONResponse(body, 500)
