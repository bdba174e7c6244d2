"""A callback receiver that checks every request from meetd before it trusts it.

Run it with the application's signature secret (``meetd applications create --json`` prints
it)::

    pip install pyjwt
    MEETD_SIGNATURE_SECRET=... python verify_callback.py 8000

then send an application's events to it::

    meetd applications update APPLICATION_ID --rooms-callback-url http://127.0.0.1:8000/meetd

A request is accepted (204) only when its ``Authorization: Bearer`` JWT verifies with the
secret (HS256), is fresh, and its ``payload_hash`` claim is the SHA-256 of the exact body
bytes; anything else gets 401 and is not looked at. meetd delivers at least once, so an event
id seen before is answered 204 again but handled only once. The standard library and PyJWT
are all it needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import jwt

MAX_AGE_SECONDS = 300  # meetd signs each attempt when it sends it; older tokens are replays
MAX_BODY_BYTES = 64 * 1024


class Rejected(Exception):
    """The request did not come from meetd with this secret, or was changed on the way."""


def verify(body: bytes, authorization: str | None, secret: str) -> dict[str, Any]:
    """Check a delivery: ``body`` as received (the exact bytes, before any JSON parsing) and
    its ``Authorization`` header. Return the event, or raise :class:`Rejected`."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Rejected("no Bearer token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],  # never the algorithm the token names itself
            options={"require": ["iat", "jti", "payload_hash"]},
        )
    except jwt.InvalidTokenError as error:
        raise Rejected(f"bad token: {error}") from None
    if abs(time.time() - claims["iat"]) > MAX_AGE_SECONDS:
        raise Rejected("token too old")
    if not hmac.compare_digest(str(claims["payload_hash"]), hashlib.sha256(body).hexdigest()):
        raise Rejected("the body is not the one that was signed")
    event: dict[str, Any] = json.loads(body)
    return event


class Seen:
    """Event ids already handled. (Keep them in your database in production, with the
    effect of handling the event, in one transaction.)"""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids.add(event_id)
            return True


def handle(event: dict[str, Any], metadata: str | None) -> None:
    """Your code goes here. This one prints a line per event."""
    print(
        f"{event['event']} {event['event_id']} room={event.get('room_id')} metadata={metadata!r}",
        flush=True,
    )


class CallbackHandler(BaseHTTPRequestHandler):
    secret = ""
    seen = Seen()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.answer(413)
            return
        body = self.rfile.read(length)
        try:
            event = verify(body, self.headers.get("Authorization"), self.secret)
        except Rejected as error:
            print(f"rejected: {error}", file=sys.stderr, flush=True)
            self.answer(401)
            return
        if self.seen.first_time(event["event_id"]):
            metadata = self.headers.get("X-Meetd-Room-Metadata")
            handle(event, None if metadata is None else unquote(metadata))
        self.answer(204)  # answer fast: meetd waits 5 s at most, then tries again later

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per event is printed by handle(); no access log


def make_server(secret: str, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("Handler", (CallbackHandler,), {"secret": secret, "seen": Seen()})
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    secret = os.environ.get("MEETD_SIGNATURE_SECRET")
    if not secret:
        sys.exit("set MEETD_SIGNATURE_SECRET to the application's signature secret")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = make_server(secret, port)
    print(f"listening on http://127.0.0.1:{server.server_port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it
        server.serve_forever()


if __name__ == "__main__":
    main()
