"""docs/examples/verify_callback.py does what docs/callbacks.md says: run as documented, it
accepts a delivery signed the way meetd signs one (:func:`meetd.domain.events.sign`), handles
an event once however often it comes, and rejects a changed body, another secret, a stale
token and a request without one."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from meetd.domain import events
from tests.support import free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "verify_callback.py"
SECRET = "a-signature-secret-of-32-bytes-or-more"
APPLICATION_ID = str(uuid.uuid4())


def delivery(
    room_id: str, *, secret: str = SECRET, signed_at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """A room:expired body and the headers meetd's sender puts on it."""
    now_ms = int(time.time() * 1000)
    event = events.room_expired(room_id, "instant", expires_at=now_ms, created_at=now_ms - 600)
    event_id = events.new_event_id()
    body = events.event_body(event, event_id=event_id, now_ms=now_ms)
    iat = int(time.time() if signed_at is None else signed_at)
    token = events.sign(body, secret=secret, application_id=APPLICATION_ID, now_s=iat)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        events.EVENT_ID_HEADER: event_id,
        events.EVENT_TYPE_HEADER: "room:expired",
        events.ATTEMPT_HEADER: "1",
        events.METADATA_HEADER: events.metadata_header("deal #42 / café"),
    }
    return body, headers


def test_the_example_receiver_accepts_meetds_signature_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(port)],
        env={"MEETD_SIGNATURE_SECRET": SECRET, "PATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/meetd"
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the example did not listen in 10 s"
                time.sleep(0.05)

        with httpx.Client(timeout=5) as client:
            first, first_headers = delivery("room-1")
            assert client.post(url, content=first, headers=first_headers).status_code == 204
            # At least once: the same event again is acknowledged but not handled twice.
            assert client.post(url, content=first, headers=first_headers).status_code == 204

            tampered = first.replace(b"room-1", b"room-9")
            assert client.post(url, content=tampered, headers=first_headers).status_code == 401
            forged, forged_headers = delivery("room-2", secret="another-secret-of-32-bytes-or-more")
            assert client.post(url, content=forged, headers=forged_headers).status_code == 401
            stale, stale_headers = delivery("room-3", signed_at=time.time() - 3600)
            assert client.post(url, content=stale, headers=stale_headers).status_code == 401
            del stale_headers["Authorization"]
            assert client.post(url, content=stale, headers=stale_headers).status_code == 401

            second, second_headers = delivery("room-4")
            assert client.post(url, content=second, headers=second_headers).status_code == 204
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)

    handled = out.splitlines()[1:]  # after "listening on ..."
    assert [(line.split()[0], line.split()[2]) for line in handled] == [
        ("room:expired", "room=room-1"),
        ("room:expired", "room=room-4"),
    ]
    assert handled[0].endswith("metadata='deal #42 / café'")
    assert err.splitlines() == [
        "rejected: the body is not the one that was signed",
        "rejected: bad token: Signature verification failed",
        "rejected: token too old",
        "rejected: no Bearer token",
    ]
