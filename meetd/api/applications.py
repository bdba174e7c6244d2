"""``PATCH /applications`` (contract §6): the calling application's default theme."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import authenticate
from meetd.api.requests import json_body
from meetd.api.responses import JSONResponse
from meetd.domain import validation as check
from meetd.store import themes


async def update_application(request: Request) -> Response:
    services, principal = await authenticate(request)
    details = check.update_details(await json_body(request), ("default_theme_id",))
    given = details["default_theme_id"]
    theme_id: str | None = None
    if given is not None:
        # Any string is looked up (Vonage answered a non-UUID with its "not found" 400);
        # null clears the default.
        text = check.string(given, "update_details.default_theme_id", max_length=200)
        theme_id = check.canonical_uuid(text) or text
    account_id = await services.db.write(
        lambda c: themes.set_default_theme(c, principal.application_id, theme_id)
    )
    return JSONResponse(
        {
            "application_id": principal.application_id,
            "account_id": account_id,
            "default_theme_id": theme_id,
        }
    )
