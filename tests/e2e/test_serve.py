"""``meetd serve`` as a process: it stops promptly on SIGTERM, whoever is still connected.

A client that keeps an idle keep-alive connection (the SDKs' HTTP sessions do) must not hold
up a deploy or a restart: supervisors send SIGTERM and, after a grace period, SIGKILL.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import TLSFiles, serving, trust

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 5.0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sigterm_with_an_idle_keep_alive_client(
    scheme: str, tls_files: TLSFiles, tmp_path: Path
) -> None:
    tls = tls_files if scheme == "https" else None
    store = ["--data-dir", str(tmp_path)]
    with serving(store, tmp_path / "serve.log", tls) as (process, url):
        port = int(url.rsplit(":", 1)[1])
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            if tls:
                context = trust(tls.ca_pem)
                conn = stack.enter_context(context.wrap_socket(conn, server_hostname="127.0.0.1"))
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")

            # The connection now sits idle, open, as a pooled client connection does.
            started = time.monotonic()
            process.terminate()
            try:
                process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"meetd serve ({scheme}) still running {GRACE_SECONDS:.0f} s after SIGTERM "
                    "with one idle keep-alive connection open"
                )
        assert time.monotonic() - started < GRACE_SECONDS
