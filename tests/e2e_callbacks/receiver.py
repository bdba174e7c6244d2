"""A loopback HTTP receiver for the callback tests: it records every request and answers as
scripted.

aiohttp.web runs on an event loop of its own in a thread, so the receiver keeps serving while
the test blocks on a subprocess, an httpx call or :meth:`Receiver.wait_for`. What a path
answers is scripted: a queue of :class:`Reply` values taken one per request, then the path's
default, then 204. A reply may come late (``delay``: past meetd's 5 s timeout, say);
:meth:`Receiver.stop` closes the port so that connections are refused, and
:meth:`Receiver.start` opens the same port again.

Waiting is on a condition that every arrival signals, with a deadline: no test sleeps to see
whether something arrived.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from meetd.delivery.sender import TIMEOUT_SECONDS

WAIT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the receiver answers: ``status`` after ``delay`` seconds."""

    status: int = 204
    delay: float = 0.0
    body: bytes = b""


OK = Reply()
# meetd gives up on an answer after 5 s; this one would come a second later.
TOO_LATE = Reply(204, delay=TIMEOUT_SECONDS + 1)


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as it arrived: ``at`` is ``time.time()`` on arrival (the clock meetd's
    timestamps come from, on the same machine), ``body`` the exact bytes."""

    at: float
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    reply: Reply

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["X-Meetd-Event-Id"]

    @property
    def attempt(self) -> int:
        return int(self.headers["X-Meetd-Delivery-Attempt"])


class Receiver:
    """``receiver.url("/path")`` to send to; ``receiver.script("/path", Reply(500))`` to fail
    the next request there; ``receiver.wait_for_count(3, "/path")`` to wait for arrivals."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._arrived = threading.Condition()
        self._received: list[Received] = []
        self._scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self._defaults: dict[str, Reply] = {}
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Listen: on a free port the first time, on the same port afterwards."""
        self._call(self._start())

    def stop(self) -> None:
        """Close the port (connections are refused from now on) and drop pending answers."""
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def url(self, path: str) -> str:
        assert self.port, "start() the receiver first"
        return f"http://127.0.0.1:{self.port}{path}"

    # -- behaviour -----------------------------------------------------------------------------
    def script(self, path: str, *replies: Reply) -> None:
        """The next requests to ``path`` get these replies, in order."""
        with self._arrived:
            self._scripts[path].extend(replies)

    def answer(self, path: str, reply: Reply) -> None:
        """What ``path`` answers once its script is used up (otherwise 204)."""
        with self._arrived:
            self._defaults[path] = reply

    # -- what arrived --------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[Received]:
        with self._arrived:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(
        self,
        condition: Callable[[list[Received]], bool],
        *,
        path: str | None = None,
        timeout: float = WAIT_SECONDS,
        what: str = "the expected requests",
    ) -> list[Received]:
        """Block until ``condition(requests)`` holds for the requests to ``path`` (all paths
        when None); fail with what did arrive once ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                seen = [r for r in self._received if path is None or r.path == path]
                if condition(seen):
                    return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    summary = [(r.path, r.headers.get("X-Meetd-Event-Id"), r.attempt) for r in seen]
                    raise AssertionError(f"{what} did not arrive in {timeout:g} s; got {summary}")
                self._arrived.wait(left)

    def wait_for_request(
        self,
        match: Callable[[Received], bool],
        path: str | None = None,
        *,
        timeout: float = WAIT_SECONDS,
        what: str = "the expected request",
    ) -> Received:
        """Block until a request that ``match`` accepts arrived; return the first such."""
        seen = self.wait_for(
            lambda seen: any(match(r) for r in seen), path=path, timeout=timeout, what=what
        )
        return next(r for r in seen if match(r))

    def wait_for_count(
        self, count: int, path: str | None = None, *, timeout: float = WAIT_SECONDS
    ) -> list[Received]:
        """Block until at least ``count`` requests arrived (at ``path``)."""
        return self.wait_for(
            lambda seen: len(seen) >= count,
            path=path,
            timeout=timeout,
            what=f"{count} requests{'' if path is None else f' to {path}'}",
        )

    def wait_for_events(
        self, event_ids: set[str], path: str | None = None, *, timeout: float = WAIT_SECONDS
    ) -> list[Received]:
        """Block until each of ``event_ids`` arrived at least once, answered 2xx."""
        return self.wait_for(
            lambda seen: event_ids <= delivered_ids(seen),
            path=path,
            timeout=timeout,
            what=f"{len(event_ids)} events",
        )

    # -- the server, on the receiver's own loop ------------------------------------------------
    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=15)

    async def _start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        # Our own socket, so the port is known before serving and kept across restarts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._stopping = asyncio.Event()
        self._runner = runner

    async def _stop(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        assert self._stopping is not None
        self._stopping.set()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._arrived:
            queue = self._scripts.get(request.path)
            reply = queue.popleft() if queue else self._defaults.get(request.path, OK)
            self._received.append(
                Received(
                    at=time.time(),
                    method=request.method,
                    path=request.path,
                    headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                    body=body,
                    reply=reply,
                )
            )
            self._arrived.notify_all()
        if reply.delay:
            stopping = self._stopping
            assert stopping is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), reply.delay)
            if stopping.is_set() and request.transport is not None:
                request.transport.close()  # stopped meanwhile: hang up without an answer
                return web.Response(status=499)
        return web.Response(status=reply.status, body=reply.body)


def delivered_ids(seen: list[Received]) -> set[str]:
    """The event ids among ``seen`` that were answered 2xx in time (delivered)."""
    return {
        r.event_id
        for r in seen
        if 200 <= r.reply.status < 300
        and r.reply.delay < TIMEOUT_SECONDS
        and "X-Meetd-Event-Id" in r.headers
    }


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.close()
