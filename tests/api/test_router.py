"""meetd.api.asgi.Router: which resource a path names, and with which parameter."""

from __future__ import annotations

import pytest

from meetd.api.asgi import Resource, Router


async def endpoint(request: object) -> None:
    raise NotImplementedError


ROUTER = Router(
    [
        Resource("/v1/rooms", get=endpoint),
        Resource("/v1/rooms/{room_id}", get=endpoint),
        Resource("/v1/themes/{theme_id}/rooms", get=endpoint),
        Resource("/v1/sessions/{session_id}", get=endpoint),
        Resource("/v1/sessions/{session_id}/recordings", get=endpoint),
        Resource("/files/{key:path}", get=endpoint),
    ]
)


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        ("/v1/rooms", "/v1/rooms", {}),
        ("/v1/rooms/abc", "/v1/rooms/{room_id}", {"room_id": "abc"}),
        ("/v1/themes/t1/rooms", "/v1/themes/{theme_id}/rooms", {"theme_id": "t1"}),
        ("/v1/sessions/s1", "/v1/sessions/{session_id}", {"session_id": "s1"}),
        (
            "/v1/sessions/s1/recordings",
            "/v1/sessions/{session_id}/recordings",
            {"session_id": "s1"},
        ),
        ("/files/logos/white/a.png", "/files/{key:path}", {"key": "logos/white/a.png"}),
        ("/files/a", "/files/{key:path}", {"key": "a"}),
        # One trailing slash is dropped, as Express's default (non-strict) routing did.
        ("/v1/rooms/", "/v1/rooms", {}),
        ("/v1/rooms/abc/", "/v1/rooms/{room_id}", {"room_id": "abc"}),
        ("/v1/themes/t1/rooms/", "/v1/themes/{theme_id}/rooms", {"theme_id": "t1"}),
        ("/files/a/", "/files/{key:path}", {"key": "a/"}),  # a key may end in a slash
    ],
)
def test_a_path_names_its_resource(path: str, template: str, params: dict[str, str]) -> None:
    found = ROUTER.match(path)
    assert found is not None
    resource, values = found
    assert (resource.path, values) == (template, params)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/rooms//",  # only one trailing slash is dropped: an empty parameter is left
        "/v1/rooms/a//",
        "/v1/rooms/a/b",  # a parameter is one segment
        "/v1/rooms/a/b/",
        "/",
        "//",
        "/v1/themes/t1/rooms/x",
        "/v1/themes//rooms",
        "/v1/sessions/s1/other",
        "/files/",
        "/v2/rooms/abc",
        "rooms",
        "",
    ],
)
def test_other_paths_name_nothing(path: str) -> None:
    assert ROUTER.match(path) is None


def test_a_parameter_is_a_whole_segment() -> None:
    with pytest.raises(ValueError, match="whole path segment"):
        Router([Resource("/v1/room-{room_id}", get=endpoint)])
