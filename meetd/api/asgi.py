"""The ASGI application: lifespan, routing, error mapping and metrics in one thin layer.

meetd keeps Starlette's Request and Response but not its application and router. Measured
in-process on this project's 2-core machine, Starlette's middleware stack and router cost
about 15 µs a request against 1 µs for a bare ASGI callable — a fifth of a whole GET-room
request — to provide exception middleware and path matching this API barely needs: its
routes are a few fixed paths, each with at most one ``{id}`` segment.
``docs/architecture.md`` has the figures.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from meetd.api.errors import error_response, method_not_allowed, route_not_found, server_error
from meetd.errors import MeetdError
from meetd.metrics import Metrics

Endpoint = Callable[[Request], Awaitable[Response]]
Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[None]]


class Resource:
    """One path and the endpoint for each of its methods.

    A path holds at most one ``{parameter}``, anywhere: ``/v1/meetings/rooms/{room_id}``,
    ``/v1/meetings/themes/{theme_id}/rooms``. It matches one path segment, or, written
    ``{name:path}`` at the end, the rest of the path slashes included (file keys).
    """

    def __init__(self, path: str, **endpoints: Endpoint) -> None:
        self.path = path
        self.endpoints = {method.upper(): endpoint for method, endpoint in endpoints.items()}
        if "GET" in self.endpoints:
            self.endpoints.setdefault("HEAD", self.endpoints["GET"])
        self.allowed = sorted(self.endpoints)
        head, brace, rest = path.partition("{")
        name, _, tail = rest.partition("}")
        self.prefix = head if brace else None
        self.suffix = tail
        self.parameter, _, kind = name.partition(":")
        self.spans_segments = kind == "path"
        if brace and ("{" in tail or kind not in ("", "path") or (kind and tail)):
            raise ValueError(f"one {{parameter}} per path, {{name:path}} only at the end: {path}")
        # The same path as segments, for match_segments: before the parameter, after it.
        self.segments = (head if brace else path).split("/")
        if brace:
            self.segments.pop()  # the empty one after the prefix's final slash
        self.suffix_segments = tail.split("/")[1:]

    def match_segments(self, segments: list[str]) -> dict[str, str] | None:
        """The parameters when ``segments`` (the path split at its slashes, each decoded)
        name this resource, else None."""
        if self.prefix is None:
            return {} if segments == self.segments else None
        count = len(self.segments)
        if segments[:count] != self.segments:
            return None
        rest = segments[count:]
        if self.spans_segments:
            value = "/".join(rest)
        elif len(rest) == 1 + len(self.suffix_segments) and rest[1:] == self.suffix_segments:
            value = rest[0]
        else:
            return None
        return {self.parameter: value} if value else None


class Router:
    """Fixed paths by a dict lookup; templated ones by their prefix, which ends in ``/``: a
    path is looked up at each of its slashes from the right (a handful of dict lookups, not a
    try of every template). A path that names nothing is tried once more without one
    trailing slash, as Express matched."""

    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources
        # For match_raw: fixed paths first, then the longest prefixes, as match tries them.
        self._by_precedence = sorted(
            resources, key=lambda r: (r.prefix is not None, -len(r.segments))
        )
        self._exact = {r.path: r for r in resources if r.prefix is None}
        self._by_prefix: dict[str, list[Resource]] = {}
        for resource in resources:
            if resource.prefix is not None:
                if not resource.prefix.endswith("/"):
                    raise ValueError(f"a {{parameter}} is a whole path segment: {resource.path}")
                self._by_prefix.setdefault(resource.prefix, []).append(resource)

    def match(self, path: str) -> tuple[Resource, dict[str, str]] | None:
        found = self._exact.get(path)
        if found is not None:
            return found, {}
        end = len(path)
        while (cut := path.rfind("/", 0, end)) >= 0:
            for resource in self._by_prefix.get(path[: cut + 1], ()):
                suffix = resource.suffix
                if path.endswith(suffix):
                    value = path[cut + 1 : len(path) - len(suffix)]
                    if value and (resource.spans_segments or "/" not in value):
                        return resource, {resource.parameter: value}
            end = cut
        # Express's default routing (strict: false), which Vonage's service ran on, took
        # ".../rooms/" for ".../rooms": one trailing slash, never two, is dropped. Tried only
        # after a miss, so a path that matches pays nothing.
        if path.endswith("/") and not path.endswith("//") and len(path) > 1:
            return self.match(path[:-1])
        return None

    def match_raw(self, raw_path: bytes) -> tuple[Resource, dict[str, str]] | None:
        """:meth:`match` for a path as sent, percent-encoding and all (ASGI's ``raw_path``).

        A parameter is the decoded value of one raw segment: ``/sessions/a%2Fb/recordings``
        names the session ``a/b``, and ``/sessions/x%2Frecordings`` the session
        ``x/recordings``, where the decoded path would name no resource, or another one.
        Slower than :meth:`match` (every resource is tried): for the rare path that holds an
        encoded slash, the only case where the two differ."""
        segments = [unquote(part) for part in raw_path.decode("latin-1").split("/")]
        found = self._match_segments(segments)
        # One trailing slash is dropped, as in match.
        if found is None and len(segments) > 2 and segments[-1] == "" and segments[-2] != "":
            found = self._match_segments(segments[:-1])
        return found

    def _match_segments(self, segments: list[str]) -> tuple[Resource, dict[str, str]] | None:
        for resource in self._by_precedence:
            params = resource.match_segments(segments)
            if params is not None:
                return resource, params
        return None


class MeetdASGI:
    """``app(scope, receive, send)``; ``app.state`` holds what handlers share."""

    def __init__(self, router: Router, metrics: Metrics, lifespan: Lifespan) -> None:
        self.router = router
        self.metrics = metrics
        self.lifespan = lifespan
        self.state = State()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets arrive with the realtime service
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        scope["app"] = self
        # The decoded path cannot tell a%2Fb from a/b: a path with an encoded slash is
        # matched as sent. One bytes search for the rest (ASGI servers may omit raw_path).
        raw_path: bytes | None = scope.get("raw_path")
        if raw_path is not None and b"%" in raw_path and _has_encoded_slash(raw_path):
            matched = self.router.match_raw(raw_path)
        else:
            matched = self.router.match(path)
        template = "unmatched"
        if matched is None:
            response = route_not_found(method, path)
        else:
            resource, params = matched
            template = resource.path
            endpoint = resource.endpoints.get(method)
            if endpoint is None:
                response = method_not_allowed(method, resource.allowed)
            else:
                scope["path_params"] = params
                try:
                    response = await endpoint(Request(scope, receive))
                except MeetdError as error:
                    response = error_response(error, path, params)
                except Exception as error:
                    response = server_error(error, path)
        await response(scope, receive, send)
        self.metrics.observe(method, template, response.status_code, time.perf_counter() - started)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        try:
            async with self.lifespan(self):
                started = True
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except BaseException as error:
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": repr(error)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


def _has_encoded_slash(raw_path: bytes) -> bool:
    return b"%2f" in raw_path.lower()


@contextlib.asynccontextmanager
async def no_lifespan(app: Any) -> AsyncIterator[None]:
    yield
