"""``GET /dial-in-numbers`` (contract §8): the numbers the operator configured with
``meetd dial-in-numbers add``, the same for every application; ``[]`` until there are any."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from meetd.api.context import authenticate
from meetd.api.responses import JSONResponse
from meetd.store.dial_in_numbers import list_dial_in_numbers as read_numbers


async def list_dial_in_numbers(request: Request) -> Response:
    services, _ = await authenticate(request)
    numbers = await services.db.read(read_numbers)
    return JSONResponse(
        [{"number": n.number, "locale": n.locale, "display_name": n.display_name} for n in numbers]
    )
