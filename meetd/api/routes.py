"""Every route meetd serves. The API lives under both prefixes with one behaviour (§1)."""

from __future__ import annotations

from meetd.api import rooms, service
from meetd.api.asgi import Resource

API_PREFIXES = ("/v1/meetings", "/beta/meetings")


def api_resources(prefix: str) -> list[Resource]:
    return [
        Resource(f"{prefix}/rooms", get=rooms.list_rooms, post=rooms.create_room),
        Resource(
            f"{prefix}/rooms/{{room_id}}",
            get=rooms.get_room,
            patch=rooms.update_room,
            delete=rooms.delete_room,
        ),
    ]


def all_resources() -> list[Resource]:
    resources = [
        Resource("/healthz", get=service.healthz),
        Resource("/metrics", get=service.metrics),
        Resource("/openapi.json", get=service.openapi),
    ]
    for prefix in API_PREFIXES:
        resources += api_resources(prefix)
    return resources
