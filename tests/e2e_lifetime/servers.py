"""Real ``meetd serve`` processes for tests: a free loopback port, ready once /healthz says so.

Used by the lifetime tests here and by ``tests/cli/``. Output goes to files, not pipes,
so a chatty server can never block on a full pipe, and a test that fails can show the log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from meetd.settings import ENVIRONMENT_VARIABLES
from tests.support import free_port

STARTUP_SECONDS = 20.0
STOP_SECONDS = 10.0


def meetd_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m meetd``."""
    script = Path(sys.executable).with_name("meetd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "meetd"]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any MEETD_* setting, plus ``extra``."""
    environ = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    return {**environ, **(extra or {})}


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def metric(self, name: str) -> float:
        """One unlabelled sample of the server's /metrics (0 when absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        """SIGTERM (a graceful uvicorn shutdown), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch_server(
    data_dir: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    args: tuple[str, ...] = (),
) -> Server:
    """Start ``meetd serve`` on a free port without waiting for it (see :func:`wait_healthy`);
    ``args`` go after the command's own."""
    port = free_port()
    command = [*meetd_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    command += args
    if database_url is not None:
        command += ["--database-url", database_url]
    log_dir = log_dir or data_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{port}-{time.monotonic_ns()}"
    stdout_path = log_dir / f"serve-{stamp}.out"
    stderr_path = log_dir / f"serve-{stamp}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=clean_environment(env)
        )
    return Server(process, f"http://127.0.0.1:{port}", stdout_path, stderr_path)


def wait_healthy(server: Server) -> Server:
    """Wait until /healthz answers 200; fail with the server's log if it exits or hangs."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"meetd serve exited with {server.process.returncode}:\n{server.stderr[-3000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"meetd serve not healthy in {STARTUP_SECONDS}s:\n{server.stderr[-3000:]}")


def start_server(
    data_dir: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
) -> Server:
    """Start ``meetd serve`` on a free port and wait until /healthz answers 200."""
    server = launch_server(data_dir, database_url=database_url, env=env, log_dir=log_dir)
    return wait_healthy(server)


class ServerPool:
    """Starts servers for one test and stops every one of them afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[Server] = []

    def start(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> Server:
        server = launch_server(
            data_dir, database_url=database_url, env=env, log_dir=self.root, args=args
        )
        self.servers.append(server)
        return wait_healthy(server)

    def launch(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> Server:
        """Start one without waiting: for servers that must start at the same moment."""
        server = launch_server(
            data_dir, database_url=database_url, env=env, log_dir=self.root, args=args
        )
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def server_pool(root: Path) -> Iterator[ServerPool]:
    pool = ServerPool(root)
    try:
        yield pool
    finally:
        pool.stop_all()
