"""Load benchmark: meetd against a bare-ASGI ceiling, measured with wrk.

Run from the repository root with the project's venv python::

    python -m bench.run                     # SQLite in a temp data dir, 1M-room list scenario
    python -m bench.run --big-rooms 100000 --rounds 1 --duration 5    # a quick look
    python -m bench.run --database-url postgresql://localhost/meetd_bench
    python -m bench.run --json > bench.json

Only the standard library is imported here (and in bench/wrk.py, bench/report.py), plus
`meetd.store.seed` for bulk-seeding rooms.
Everything runs on loopback; wrk shares the CPU with the servers, so absolute numbers are only
comparable between runs on the same machine. That is why every figure is also reported as a
ratio to the hello baseline measured in the same run, interleaved round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import print_table, summarize
from bench.wrk import BenchError, Scenario, http_request, run_wrk

REPO_ROOT = Path(__file__).resolve().parent.parent
API = "/v1/meetings"
PAGE_SIZE = 20

# Environment variables that would make meetd act on other state than the harness seeds.
_MEETD_ENV_OVERRIDES = (
    "MEETD_DATABASE_URL",
    "MEETD_DATA_DIR",
    "MEETD_HOST",
    "MEETD_PORT",
    "MEETD_PUBLIC_URL",
)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Processes


class Processes:
    """Every process the harness starts, so exactly those get stopped on any exit."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> Any:
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C reaches only the harness, which then stops the whole
            # group (meetd --workers may fork children).
            start_new_session=True,
        )
        log_file.close()
        self._procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _name, proc in reversed(self._procs):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in reversed(self._procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._procs.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"{proc.args!r} exited with status {proc.returncode} before {url} answered.\n"
                f"--- last lines of {log_path} ---\n{tail(log_path)}"
            )
        status, body = http_request("GET", url, timeout=2)
        if status == 200:
            return
        last = f"status {status}: {body[:200]!r}"
        time.sleep(0.2)
    raise BenchError(
        f"{url} did not answer 200 within {timeout:.0f}s ({last}).\n"
        f"--- last lines of {log_path} ---\n{tail(log_path)}"
    )


# --------------------------------------------------------------------------------------------
# HTTP (stdlib only; used for set-up and pre-flight checks, never for measuring)


def basic_auth(api_key: str, api_secret: str) -> str:
    token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")
    return f"Basic {token}"


def meetd_command() -> list[str]:
    # The console script lives beside the interpreter in the venv's bin dir; do not resolve
    # symlinks, which would leave the venv.
    script = Path(sys.executable).parent / "meetd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "meetd"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _MEETD_ENV_OVERRIDES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def storage_flags(data_dir: Path, database_url: str | None) -> list[str]:
    flags = ["--data-dir", str(data_dir)]
    if database_url:
        flags += ["--database-url", database_url]
    return flags


def create_account(data_dir: Path, database_url: str | None, name: str) -> dict[str, str]:
    argv = [*meetd_command(), "accounts", "create", *storage_flags(data_dir, database_url)]
    argv += ["--name", name, "--json"]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=child_env(), capture_output=True, timeout=120)
    stdout = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` failed with status {proc.returncode}:\n"
            f"{stdout}{proc.stderr.decode(errors='replace')}"
        )
    try:
        account = json.loads(stdout)
        return {k: str(account[k]) for k in ("api_key", "api_secret", "application_id")}
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(
            f"`meetd accounts create --json` printed no usable JSON object ({exc}):\n{stdout}"
        ) from exc


def load_seed_rooms() -> Any:
    try:
        from meetd.store.seed import seed_rooms  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BenchError(
            "The list scenarios need meetd.store.seed.seed_rooms(database_url, application_id, "
            f"count) to bulk-insert rooms, and it is not importable with {sys.executable}: "
            f"{exc}.\nRun with --no-list to benchmark everything else."
        ) from exc
    return seed_rooms


def seed(seed_rooms: Any, database_url: str, application_id: str, count: int) -> None:
    log(f"seeding {count:,} rooms into application {application_id} ...")
    started = time.monotonic()
    result = seed_rooms(database_url, application_id, count)
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]
    log(f"  seeded in {time.monotonic() - started:.1f}s")
    # The seeded pages are still in the page cache, waiting for the kernel's writeback, which
    # would then compete with the first round's scenarios for the disk (and for the syncs of
    # SQLite's checkpoints). Writing them out now keeps set-up out of the measurements.
    started = time.monotonic()
    os.sync()
    log(f"  written to disk in {time.monotonic() - started:.1f}s")


def list_page(base: str, auth: str, query: dict[str, int]) -> dict[str, Any]:
    url = f"{base}{API}/rooms?{urllib.parse.urlencode(query)}"
    status, body = http_request("GET", url, headers={"Authorization": auth})
    if status != 200:
        raise BenchError(f"GET {url} answered {status}: {body[:500]!r}")
    return dict(json.loads(body))


def link_param(page: dict[str, Any], link: str, param: str) -> int | None:
    href = (page.get("_links") or {}).get(link, {}).get("href")
    if not href:
        return None
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query).get(param)
    return int(values[0]) if values else None


def middle_start_id(base: str, auth: str, expected: int) -> int:
    """A serial from the middle of the application's rooms, found through the API's own links.

    Serials increase but need not be contiguous per application, so the first and last are
    read back (`next` of the first page is first+1; `prev` of the last page is the last) rather
    than assumed.
    """
    first_page = list_page(base, auth, {"page_size": 1})
    total = first_page.get("total_items")
    if total != expected:
        log(f"WARNING: application has total_items={total!r}, expected {expected}")
    after_first = link_param(first_page, "next", "start_id")
    if after_first is None:
        raise BenchError(f"first page has no _links.next.href with start_id: {first_page}")
    first = after_first - 1
    try:
        last_page = list_page(base, auth, {"page_size": 1, "end_id": 2**31 - 1})
        last = link_param(last_page, "prev", "end_id")
    except BenchError as exc:
        log(f"WARNING: could not read the last serial ({exc}); assuming contiguous serials")
        last = None
    if last is None:
        last = first + expected - 1
    start_id = (first + last) // 2
    check = list_page(base, auth, {"page_size": PAGE_SIZE, "start_id": start_id})
    embedded = check.get("_embedded")
    if not isinstance(embedded, list) or len(embedded) != PAGE_SIZE:
        size = len(embedded) if isinstance(embedded, list) else embedded
        log(f"WARNING: page at start_id={start_id} holds {size} rooms, not {PAGE_SIZE}")
    return start_id


def create_room_id(base: str, auth: str) -> str:
    url = f"{base}{API}/rooms"
    status, body = http_request(
        "POST",
        url,
        headers={"Authorization": auth, "Content-Type": "application/json"},
        body=b'{"display_name":"bench room"}',
    )
    if status not in (200, 201):
        raise BenchError(f"POST {url} answered {status}: {body[:500]!r}")
    return str(json.loads(body)["id"])


# --------------------------------------------------------------------------------------------
# Orchestration


# The uvicorn event loop and HTTP parser, the same for hello and meetd: "standard" is what
# `uvicorn[standard]` (and meetd) run — uvloop and httptools, C code; "pure" is what a plain
# `pip install uvicorn` runs — asyncio and h11, pure Python.
STACKS = {"standard": [], "pure": ["--loop", "asyncio", "--http", "h11"]}


def stack_flags(stack: str) -> list[str]:
    return list(STACKS[stack])


def build_scenarios(args: argparse.Namespace, procs: Processes, workdir: Path) -> list[Scenario]:
    env = child_env()
    hello_port = free_port()
    hello_log = workdir / "hello.log"
    hello_argv = [sys.executable, "-m", "uvicorn", "bench.hello:app", "--port", str(hello_port)]
    hello_argv += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    hello_argv += stack_flags(args.stack)
    hello_proc = procs.start("hello", hello_argv, hello_log, env)
    hello = f"http://127.0.0.1:{hello_port}"
    wait_for_http(f"{hello}/", hello_proc, hello_log, args.startup_timeout)
    log(f"hello baseline up on {hello}")

    scenarios = [Scenario("hello", "GET / on the bare ASGI app (ceiling)", f"{hello}/")]
    json_headers = {"Content-Type": "application/json"}
    body = '{"display_name":"bench room"}'

    if args.only_hello:
        # Dev mode: every scenario's request shape goes to the hello app, which proves the Lua
        # scripts, wrk invocation and output parsing without a runnable meetd.
        fake_auth = {"Authorization": basic_auth("key", "secret")}
        scenarios += [
            Scenario(
                "create",
                "[hello stand-in] POST room",
                f"{hello}{API}/rooms",
                "POST",
                {**json_headers, **fake_auth},
                body,
            ),
            Scenario("get", "[hello stand-in] GET room", f"{hello}{API}/rooms/x", "GET", fake_auth),
        ]
        if not args.no_list:
            list_url = f"{hello}{API}/rooms?page_size={PAGE_SIZE}&start_id=500"
            scenarios += [
                Scenario("list_1k", "[hello stand-in] list", list_url, "GET", fake_auth),
            ]
            if args.big_rooms > 0:
                scenarios += [
                    Scenario("list_big", "[hello stand-in] list", list_url, "GET", fake_auth),
                ]
        return scenarios

    seed_rooms = None if args.no_list else load_seed_rooms()
    data_dir = workdir / "data"
    data_dir.mkdir()
    seed_url = args.database_url or f"sqlite:///{data_dir}/meetd.sqlite3"

    log("creating accounts ...")
    writer = create_account(data_dir, args.database_url, "bench-writer")
    accounts: dict[str, dict[str, str]] = {}
    if seed_rooms is not None:
        # The 1k list has its own application so the create scenario cannot grow it.
        accounts["list_1k"] = create_account(data_dir, args.database_url, "bench-list-1k")
        seed(seed_rooms, seed_url, accounts["list_1k"]["application_id"], args.small_rooms)
        if args.big_rooms > 0:
            accounts["list_big"] = create_account(data_dir, args.database_url, "bench-list-big")
            seed(seed_rooms, seed_url, accounts["list_big"]["application_id"], args.big_rooms)

    meetd_port = free_port()
    meetd_log = workdir / "meetd.log"
    serve_argv = [*meetd_command(), "serve", "--host", "127.0.0.1", "--port", str(meetd_port)]
    serve_argv += storage_flags(data_dir, args.database_url) + stack_flags(args.stack)
    meetd_proc = procs.start("meetd", serve_argv, meetd_log, env)
    meetd = f"http://127.0.0.1:{meetd_port}"
    wait_for_http(f"{meetd}/healthz", meetd_proc, meetd_log, args.startup_timeout)
    log(f"meetd up on {meetd} (log: {meetd_log})")

    writer_auth = basic_auth(writer["api_key"], writer["api_secret"])
    room_id = create_room_id(meetd, writer_auth)
    scenarios += [
        Scenario(
            "create",
            "POST /v1/meetings/rooms (instant room)",
            f"{meetd}{API}/rooms",
            "POST",
            {**json_headers, "Authorization": writer_auth},
            body,
        ),
        Scenario(
            "get",
            "GET /v1/meetings/rooms/{id}",
            f"{meetd}{API}/rooms/{room_id}",
            "GET",
            {"Authorization": writer_auth},
        ),
    ]
    sizes = {"list_1k": args.small_rooms, "list_big": args.big_rooms}
    for name, account in accounts.items():
        auth = basic_auth(account["api_key"], account["api_secret"])
        start_id = middle_start_id(meetd, auth, sizes[name])
        url = f"{meetd}{API}/rooms?page_size={PAGE_SIZE}&start_id={start_id}"
        scenarios.append(
            Scenario(
                name,
                f"GET list page of {PAGE_SIZE} in an app of {sizes[name]:,} rooms",
                url,
                "GET",
                {"Authorization": auth},
            )
        )
    return scenarios


def measure(args: argparse.Namespace, scenarios: list[Scenario], workdir: Path) -> None:
    wrk = shutil.which(args.wrk) or args.wrk
    if not Path(wrk).exists():
        raise BenchError(f"wrk not found ({args.wrk!r}); install it: apt-get install -y wrk")
    scripts = {}
    for scenario in scenarios:
        status, body = scenario.preflight()
        if not 200 <= status < 300:
            raise BenchError(
                f"pre-flight {scenario.method} {scenario.url} answered {status}: {body[:500]!r}"
            )
        scripts[scenario.name] = workdir / f"{scenario.name}.lua"
        scripts[scenario.name].write_text(scenario.lua())
    if args.warmup > 0:
        log(f"warm-up: {args.warmup:g}s per scenario")
        for scenario in scenarios:
            run_wrk(wrk, scenario, scripts[scenario.name], args, args.warmup)
    for round_no in range(1, args.rounds + 1):
        for scenario in round_order(scenarios, round_no):
            result = run_wrk(wrk, scenario, scripts[scenario.name], args, args.duration)
            scenario.runs.append(result)
            errors = (
                f"  ERRORS non2xx={result.non_2xx} socket={result.socket_errors}"
                if (result.error_count)
                else ""
            )
            log(
                f"round {round_no}/{args.rounds} {scenario.name:<9} "
                f"{result.requests_per_sec:>10.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms{errors}"
            )


# Where each round's scenarios keep their place: the ceiling first, then create.
_FIXED = ("hello", "create")


def round_order(scenarios: list[Scenario], round_no: int) -> list[Scenario]:
    """The order of one round: hello and create first, then the scenarios that only read,
    rotated by one place a round. The scenario right after create runs while the server
    still works off create's writes (SQLite's checkpoints, PostgreSQL's autovacuum): with a
    fixed order that cost fell on the same list page every round, and the two lists'
    ratio measured where they stood in the round, not their sizes (docs/performance.md, the
    twelfth session). hello stays first so that create never runs just before it."""
    fixed = [scenario for scenario in scenarios if scenario.name in _FIXED]
    reads = [scenario for scenario in scenarios if scenario.name not in _FIXED]
    shift = (round_no - 1) % len(reads) if reads else 0
    return fixed + reads[shift:] + reads[:shift]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--warmup",
        type=float,
        default=2,
        help="seconds of unrecorded load per scenario before round 1 (0: none)",
    )
    parser.add_argument(
        "--database-url",
        help="passed to every meetd command (e.g. PostgreSQL); "
        "default: SQLite in the temp data dir",
    )
    parser.add_argument(
        "--big-rooms",
        type=int,
        default=1_000_000,
        help="rooms in the large list application (0 skips that scenario)",
    )
    parser.add_argument("--small-rooms", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-list", action="store_true", help="skip seeding and both list scenarios"
    )
    parser.add_argument(
        "--stack",
        choices=sorted(STACKS),
        default="standard",
        help="uvicorn loop and HTTP parser for both servers: standard = uvloop + httptools "
        "(default), pure = asyncio + h11",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument("--wrk", default="wrk", help="wrk executable")
    parser.add_argument("--startup-timeout", type=float, default=60)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (data, logs, Lua scripts)"
    )
    # Dev only: aim every scenario's request shape at the hello app (no meetd needed).
    parser.add_argument("--only-hello", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--rounds, --duration, --connections and --threads must be >= 1")
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads (wrk requirement)")
    return args


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_harness(
    args: argparse.Namespace,
    prefix: str,
    measure_all: Callable[[Processes, Path], dict[str, Any]],
    print_table: Callable[[dict[str, Any]], None],
) -> int:
    """Run ``measure_all`` with a process registry and a work dir that are cleaned up whatever
    happens (errors, Ctrl-C, SIGTERM, SIGHUP); print its summary as a table or JSON. The one
    main of ``bench.run`` and ``bench.callbacks``."""
    procs = Processes()
    atexit.register(procs.stop_all)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        summary = measure_all(procs, workdir)
    except BenchError as exc:
        log(f"ERROR: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        print_table(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def measure_all(procs: Processes, workdir: Path) -> dict[str, Any]:
        scenarios = build_scenarios(args, procs, workdir)
        measure(args, scenarios, workdir)
        return summarize(args, scenarios)

    return run_harness(args, "meetd-bench-", measure_all, print_table)


if __name__ == "__main__":
    sys.exit(main())
