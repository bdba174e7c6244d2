"""Every route meetd serves. The API lives under both prefixes with one behaviour (§1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from meetd.api import rooms, service

API_PREFIXES = ("/v1/meetings", "/beta/meetings")
Endpoint = Callable[[Request], Awaitable[Response]]


def resource(path: str, **methods: Endpoint) -> Route:
    """One route per path, dispatching on the method, so a 405 lists every allowed method."""
    table = {method.upper(): endpoint for method, endpoint in methods.items()}

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    dispatch.__name__ = "_".join(endpoint.__name__ for endpoint in table.values())
    return Route(path, dispatch, methods=list(table))


def api_routes(prefix: str) -> list[BaseRoute]:
    return [
        resource(f"{prefix}/rooms", get=rooms.list_rooms, post=rooms.create_room),
        resource(
            f"{prefix}/rooms/{{room_id}}",
            get=rooms.get_room,
            patch=rooms.update_room,
            delete=rooms.delete_room,
        ),
    ]


def all_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        resource("/healthz", get=service.healthz),
        resource("/metrics", get=service.metrics),
        resource("/openapi.json", get=service.openapi),
    ]
    for prefix in API_PREFIXES:
        routes += api_routes(prefix)
    return routes
