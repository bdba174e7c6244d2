"""wrk: one scenario's request as a Lua script, a run, and its output parsed."""

from __future__ import annotations

import argparse
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(Exception):
    """A setup step failed; the message says which and why."""


@dataclass
class Scenario:
    name: str
    description: str
    url: str  # full URL including path and query
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    runs: list[WrkResult] = field(default_factory=list)

    def lua(self) -> str:
        lines = [f"wrk.method = {lua_string(self.method)}"]
        parsed = urllib.parse.urlsplit(self.url)
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        lines.append(f"wrk.path = {lua_string(path)}")
        if self.body is not None:
            lines.append(f"wrk.body = {lua_string(self.body)}")
        for name, value in self.headers.items():
            lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
        return "\n".join(lines) + "\n"

    def preflight(self) -> tuple[int, bytes]:
        body = self.body.encode() if self.body is not None else None
        return http_request(self.method, self.url, headers=self.headers, body=body)


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def lua_string(value: str) -> str:
    # Lua's \ddd escape is decimal; quotes and backslashes get their usual escapes.
    escaped = "".join(
        "\\" + ch if ch in '"\\' else ch if ch.isprintable() else f"\\{ord(ch):03d}" for ch in value
    )
    return f'"{escaped}"'


@dataclass
class WrkResult:
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int  # wrk counts status >= 400 here ("Non-2xx or 3xx responses")
    socket_errors: dict[str, int]

    @property
    def error_count(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME_RE = re.compile(r"^([0-9]*\.?[0-9]+)(us|ms|s|m|h)$")


def parse_time_ms(text: str) -> float:
    """wrk prints latencies as e.g. `767.00us`, `1.72ms`, `2.01s` (and `m`/`h` beyond that)."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"unrecognised wrk time {text!r}")
    return float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]


def parse_wrk_output(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s+50(?:\.000)?%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"could not parse wrk output (was --latency passed?):\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {}
    )
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        p50_ms=parse_time_ms(p50.group(1)),
        p99_ms=parse_time_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors={k: v for k, v in socket_errors.items() if v},
    )


def run_wrk(
    wrk: str, scenario: Scenario, script: Path, args: argparse.Namespace, duration: float
) -> WrkResult:
    argv = [
        wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(duration))}s",
        "--latency",
        f"--script={script}",
        scenario.url,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=duration + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with status {proc.returncode}:\n{text}")
    return parse_wrk_output(text)


# --------------------------------------------------------------------------------------------
# meetd set-up
