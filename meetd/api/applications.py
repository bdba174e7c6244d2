"""``PATCH /applications`` (contract §6): the calling application's default theme."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import authenticate
from meetd.api.requests import json_body
from meetd.api.responses import JSONResponse
from meetd.domain import validation as check
from meetd.errors import BadRequestError
from meetd.store import themes


async def update_application(request: Request) -> Response:
    services, principal = await authenticate(request)
    details = check.update_details(await json_body(request), ("default_theme_id",))
    given = details["default_theme_id"]
    theme_id: str | None = None  # null clears the default
    if given is not None:
        if not isinstance(given, str):
            raise check.fail('"update_details.default_theme_id" must be a string')
        # Any other string names no theme of this application (docs/api.md), as Vonage
        # answered a non-UUID: theme ids are UUIDs, so one that is not is not looked up.
        theme_id = check.canonical_uuid(given)
        if theme_id is None:
            raise _theme_not_found(given)
    account_id = await services.db.write(
        lambda c: themes.set_default_theme(c, principal.application_id, theme_id)
    )
    if account_id is None:
        raise _theme_not_found(given)
    return JSONResponse(
        {
            "application_id": principal.application_id,
            "account_id": account_id,
            "default_theme_id": theme_id,
        }
    )


def _theme_not_found(given: str) -> BadRequestError:
    # The id as the client sent it, upper-case or not.
    return BadRequestError(f"Failed to update application because theme id {given} not found")
