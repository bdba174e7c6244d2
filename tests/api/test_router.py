"""meetd.api.asgi.Router: which resource a path names, and with which parameter."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from meetd.api.asgi import MeetdASGI, Resource, Router, no_lifespan
from meetd.metrics import Metrics


async def endpoint(request: object) -> None:
    raise NotImplementedError


ROUTER = Router(
    [
        Resource("/v1/rooms", get=endpoint),
        Resource("/v1/rooms/{room_id}", get=endpoint),
        Resource("/v1/themes/{theme_id}/rooms", get=endpoint),
        Resource("/v1/sessions/{session_id}", get=endpoint),
        Resource("/v1/sessions/{session_id}/recordings", get=endpoint),
        Resource("/v1/events/redeliver", get=endpoint),
        Resource("/v1/events/{event_id}", get=endpoint),
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
        ("/v1/events/redeliver", "/v1/events/redeliver", {}),
        ("/v1/events/e1", "/v1/events/{event_id}", {"event_id": "e1"}),
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


@pytest.mark.parametrize(
    ("raw_path", "template", "params"),
    [
        # A parameter is the decoded value of one raw segment, slashes and all.
        (b"/v1/rooms/a%2Fb", "/v1/rooms/{room_id}", {"room_id": "a/b"}),
        (b"/v1/rooms/a%2fb", "/v1/rooms/{room_id}", {"room_id": "a/b"}),
        (b"/v1/rooms/%2F", "/v1/rooms/{room_id}", {"room_id": "/"}),
        (b"/v1/rooms/a%2Fb%20c%25", "/v1/rooms/{room_id}", {"room_id": "a/b c%"}),
        (
            b"/v1/sessions/a%2Fb/recordings",
            "/v1/sessions/{session_id}/recordings",
            {"session_id": "a/b"},
        ),
        # The session "x/recordings", not the recordings of the session "x".
        (
            b"/v1/sessions/x%2Frecordings",
            "/v1/sessions/{session_id}",
            {"session_id": "x/recordings"},
        ),
        (b"/v1/themes/t%2F1/rooms", "/v1/themes/{theme_id}/rooms", {"theme_id": "t/1"}),
        (b"/v1/rooms/a%2Fb/", "/v1/rooms/{room_id}", {"room_id": "a/b"}),  # one slash dropped
        (b"/v1/rooms/a%2F/", "/v1/rooms/{room_id}", {"room_id": "a/"}),
        (b"/v1/%72ooms/a%2Fb", "/v1/rooms/{room_id}", {"room_id": "a/b"}),
        # The rest of the path, for {name:path}: an encoded slash is a slash there.
        (b"/files/logos%2Fwhite/a.png", "/files/{key:path}", {"key": "logos/white/a.png"}),
    ],
)
def test_an_encoded_slash_stays_in_its_segment(
    raw_path: bytes, template: str, params: dict[str, str]
) -> None:
    found = ROUTER.match_raw(raw_path)
    assert found is not None
    resource, values = found
    assert (resource.path, values) == (template, params)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/v1/rooms%2Fabc",  # the slash of a route is a real one
        b"/v1%2Frooms",
        b"/v1/rooms/a%2Fb/c",
        b"/v1/rooms/a%2Fb//",
        b"/v1/themes/t%2F1/rooms/x",
        b"/v1/sessions/s1%2F/other",
        b"/%2F",
        b"%2F",
    ],
)
def test_encoded_slashes_name_nothing_else(raw_path: bytes) -> None:
    assert ROUTER.match_raw(raw_path) is None


def test_a_raw_path_without_encoded_slashes_matches_as_its_decoded_path() -> None:
    for path in [
        "/v1/rooms",
        "/v1/rooms/abc/",
        "/v1/sessions/s1/recordings",
        "/files/a/b",
        "/v1/events/redeliver",  # a fixed path wins over a template that also fits
        "/v1/events/e1",
    ]:
        assert ROUTER.match_raw(path.encode()) == ROUTER.match(path)
    # So does a {name:path} parameter, whose slashes are its own anyway.
    for raw_path in [b"/files/a%2Fb", b"/files/%2F/", b"/files/a%2F%2Fb/"]:
        assert ROUTER.match_raw(raw_path) == ROUTER.match(unquote(raw_path.decode()))


async def echo(request: Request) -> Response:
    return JSONResponse(request.path_params)


def get_params(path: str, raw_path: bytes | None) -> Any:
    """GET ``path`` through MeetdASGI (``raw_path`` None: a server that omits it)."""
    app = MeetdASGI(Router([Resource("/v1/rooms/{room_id}", get=echo)]), Metrics(), no_lifespan)
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "headers": []}
    if raw_path is not None:
        scope["raw_path"] = raw_path
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_the_app_matches_an_encoded_slash_on_the_raw_path() -> None:
    assert get_params("/v1/rooms/a/b", b"/v1/rooms/a%2Fb") == (200, {"room_id": "a/b"})
    assert get_params("/v1/rooms/a b", b"/v1/rooms/a%20b") == (200, {"room_id": "a b"})
    assert get_params("/v1/rooms/ab", b"/v1/rooms/ab") == (200, {"room_id": "ab"})
    # Without raw_path (it is optional in ASGI), the decoded path is all there is.
    assert get_params("/v1/rooms/ab", None) == (200, {"room_id": "ab"})
    assert get_params("/v1/rooms/a/b", None)[0] == 404
